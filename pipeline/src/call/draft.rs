//! Speculative replies: answering a caller who has paused before the pause is long enough to
//! end the turn.
//!
//! When the caller pauses, the turn so far is transcribed at once (`turns.rs`). If that
//! transcript comes back while the pause still lasts, the reply to it starts too: context,
//! prompt, LLM and the first TTS audio, all held here and nothing sent to the client. When
//! the silence then ends the turn as predicted, the turn's response takes the draft if it
//! would ask exactly the same request (same conversation, same transcript, same settings),
//! and plays what the draft already has; the end-of-turn silence is no longer spent waiting
//! for the LLM and TTS. If the caller speaks again, or anything else changed, the draft is
//! dropped, which stops its work, and the response starts afresh.
//!
//! A draft also answers a caller who barged in: their words (not a backchannel) will cancel
//! the paused response and cut its message to what they heard, which is known while playback
//! is paused, so the draft is asked with the conversation as it will be then.
//!
//! A draft takes no action: the tool loop waits before it would run a server-side tool or
//! settle a pending action, and goes on only once the draft is taken (`Speculation`); a
//! dropped draft never acts. Drafts send on their own channel: the responses' channel
//! is not read while the playing response has enough audio queued, which would hold a
//! draft back behind the reply it is to replace.

use std::borrow::Cow;

use tokio_util::sync::CancellationToken;

use super::actor::CallActor;
use super::end_of_turn::Ending;
use super::events::ResponseOptions;
use super::response::ResponseMsg;
use super::turns::{has_words, is_backchannel};
use crate::conversation::Conversation;
use crate::llm::ChatRequest;
use crate::orchestrator::Speculation;

/// Reply audio a draft may hold (samples at the output rate): past it the draft's task waits.
/// A draft lasts one end-of-turn silence, so this is reached only by a very long silence.
const MAX_HELD_SECS: usize = 8;

/// Everything a response is started with: a draft serves a response whose plan is equal.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ResponsePlan {
    pub request: ChatRequest,
    /// The MCP servers the response declares (`response_mcp.rs`).
    pub mcp: Vec<crate::tools::client_mcp::ClientMcpServer>,
    pub audio: bool,
    pub speed: f32,
    pub output_rate: u32,
}

/// A reply generated ahead of the turn's end, held until the turn's response takes it.
#[derive(Debug)]
pub(super) struct Draft {
    /// The early transcription (`EarlyTranscript::seq`) it answers.
    pub seq: u64,
    pub generation: u64,
    pub token: CancellationToken,
    /// Taking the draft makes its turn final: a reply waiting before an action goes on.
    gate: tokio::sync::watch::Sender<bool>,
    pub plan: ResponsePlan,
    /// What the response task sent so far, in order.
    pub held: Vec<ResponseMsg>,
    held_samples: usize,
}

impl Draft {
    pub(super) fn is_full(&self) -> bool {
        self.held_samples >= MAX_HELD_SECS * self.plan.output_rate as usize
    }
}

/// An early transcription came back with words.
#[derive(Debug)]
pub(super) struct EarlyReady {
    pub seq: u64,
    pub text: String,
    /// The language it was transcribed in (named, kept or detected).
    pub language: String,
    /// Smart Turn's probability that the turn is complete (`semantic_vad`; `None` if it
    /// failed).
    pub complete: Option<f32>,
}

impl CallActor {
    /// An early transcript came back. With `semantic_vad` it is judged first
    /// (`end_of_turn.rs`): a turn that reads as unfinished gets no draft, and one whose pause
    /// is already long enough for its judgement ends now, taking the draft just started.
    pub(super) async fn on_early_transcript(&mut self, ready: EarlyReady) {
        let judged = self.judge_pause(&ready);
        if judged != Some(Ending::Unfinished) {
            self.start_draft(&ready);
        }
        if let Some(ending) = judged {
            self.end_turn_after(ending).await;
        }
    }

