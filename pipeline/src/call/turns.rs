//! Turn-taking: caller audio through the VAD into user turns, barge-in, and transcription.
//!
//! Speech must last `MIN_TURN_SPEECH` to count as a turn, and `min_interrupt_ms` to
//! interrupt a response. An interruption first only pauses the response; once the
//! caller's words are transcribed it is cancelled, or resumed if there were no words.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use super::actor::{CallActor, EarlyTranscript, OpenTurn, SttOutcome, Transcribed};
use super::draft::EarlyReady;
use super::events::{CallError, CallEvent};
use super::input::{InputAudio, VadEvent};
use switchboard_models::stt::{Priority, SttError, SttJob, Token, Transcript};

use crate::conversation::{Content, Item, ItemKind, Role};
use crate::session::TurnDetection;

/// Shorter speech (outside a response) is a click or a breath, not a turn.
const MIN_TURN_SPEECH_MS: u64 = 100;
/// Audio kept after the detected end of speech: the VAD places the end slightly early.
const END_PAD_MS: u64 = 150;
/// The least audio a client may commit.
const MIN_COMMIT_MS: u64 = 100;

pub(super) use switchboard_models::stt::has_words;

fn stt_outcome(r: Result<Transcript, SttError>) -> SttOutcome {
    r.map(|mut t| {
        t.text = t.text.trim().to_owned();
        t
    })
    .map_err(|e| e.to_string())
}

/// Run a transcription job: its outcome and how long it took (queue and decoding), whenever
/// its turn ends.
async fn timed(job: SttJob) -> (SttOutcome, Duration) {
    let started = std::time::Instant::now();
    let outcome = stt_outcome(job.await);
    (outcome, started.elapsed())
}

/// An early transcription running on its own task, so its transcript can start a draft
/// (`draft.rs`) while the turn may still go on. Dropping it stops the transcription.
#[derive(Debug)]
pub(super) struct EarlyResult {
    task: AbortOnDropHandle<()>,
    done: oneshot::Receiver<(SttOutcome, Duration)>,
}

impl EarlyResult {
    /// `listening`: Smart Turn's probability for the same audio, if asked (`semantic_vad`),
    /// running beside the transcription; the transcript is judged once both are in.
    fn spawn(
        job: SttJob,
        seq: u64,
        listening: Option<JoinHandle<Option<f32>>>,
        ready: mpsc::Sender<EarlyReady>,
    ) -> Self {
        let (tx, done) = oneshot::channel();
        let task = tokio::spawn(async move {
            let (outcome, took) = timed(job).await;
            let heard = outcome
                .as_ref()
                .ok()
                .map(|t| (t.text.clone(), t.language.clone()));
            let _ = tx.send((outcome, took));
            let complete = match listening {
                Some(task) => task.await.ok().flatten(),
                None => None,
            };
            if let Some((text, language)) = heard {
                let _ = ready
                    .send(EarlyReady {
                        seq,
                        text,
                        language,
                        complete,
                    })
                    .await;
            }
        });
        Self {
            task: AbortOnDropHandle::new(task),
            done,
        }
    }

    /// The transcript, once the turn it was started for has ended as predicted.
    async fn outcome(self) -> (SttOutcome, Duration) {
        let _running = self.task; // dropping the wait stops the transcription
        self.done
            .await
            .unwrap_or_else(|_| (Err("transcription stopped".into()), Duration::ZERO))
    }
}

/// Sounds a listener makes to show they are following, not to take the turn.
const BACKCHANNELS: &[&str] = &[
    "uh", "um", "uhm", "hmm", "hm", "mm", "mmm", "mhm", "huh", "uh-huh", "mm-hmm", "ah", "oh",
    "yeah", "yep", "yes", "okay", "ok", "right", "sure", "i", "see",
];

/// Whether a transcript is only backchannel sounds ("Mm-hmm.", "Yeah, okay.").
pub(super) fn is_backchannel(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.' || c == '!' || c == '?')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    !words.is_empty()
        && words.len() <= 4
        && words.iter().all(|w| BACKCHANNELS.contains(&w.as_str()))
}

