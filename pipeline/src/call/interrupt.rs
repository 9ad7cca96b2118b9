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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::actor::MessageOut;
    use crate::call::playback::Playback;

    /// A response that said "let me check" (400 samples), called a tool, and is saying "it has
    /// shipped" (400 samples so far), at one sample per ms.
    fn two_messages() -> ActiveResponse {
        let mut playback = Playback::new(1000);
        playback.begin_item("a");
        playback.push(&[0.0; 400], "let me check");
        playback.begin_item("b");
        playback.push(&[0.0; 400], "it has shipped");
        let message = |id: &str, segment, text: &str| MessageOut {
            item_id: id.into(),
            output_index: segment as u32 * 2,
            text: text.into(),
            segment,
            closed: false,
        };
        ActiveResponse {
            id: "resp_1".into(),
            generation: 1,
            token: Default::default(),
            audio: true,
            messages: vec![
                message("a", 0, "let me check"),
                message("b", 1, "it has shipped"),
                message("c", 2, "anything else?"),
            ],
            text_segment: 2,
            audio_segment: 1,
            calls: Default::default(),
            outputs: 3,
            playback,
            generation_done: false,
            error: None,
            usage: Default::default(),
            metadata: Vec::new(),
            mcp_calls: Default::default(),
            mcp_items: Vec::new(),
            mcp_listings: Default::default(),
            barge_in_at: None,
            v2v_start: None,
            last_audio_sent: None,
        }
    }

    #[test]
    fn each_message_is_cut_to_what_was_heard_of_it() {
        let r = two_messages();
        // Half of the second message heard: the first was heard whole and stays; the
        // third was not heard at all.
        assert_eq!(
            r.heard_messages(600),
            [
                ("b".to_owned(), 200, "it has".to_owned()),
                ("c".to_owned(), 0, String::new())
            ]
        );
        // Within the first: it is cut there, and the rest is not heard.
        assert_eq!(
            r.heard_messages(200),
            [
                ("a".to_owned(), 200, "let me".to_owned()),
                ("b".to_owned(), 0, String::new()),
                ("c".to_owned(), 0, String::new())
            ]
        );
    }
}
