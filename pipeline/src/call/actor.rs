//! The call actor: its state, its loop, and the client commands. Turn-taking lives in
//! `turns.rs`, the response lifecycle in `respond.rs` (both `impl CallActor`).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::CallDeps;
use super::draft::{Draft, EarlyReady};
use super::events::{CallError, CallEvent, CallInput, Command, ResponseOptions};
use super::ids::IdGen;
use super::input::InputAudio;
use super::language::CallLanguage;
use super::playback::{FRAME, Playback};
use super::response::ResponseMsg;
use super::turns::EarlyResult;
use crate::conversation::{Content, Conversation, ItemKind, Role};
use crate::llm::Usage;
use crate::session::{SessionConfig, TurnDetection};
use crate::tools::client_mcp::ClientServer;
use switchboard_models::stt::Transcript;

/// A user turn whose speech is in progress.
#[derive(Debug)]
pub(super) struct OpenTurn {
    pub item_id: String,
    /// Speech lasted long enough to count (and `speech_started` was sent).
    pub confirmed: bool,
    /// A transcription started when the caller paused; used if the turn ends as predicted.
    pub early: Option<EarlyTranscript>,
    /// `semantic_vad`'s judgement of the current pause's transcript (`end_of_turn.rs`).
    pub judged: Option<super::end_of_turn::Ending>,
}

/// Transcription of a turn that may be about to end. Dropping it cancels the job.
#[derive(Debug)]
pub(super) struct EarlyTranscript {
    /// Numbers the call's early transcriptions (a draft names the one it answers).
    pub seq: u64,
    /// The segment the turn ends as if the pause lasts.
    pub segment: switchboard_models::vad::SpeechSegment,
    /// The call samples transcribed.
    pub span: std::ops::Range<u64>,
    pub result: EarlyResult,
    /// Speculative until the turn ends as predicted; then raised to live.
    pub urgency: switchboard_models::stt::Urgency,
}

/// A turn's transcript (text trimmed), or why transcription failed.
pub(super) type SttOutcome = Result<switchboard_models::stt::Transcript, String>;

/// An assistant message a response is writing.
#[derive(Debug, Clone)]
pub(super) struct MessageOut {
    pub item_id: String,
    pub output_index: u32,
    pub text: String,
    /// Which of the response's messages it is: a new one begins after each MCP call.
    pub segment: usize,
    /// Said whole and closed before the response ended (`close_said_messages`).
    pub closed: bool,
}

#[derive(Debug)]
pub(super) struct FunctionCallOut {
    pub item_id: String,
    pub output_index: u32,
    pub call_id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug)]