impl CallActor {
    pub(super) async fn append_audio(&mut self, samples: &[f32]) {
        let now = Instant::now();
        let frames = self.input.append(samples, now);
        let Some(td) = self.turn_detection() else {
            return;
        };
        if !frames.is_empty() {
            let Some(mut vad) = self.input.take_vad() else {
                return;
            };
            // Silero is model inference: off the async workers, even at ~0.1 ms a frame.
            let scored = tokio::task::spawn_blocking(move || {
                let probs = InputAudio::score(&mut vad, &frames);
                (vad, probs)
            })
            .await;
            let Ok((vad, probs)) = scored else {
                tracing::error!("VAD worker panicked");
                return;
            };
            self.input.restore_vad(vad);
            for event in self.input.on_probabilities(&probs) {
                self.on_vad_event(event, &td).await;
            }
        }
        if self.turn.is_none() {
            self.input
                .trim_idle(td.prefix_padding_ms as u64 + END_PAD_MS);
        }
        self.check_idle(&td).await;
    }

    pub(super) async fn on_vad_event(&mut self, event: VadEvent, td: &TurnDetection) {
        let (min_interrupt_ms, interrupt) = (td.min_interrupt_ms, td.interrupt_response);
        let prefix_padding_ms = td.prefix_padding_ms as u64;
        match event {
            VadEvent::Speaking {
                start_ms,
                duration_ms,
            } => {
                let item_id = match &self.turn {
                    Some(t) if t.confirmed => {
                        self.detect_while_speaking(start_ms, duration_ms, prefix_padding_ms);
                        return;
                    }
                    Some(t) => t.item_id.clone(),
                    None => {
                        let item_id = self.ids.next("item");
                        self.turn = Some(OpenTurn {
                            item_id: item_id.clone(),
                            confirmed: false,
                            early: None,
                            judged: None,
                        });
                        item_id
                    }
                };
                let interrupting = interrupt && self.response.is_some();
                let needed = if interrupting {
                    min_interrupt_ms as u64
                } else {
                    MIN_TURN_SPEECH_MS
                };
                if duration_ms < needed {
                    return;
                }
                if let Some(t) = self.turn.as_mut() {
                    t.confirmed = true;
                }
                self.emit(CallEvent::SpeechStarted {
                    audio_start_ms: start_ms,
                    item_id,
                })
                .await;
                if interrupting {
                    self.pause_for_barge_in().await;
                }
            }
            VadEvent::Paused(segment) => {
                if !self.turn.as_ref().is_some_and(|t| t.confirmed) {
                    return;
                }
                // Behind every caller who has finished speaking, until this turn ends too.
                let opts = self.transcribe_options(Priority::Speculative);
                let span = self.input.span(
                    (segment.start_ms as u64).saturating_sub(prefix_padding_ms),
                    segment.end_ms as u64 + END_PAD_MS,
                );
                let urgency = opts.urgency.clone();
                let listening = td.eagerness.map(|_| self.listen(span.start));
                let job = self.deps.stt.transcribe(self.input.copy(&span), opts);
                self.early_seq += 1;
                let result =
                    EarlyResult::spawn(job, self.early_seq, listening, self.early_tx.clone());
                let Some(turn) = self.turn.as_mut() else {
                    return;
                };
                turn.early = Some(EarlyTranscript {
                    seq: self.early_seq,
                    segment,
                    span,
                    result,
                    urgency,
                });
                // A draft for an earlier pause of this turn answers fewer words.
                self.keep_draft_for(Some(self.early_seq));
            }
            VadEvent::Resumed => {
                // Dropping the job stops whisper.cpp.
                let early = self.turn.as_mut().and_then(|t| {
                    t.judged = None; // it judged words the caller has gone on from
                    t.early.take()
                });
                if let Some(early) = early {
                    drop(early);
                    self.count_early("cancelled");
                }
                self.drop_draft("cancelled");
            }
            VadEvent::Ended(segment) => {
                let Some(turn) = self.turn.take() else {
                    return;
                };
                if !turn.confirmed {
                    tracing::debug!(
                        ms = segment.end_ms - segment.start_ms,
                        "short speech ignored (backchannel or noise)"
                    );
                    return;
                }
                let end_ms = segment.end_ms as u64;
                // Speech was heard: a caller waiting after a reply is idle from here on.
                if self.idle_from_ms.is_some() {
                    self.idle_from_ms = Some(self.input.now_ms());
                }
                let now = Instant::now();
                let spoke_at = self.input.arrival_of(end_ms).unwrap_or(now);
                self.deps
                    .metrics
                    .end_of_speech_seconds
                    .observe((now - spoke_at).as_secs_f64());
                let ended_by = turn.judged.map_or("silence", |j| j.as_str());
                self.deps
                    .metrics
                    .turn_ends_total
                    .with_label_values(&[ended_by])
                    .inc();
                self.emit(CallEvent::SpeechStopped {
                    audio_end_ms: end_ms,
                    item_id: turn.item_id.clone(),
                })
                .await;
                let (start_ms, end_ms) = (
                    (segment.start_ms as u64).saturating_sub(prefix_padding_ms),
                    end_ms + END_PAD_MS,
                );
                // The transcription started at the pause serves if it heard exactly this turn.
                let span = self.input.span(start_ms, end_ms);
                let early = match turn.early {
                    Some(e) if e.segment == segment && e.span == span => {
                        self.count_early("used");
                        e.urgency.raise(Priority::Live);
                        Some(e)
                    }
                    Some(e) => {
                        drop(e);
                        self.count_early("stale");
                        None
                    }
                    None => None,
                };
                self.keep_draft_for(early.as_ref().map(|e| e.seq));
                let audio = self.input.take_range(start_ms, end_ms);
                self.commit(turn.item_id, audio, true, spoke_at, early)
                    .await;
            }
        }
    }

