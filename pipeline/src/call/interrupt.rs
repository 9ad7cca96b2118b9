//! Stopping a response: barge-in pauses its audio the moment the caller's speech is
//! confirmed (their transcript then cancels or resumes it, `turns.rs`), and cancelling cuts
//! its message to what the caller heard before `response.done`.

use tokio::time::Instant;

use super::actor::{ActiveResponse, CallActor};
use super::events::{CallEvent, ResponseStatus};

impl CallActor {
    /// Cancel the active response, cut its message to what the caller heard, and end it.
    pub(super) async fn cancel_response(&mut self, reason: &'static str) {
        let now = Instant::now();
        let Some(r) = self.response.as_mut() else {
            return;
        };
        r.token.cancel();
        if let Some(at) = r.barge_in_at {
            let last = r.last_audio_sent.unwrap_or(at);
            self.deps
                .metrics
                .barge_in_seconds
                .observe(last.saturating_duration_since(at).as_secs_f64());
        }
        let (mut truncated, mut started) = (Vec::new(), false);
        if r.audio {
            let heard = if r.playback.is_paused() {
                r.playback.heard(now)
            } else {
                r.playback.pause(now)
            };
            truncated = r.heard_messages(heard);
            started = r.playback.started();
        }
        let response_id = r.id.clone();
        if started {
            self.emit(CallEvent::PlaybackCleared { response_id }).await;
        }
        for (item_id, audio_end_ms, text) in truncated {
            if let Some(m) = self
                .response
                .as_mut()
                .and_then(|r| r.messages.iter_mut().find(|m| m.item_id == item_id))
            {
                m.text.clone_from(&text);
            }
            self.conversation.set_assistant_text(&item_id, &text);
            self.emit(CallEvent::ItemTruncated {
                item_id,
                content_index: 0,
                audio_end_ms,
            })
            .await;
        }
        self.finish(ResponseStatus::Cancelled, Some(reason)).await;
    }

    /// Barge-in: stop sending audio now; the transcript decides cancel or resume.
    pub(super) async fn pause_for_barge_in(&mut self) {
        let now = Instant::now();
        let Some(r) = self.response.as_mut() else {
            return;
        };
        r.barge_in_at = Some(now);
        if !r.audio {
            return;
        }
        let started = r.playback.started();
        r.playback.pause(now);
        if started {
            let response_id = r.id.clone();
            self.emit(CallEvent::PlaybackCleared { response_id }).await;
        }
    }

    /// The client flushed its output buffer (`output_audio_buffer.clear`): the response's audio
    /// ends here, cut to what was heard, rather than being left paused with nothing to finish it.
    pub(super) async fn clear_output_audio(&mut self) {
        if self.response.as_ref().is_some_and(|r| r.audio) {
            self.cancel_response("client_cancelled").await;
        }
    }
}

impl ActiveResponse {
    /// What the caller heard of each message not heard whole, at `heard` samples of the
    /// response's playback: its item, the milliseconds of its audio heard, and its words.
    /// A message whose audio has not begun was not heard at all.
    pub(super) fn heard_messages(&self, heard: usize) -> Vec<(String, u32, String)> {
        self.messages
            .iter()
            .filter_map(|m| match self.playback.item_span(&m.item_id) {
                Some((span, true)) if heard >= span.end => None,
                Some((span, _)) => {
                    let played = heard.clamp(span.start, span.end) - span.start;
                    let text = self.playback.heard_text_in(span, heard);
                    Some((m.item_id.clone(), self.playback.ms(played), text))
                }
                None => Some((m.item_id.clone(), 0, String::new())),
            })
            .collect()
    }
}