    /// Start a draft for an early transcript if the turn it belongs to is still pausing and
    /// its end would start a response by itself: with nothing in progress, or after a
    /// barge-in its words will cancel.
    fn start_draft(&mut self, ready: &EarlyReady) {
        let pausing = self
            .turn
            .as_ref()
            .and_then(|t| t.early.as_ref())
            .is_some_and(|e| e.seq == ready.seq);
        if !self.deps.speculate
            || !pausing
            || !self.answers_turns()
            || self.draft.is_some()
            || self.deferred_response.is_some()
            || self.pending_stt > 0
            || !has_words(&ready.text)
        {
            return;
        }
        let Some(conversation) = self.conversation_after(&ready.text) else {
            return;
        };
        // The options of the response a turn starts by itself.
        let plan = self.plan_response(
            &conversation,
            &ResponseOptions::default(),
            Some(&ready.text),
        );
        drop(conversation);
        let (gate, speculation) = Speculation::pending();
        let (token, _) = self.spawn_response(plan.clone(), None, speculation);
        self.draft = Some(Draft {
            gate,
            seq: ready.seq,
            generation: self.generation,
            token,
            plan,
            held: Vec::new(),
            held_samples: 0,
        });
    }

    /// The conversation the turn's response will see if the turn is `words`, or `None` when
    /// that is not known yet. With a response in progress that the caller has barged in on,
    /// words that are not a backchannel will cancel it and cut its message to what the caller
    /// heard (`cancel_response`): playback is paused, so that is known now. A response not
    /// paused, without audio, or with tool calls is left alone.
    fn conversation_after(&self, words: &str) -> Option<Cow<'_, Conversation>> {
        let Some(r) = &self.response else {
            return Some(Cow::Borrowed(&self.conversation));
        };
        if r.barge_in_at.is_none() || !r.audio || !r.calls.is_empty() || is_backchannel(words) {
            return None;
        }
        let mut after = self.conversation.clone();
        let heard = r.playback.heard(tokio::time::Instant::now());
        for (item_id, _, text) in r.heard_messages(heard) {
            after.set_assistant_text(&item_id, &text);
        }
        Some(Cow::Owned(after))
    }

    /// Whether to read the drafts' channel: a draft is held up to its limit; once taken, its
    /// messages are paced as the response's are.
    pub(super) fn accepts_draft_msgs(&self) -> bool {
        match &self.draft {
            Some(d) => !d.is_full(),
            None => self.accepts_response_audio(),
        }
    }

    /// Keep a draft's message back; other messages are returned to be handled.
    pub(super) fn hold_for_draft(
        &mut self,
        generation: u64,
        msg: ResponseMsg,
    ) -> Option<ResponseMsg> {
        if self
            .draft
            .as_ref()
            .is_none_or(|d| d.generation != generation)
        {
            return Some(msg);
        }
        if matches!(msg, ResponseMsg::Finished { error: Some(_) }) {
            // Failed, or stopped before an action: the turn's response will ask again.
            self.drop_draft("failed");
            return None;
        }
        if let Some(draft) = self.draft.as_mut() {
            if let ResponseMsg::Audio { samples, .. } = &msg {
                draft.held_samples += samples.len();
            }
            draft.held.push(msg);
        }
        None
    }

    /// The draft for `plan`, if there is one; any other draft is dropped as stale.
    pub(super) fn take_draft(&mut self, plan: &ResponsePlan, no_decision: bool) -> Option<Draft> {
        let draft = self.draft.take()?;
        if no_decision && draft.plan == *plan {
            let _ = draft.gate.send(true);
            self.count_draft("used");
            Some(draft)
        } else {
            self.draft = Some(draft);
            self.drop_draft("stale");
            None
        }
    }

    /// Stop and forget the draft, if any: `cancelled` (the caller went on), `stale` (the turn
    /// or the conversation turned out otherwise) or `failed`.
    pub(super) fn drop_draft(&mut self, outcome: &'static str) {
        if let Some(draft) = self.draft.take() {
            draft.token.cancel();
            self.count_draft(outcome);
        }
    }

    /// Drop the draft unless it answers the early transcription `seq`.
    pub(super) fn keep_draft_for(&mut self, seq: Option<u64>) {
        if self.draft.as_ref().is_some_and(|d| Some(d.seq) != seq) {
            self.drop_draft("stale");
        }
    }

    fn count_draft(&self, outcome: &str) {
        self.deps
            .metrics
            .speculative_replies_total
            .with_label_values(&[outcome])
            .inc();
    }
}