    pub(super) async fn commit_client_audio(&mut self, event_id: Option<String>) {
        let buffered = self.input.buffered_ms();
        if buffered < MIN_COMMIT_MS {
            let err = CallError::invalid(
                "input_audio_buffer_commit_empty",
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, but buffer only has {buffered}ms of audio."
                ),
            );
            self.error(err, event_id).await;
            return;
        }
        let item_id = match self.turn.take() {
            Some(t) => t.item_id,
            None => self.ids.next("item"),
        };
        let (audio, _) = self.input.take_all();
        self.commit(item_id, audio, false, Instant::now(), None)
            .await;
    }

    /// How an early transcription ended: `used`, `cancelled` or `stale`.
    fn count_early(&self, outcome: &str) {
        self.deps
            .metrics
            .early_transcriptions_total
            .with_label_values(&[outcome])
            .inc();
    }

    /// Add the user item for committed audio and transcribe it in the background, or take
    /// the result of the transcription already started for it (`early`).
    async fn commit(
        &mut self,
        item_id: String,
        audio: Vec<f32>,
        from_vad: bool,
        v2v_start: Instant,
        early: Option<EarlyTranscript>,
    ) {
        self.add_committed_audio(&item_id).await;
        self.keep_for_detection(&audio);
        self.pending_stt += 1;
        let transcribed: BoxFuture<'static, (SttOutcome, Duration)> = match early {
            Some(e) => Box::pin(e.result.outcome()),
            None => {
                let opts = self.transcribe_options(Priority::Live);
                Box::pin(timed(self.deps.stt.transcribe(audio, opts)))
            }
        };
        let tx = self.stt_tx.clone();
        let token = self.token.clone();
        let stt_seconds = self.deps.metrics.stt_seconds.clone();
        tokio::spawn(async move {
            let (result, took) = tokio::select! {
                // The call ended: dropping the job tells the worker to skip it.
                () = token.cancelled() => return,
                r = transcribed => r,
            };
            stt_seconds.observe(took.as_secs_f64());
            let _ = tx
                .send(Transcribed {
                    item_id,
                    result,
                    from_vad,
                    v2v_start,
                })
                .await;
        });
    }

    /// Add the user item `item_id` for audio just committed, its transcript to come.
    pub(super) async fn add_committed_audio(&mut self, item_id: &str) {
        let item = Item::message(
            item_id.to_owned(),
            Role::User,
            vec![Content::InputAudio { transcript: None }],
        );
        let previous_item_id = self.conversation.last_id().map(str::to_owned);
        let _ = self.conversation.insert(item.clone(), None);
        self.emit(CallEvent::AudioCommitted {
            item_id: item_id.to_owned(),
            previous_item_id: previous_item_id.clone(),
        })
        .await;
        self.emit(CallEvent::ItemCreated {
            previous_item_id,
            item,
        })
        .await;
    }

    /// The user audio item `item_id` was heard as `text`: keep it and tell the client.
    pub(super) async fn record_transcript(
        &mut self,
        item_id: &str,
        text: &str,
        audio_seconds: f64,
        tokens: Vec<Token>,
    ) {
        if let Some(item) = self.conversation.get_mut(item_id)
            && let ItemKind::Message { content, .. } = &mut item.kind
            && let Some(Content::InputAudio { transcript }) = content.first_mut()
        {
            *transcript = Some(text.to_owned());
        }
        self.emit(CallEvent::InputTranscriptCompleted {
            item_id: item_id.to_owned(),
            content_index: 0,
            transcript: text.to_owned(),
            audio_seconds,
            tokens,
        })
        .await;
    }

    pub(super) async fn on_transcribed(&mut self, t: Transcribed) {
        self.pending_stt = self.pending_stt.saturating_sub(1);
        let words = match t.result {
            Ok(heard) => {
                self.learn_language(&heard, "turn");
                if heard.loops_stopped > 0 {
                    self.deps
                        .metrics
                        .stt_loops_stopped_total
                        .with_label_values(&[heard.language.as_str()])
                        .inc();
                }
                let text = heard.text.clone();
                let tokens = heard.tokens().cloned().collect();
                self.record_transcript(&t.item_id, &text, heard.audio_secs, tokens)
                    .await;
                // While the agent speaks, "mm-hmm" and "yeah" are listening, not a new turn.
                let interrupting = self
                    .response
                    .as_ref()
                    .is_some_and(|r| r.barge_in_at.is_some());
                has_words(&text) && !(interrupting && is_backchannel(&text))
            }
            Err(message) => {
                self.deps
                    .metrics
                    .errors_total
                    .with_label_values(&["transcription_failed"])
                    .inc();
                self.emit(CallEvent::InputTranscriptFailed {
                    item_id: t.item_id.clone(),
                    content_index: 0,
                    message,
                })
                .await;
                false
            }
        };
        if !words {
            // Nothing (or only a backchannel) was said: forget the turn; a paused response goes on.
            if self.conversation.delete(&t.item_id).is_ok() {
                self.emit(CallEvent::ItemDeleted { item_id: t.item_id })
                    .await;
            }
            self.resume_after_false_interruption();
            if self.pending_stt == 0
                && let Some((opts, v2v)) = self.deferred_response.take()
            {
                self.start_response(opts, v2v).await;
            }
            return;
        }
        self.deps.metrics.turns_total.inc();
        if self.config.transcription_only {
            // No response will store this turn: it is stored as soon as it is transcribed.
            self.persist_through(Some(&t.item_id), false);
        }
        if self
            .response
            .as_ref()
            .is_some_and(|r| r.barge_in_at.is_some())
        {
            self.cancel_response("turn_detected").await;
        }
        if t.from_vad && self.answers_turns() {
            self.deferred_response
                .get_or_insert((Default::default(), Some(t.v2v_start)));
        }
        if self.pending_stt == 0
            && self.response.is_none()
            && let Some((opts, v2v)) = self.deferred_response.take()
        {
            self.start_response(opts, v2v.or(Some(t.v2v_start))).await;
        }
    }

    pub(super) fn resume_after_false_interruption(&mut self) {
        if let Some(r) = self.response.as_mut()
            && r.barge_in_at.take().is_some()
        {
            tracing::debug!(response = %r.id, "interruption had no words: resuming");
            r.playback.resume();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_backchannel;

    #[test]
    fn backchannels_are_only_listening_sounds() {
        for t in ["Mm-hmm.", "Yeah, okay.", "Uh-huh", "I see.", "hmm"] {
            assert!(is_backchannel(t), "{t}");
        }
        for t in [
            "",
            "Stop.",
            "Yeah, but what about London?",
            "Okay, cancel my order.",
        ] {
            assert!(!is_backchannel(t), "{t}");
        }
    }
}