pub(super) struct ActiveResponse {
    pub id: String,
    pub generation: u64,
    pub token: CancellationToken,
    pub audio: bool,
    /// Its assistant messages, in order (opened on their first text or audio).
    pub messages: Vec<MessageOut>,
    /// The message segment text goes to now, and the one audio goes to: text moves on when
    /// an MCP call starts, audio when the speech before the call has all come.
    pub text_segment: usize,
    pub audio_segment: usize,
    pub calls: BTreeMap<u32, FunctionCallOut>,
    pub outputs: u32,
    pub playback: Playback,
    pub generation_done: bool,
    pub error: Option<(&'static str, String)>,
    pub usage: Usage,
    /// The turn's orchestrator metadata (persona, degraded, degrade_reasons).
    pub metadata: Vec<(String, String)>,
    /// Its `mcp_call` items still running, by the model's call id (`mcp.rs`).
    pub mcp_calls: BTreeMap<String, super::mcp::McpCallOut>,
    /// Its MCP items (calls, approval requests, listings): output index and item id.
    pub mcp_items: Vec<(u32, String)>,
    /// The `mcp_list_tools` items of the servers it declared and is connecting, by label
    /// (`response_mcp.rs`).
    pub mcp_listings: BTreeMap<String, super::mcp::McpCallOut>,
    /// When the caller's speech paused this response (barge-in awaiting its transcript).
    pub barge_in_at: Option<Instant>,
    /// The last user speech sample's arrival, for voice-to-voice timing.
    pub v2v_start: Option<Instant>,
    pub last_audio_sent: Option<Instant>,
}

/// An STT result coming back to the actor.
#[derive(Debug)]
pub(super) struct Transcribed {
    pub item_id: String,
    pub result: SttOutcome,
    /// The turn came from server VAD (so it may create a response by itself).
    pub from_vad: bool,
    pub v2v_start: Instant,
}

/// What the actor's own tasks send back to it.
pub(crate) struct Feeds {
    responses: mpsc::Receiver<(u64, ResponseMsg)>,
    transcripts: mpsc::Receiver<Transcribed>,
    early: mpsc::Receiver<EarlyReady>,
    /// Languages detected while the caller spoke (`language.rs`).
    languages: mpsc::Receiver<Transcript>,
    /// Drafts' messages, and a taken draft's later ones.
    drafts: mpsc::Receiver<(u64, ResponseMsg)>,
    /// Client-declared MCP servers connected, or not (`mcp.rs`).
    mcp: mpsc::Receiver<super::mcp::Listed>,
}

pub(crate) struct CallActor {
    pub(super) call_id: String,
    pub(super) deps: CallDeps,
    pub(super) config: SessionConfig,
    pub(super) events: mpsc::Sender<CallEvent>,
    pub(super) closed: bool,
    pub(super) ids: IdGen,
    pub(super) conversation: Conversation,
    pub(super) input: InputAudio,
    pub(super) turn: Option<OpenTurn>,
    pub(super) pending_stt: usize,
    /// A reply started while the caller pauses, held until the turn ends (`draft.rs`).
    pub(super) draft: Option<Draft>,
    pub(super) early_seq: u64,
    /// The caller's language, and what the call keeps to learn it (`language.rs`).
    pub(super) language: CallLanguage,
    pub(super) language_tx: mpsc::Sender<Transcript>,
    pub(super) early_tx: mpsc::Sender<EarlyReady>,
    /// Where drafts send (`resp_tx` is gated by the playing response, a draft must not be).
    pub(super) draft_tx: mpsc::Sender<(u64, ResponseMsg)>,
    pub(super) deferred_response: Option<(ResponseOptions, Option<Instant>)>,
    pub(super) response: Option<ActiveResponse>,
    /// Where on the call's audio clock the caller has been idle from since the last reply
    /// (`idle.rs`); `None` while a response runs or before the first.
    pub(super) idle_from_ms: Option<u64>,
    /// The playback of the last finished response, for a client's `conversation.item.truncate`.
    pub(super) last_playback: Option<Playback>,
    pub(super) generation: u64,
    pub(super) resp_tx: mpsc::Sender<(u64, ResponseMsg)>,
    pub(super) stt_tx: mpsc::Sender<Transcribed>,
    pub(super) token: CancellationToken,
    /// Conversation items already handed to the turn sink.
    pub(super) persisted: std::collections::HashSet<String>,
    /// The MCP servers the client declared (`mcp.rs`).
    pub(super) mcp: Vec<super::mcp::DeclaredServer>,
    pub(super) mcp_tx: mpsc::Sender<super::mcp::Listed>,
    /// The MCP servers responses declared and connected (`response_mcp.rs`).
    pub(super) response_mcp: Vec<Arc<ClientServer>>,
    /// The URL of the server each `mcp_approval_request` was asked for, by item id (`mcp.rs`).
    pub(super) approval_servers: std::collections::HashMap<String, String>,
    /// Responses running beside the conversation's (`out_of_band.rs`).
    pub(super) out_of_band: Vec<super::out_of_band::OutOfBand>,
}

impl CallActor {
    pub(crate) fn new(
        call_id: String,
        ids: IdGen,
        deps: CallDeps,
        config: SessionConfig,
        events: mpsc::Sender<CallEvent>,
        token: CancellationToken,
    ) -> (Self, Feeds) {
        let td = config.turn_detection.unwrap_or_default();
        let mut input = InputAudio::new(config.input_rate, Some(&deps.vad), &td);
        if let Err(e) = input.set_noise_reduction(config.noise_reduction.is_some()) {
            tracing::warn!(error = %e, "noise reduction off: the input rate is not supported");
        }
        let (resp_tx, resp_rx) = mpsc::channel(32);
        let (stt_tx, stt_rx) = mpsc::channel(8);
        let (early_tx, early_rx) = mpsc::channel(8);
        let (draft_tx, draft_rx) = mpsc::channel(32);
        let (language_tx, language_rx) = mpsc::channel(2);
        let (mcp_tx, mcp_rx) = mpsc::channel(4);
        let actor = Self {
            call_id,
            deps,
            config,
            events,
            closed: false,
            ids,
            conversation: Conversation::default(),
            input,
            turn: None,
            pending_stt: 0,
            draft: None,
            early_seq: 0,
            language: CallLanguage::new(),
            language_tx,
            early_tx,
            draft_tx,
            deferred_response: None,
            response: None,
            idle_from_ms: None,
            last_playback: None,
            generation: 0,
            resp_tx,
            stt_tx,
            token,
            persisted: Default::default(),
            mcp: Vec::new(),
            mcp_tx,
            response_mcp: Vec::new(),
            approval_servers: Default::default(),
            out_of_band: Vec::new(),
        };
        let feeds = Feeds {
            responses: resp_rx,
            transcripts: stt_rx,
            early: early_rx,
            languages: language_rx,
            drafts: draft_rx,
            mcp: mcp_rx,
        };
        (actor, feeds)
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>, feeds: Feeds) {
        let Feeds {
            mut responses,
            mut transcripts,
            mut early,
            mut languages,
            mut drafts,
            mut mcp,
        } = feeds;
        self.deps.metrics.calls_active.inc();
        self.deps.metrics.calls_total.inc();
        // A session created with MCP servers (a client secret's) connects them at once.
        self.sync_mcp().await;
        let mut pace = tokio::time::interval(FRAME);
        pace.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let token = self.token.clone();
        while !self.closed {
            let accepting = self.accepts_response_audio();
            let accepting_draft = self.accepts_draft_msgs();
            let pacing = self.needs_pacing();
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    None => break,
                    Some(Command { input: CallInput::Shutdown, .. }) => break,
                    Some(cmd) => self.on_command(cmd).await,
                },
                _ = pace.tick(), if pacing => self.pace().await,
                Some(t) = transcripts.recv() => self.on_transcribed(t).await,
                Some(e) = early.recv() => self.on_early_transcript(e).await,
                Some(t) = languages.recv() => self.learn_language(&t, "speech"),
                Some(l) = mcp.recv() => self.on_listed(l).await,
                Some((generation, msg)) = responses.recv(), if accepting => {
                    self.on_response_msg(generation, msg).await;
                }
                Some((generation, msg)) = drafts.recv(), if accepting_draft => {
                    self.on_response_msg(generation, msg).await;
                }
            }
        }
        // A reply still playing is cut to what the caller heard, then everything is stored.
        let interrupted = self.response.is_some();
        if interrupted {
            self.cancel_response("client_disconnected").await;
        }
        self.persist_through(None, true);
        if let Some(sink) = &self.deps.sink {
            sink.ended(
                &self.call_id,
                if interrupted {
                    "disconnected"
                } else {
                    "completed"
                },
            );
        }
        self.token.cancel();
        self.deps.metrics.calls_active.dec();
    }

    /// Send an event to the channel; a gone channel ends the call.
    pub(super) async fn emit(&mut self, event: CallEvent) {
        if self.closed {
            return;
        }
        if let CallEvent::Error(e) = &event {
            self.deps
                .metrics
                .errors_total
                .with_label_values(&[e.code])
                .inc();
        }
        if self.events.send(event).await.is_err() {
            self.closed = true;
        }
    }

    pub(super) async fn error(&mut self, err: CallError, event_id: Option<String>) {
        self.emit(CallEvent::Error(err.with_event_id(event_id)))
            .await;
    }

    pub(super) fn turn_detection(&self) -> Option<TurnDetection> {
        self.config.turn_detection
    }

    /// Whether the end of a detected turn starts a response by itself.
    pub(super) fn answers_turns(&self) -> bool {
        !self.config.transcription_only
            && self.turn_detection().is_some_and(|td| td.create_response)
    }

    async fn on_command(&mut self, Command { event_id, input }: Command) {
        match input {
            CallInput::UpdateSession(cfg) => self.update_session(*cfg, event_id).await,
            CallInput::AppendAudio(samples) => self.append_audio(&samples).await,
            CallInput::CommitAudio => self.commit_client_audio(event_id).await,
            CallInput::ClearAudio => {
                self.input.clear();
                // A turn that was pausing the agent is gone: let the agent go on.
                self.turn = None;
                self.drop_draft("cancelled");
                self.resume_after_false_interruption();
                self.emit(CallEvent::AudioCleared).await;
            }
            CallInput::CreateItem {
                previous_item_id,
                mut item,
            } => {
                if item.id.is_empty() {
                    item.id = self.ids.next("item");
                }
                if let Err(err) = self.check_approval_response(&item) {
                    self.error(err, event_id).await;
                    return;
                }
                match self
                    .conversation
                    .insert(item.clone(), previous_item_id.as_deref())
                {
                    Ok(previous_item_id) => {
                        self.emit(CallEvent::ItemCreated {
                            previous_item_id,
                            item,
                        })
                        .await;
                    }
                    Err(e) => {
                        let err = CallError::invalid("invalid_value", e.to_string());
                        self.error(err.with_param("previous_item_id"), event_id)
                            .await;
                    }
                }
            }
            CallInput::TruncateItem {
                item_id,
                content_index,
                audio_end_ms,
            } => {
                self.truncate_item(item_id, content_index, audio_end_ms, event_id)
                    .await;
            }
            CallInput::DeleteItem { item_id } => match self.conversation.delete(&item_id) {
                Ok(_) => self.emit(CallEvent::ItemDeleted { item_id }).await,
                Err(e) => {
                    let err = CallError::invalid("item_not_found", e.to_string());
                    self.error(err.with_param("item_id"), event_id).await;
                }
            },
            CallInput::RetrieveItem { item_id } => match self.conversation.get(&item_id).cloned() {
                Some(item) => self.emit(CallEvent::ItemRetrieved { item }).await,
                None => {
                    let err = CallError::invalid(
                        "item_not_found",
                        format!("item {item_id} does not exist"),
                    );
                    self.error(err.with_param("item_id"), event_id).await;
                }
            },
            CallInput::CreateResponse(opts) => self.request_response(opts, None, event_id).await,
            CallInput::CancelResponse { response_id } => {
                self.cancel_requested(response_id, event_id).await;
            }
            CallInput::ClearOutputAudio => self.clear_output_audio().await,
            CallInput::Shutdown => self.closed = true,
        }
    }

    async fn update_session(&mut self, cfg: SessionConfig, event_id: Option<String>) {
        if let Err(e) = self.input.set_input_rate(cfg.input_rate) {
            let err = CallError::invalid("invalid_value", e.to_string());
            self.error(err.with_param("session.audio.input.format"), event_id)
                .await;
            return;
        }
        if let Err(e) = self
            .input
            .set_noise_reduction(cfg.noise_reduction.is_some())
        {
            let err = CallError::invalid("invalid_value", e.to_string());
            self.error(
                err.with_param("session.audio.input.noise_reduction"),
                event_id,
            )
            .await;
            return;
        }
        if cfg.turn_detection != self.config.turn_detection {
            self.input
                .set_turn_detection(&cfg.turn_detection.unwrap_or_default());
            self.turn = None;
            self.drop_draft("cancelled");
            self.resume_after_false_interruption();
        }
        if cfg.transcription_only && !self.config.transcription_only {
            // Now only transcribing: no reply is drafted or waits to start.
            self.drop_draft("cancelled");
            self.deferred_response = None;
        }
        self.config = cfg;
        self.emit(CallEvent::SessionUpdated(Box::new(self.config.clone())))
            .await;
        self.sync_mcp().await;
    }

    async fn truncate_item(
        &mut self,
        item_id: String,
        content_index: u32,
        audio_end_ms: u32,
        event_id: Option<String>,
    ) {
        let Some(item) = self.conversation.get(&item_id) else {
            let err =
                CallError::invalid("item_not_found", format!("item {item_id} does not exist"));
            self.error(err.with_param("item_id"), event_id).await;
            return;
        };
        let is_assistant_audio = matches!(&item.kind, ItemKind::Message { role: Role::Assistant, content }
            if matches!(content.get(content_index as usize), Some(Content::OutputAudio { .. })));
        if !is_assistant_audio {
            let err = CallError::invalid(
                "invalid_value",
                "Only assistant messages with audio can be truncated.",
            );
            self.error(err.with_param("content_index"), event_id).await;
            return;
        }
        // The item's audio: in the response speaking now, or the last one.
        let spoken = [
            self.response.as_ref().map(|r| &r.playback),
            self.last_playback.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find_map(|p| Some((p, p.item_span(&item_id)?.0)));
        if let Some((p, span)) = spoken {
            if audio_end_ms > p.ms(span.len()) {
                let err = CallError::invalid(
                    "invalid_value",
                    format!("audio_end_ms {audio_end_ms} is beyond the item's audio"),
                );
                self.error(err.with_param("audio_end_ms"), event_id).await;
                return;
            }
            let samples = (audio_end_ms as u64 * self.config.output_rate as u64 / 1000) as usize;
            let text = p.heard_text_in(span.clone(), span.start + samples);
            self.conversation.set_assistant_text(&item_id, &text);
        }
        self.emit(CallEvent::ItemTruncated {
            item_id,
            content_index,
            audio_end_ms,
        })
        .await;
    }
}
