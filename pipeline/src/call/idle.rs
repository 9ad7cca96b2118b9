//! The Realtime API's `idle_timeout_ms`: when the caller says nothing for that long after a
//! reply has played, the silence is committed as an empty user turn
//! (`input_audio_buffer.timeout_triggered`, then `committed`) and the agent answers it, told
//! how long the caller has been quiet, so it can check they are still there.
//!
//! The clock is the caller's audio (what the client has sent), from the moment the last
//! response's audio was all sent, which is paced at real time. Speech that turns out to be
//! no turn (a cough) restarts it; a response, from any source, stops it until it ends.

use super::actor::CallActor;
use super::events::{CallEvent, ResponseOptions};
use crate::session::TurnDetection;

impl CallActor {
    /// Commit the caller's silence as a turn if it has lasted the session's idle timeout.
    pub(super) async fn check_idle(&mut self, td: &TurnDetection) {
        let (Some(timeout), Some(from)) = (td.idle_timeout_ms, self.idle_from_ms) else {
            return;
        };
        let now = self.input.now_ms();
        let quiet = self.turn.is_none()
            && self.response.is_none()
            && self.deferred_response.is_none()
            && self.pending_stt == 0;
        if !quiet || now < from + u64::from(timeout) || !self.answers_turns() {
            return;
        }
        self.idle_from_ms = None;
        let item_id = self.ids.next("item");
        self.emit(CallEvent::IdleTimeout {
            audio_start_ms: from,
            audio_end_ms: now,
            item_id: item_id.clone(),
        })
        .await;
        // The VAD heard no speech in it: its transcript is empty, with no need to ask Whisper
        // (which tends to make words up from silence).
        self.add_committed_audio(&item_id).await;
        let quiet_secs = (now - from) as f64 / 1000.0;
        self.record_transcript(&item_id, "", quiet_secs, Vec::new())
            .await;
        let opts = ResponseOptions {
            instructions: Some(idle_instructions(&self.config.instructions, now - from)),
            ..Default::default()
        };
        self.start_response(opts, None).await;
    }
}

/// The session's instructions, and what happened: the empty turn carries no words for the
/// LLM to answer.
fn idle_instructions(instructions: &str, quiet_ms: u64) -> String {
    let note = format!(
        "The caller has said nothing for {} seconds since your last reply. In one short \
         sentence, check whether they are still there or need anything else.",
        quiet_ms.div_ceil(1000)
    );
    match instructions.trim().is_empty() {
        true => note,
        false => format!("{instructions}\n\n{note}"),
    }
}

#[cfg(test)]
mod tests {
    use super::idle_instructions;

    #[test]
    fn the_note_follows_the_sessions_instructions() {
        let with = idle_instructions("Be brief.", 5_400);
        assert!(with.starts_with("Be brief.\n\n"), "{with}");
        assert!(with.contains("nothing for 6 seconds"), "{with}");
        assert!(idle_instructions("  ", 3_000).starts_with("The caller has said nothing for 3"));
    }
}
