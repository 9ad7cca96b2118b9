//! Call control on a phone line: a hang-up or transfer the agent asked for (`end_call`,
//! `escalate_to_human`) waits until the caller has heard the reply, then the gateway's hook
//! asks the provider (Twilio's or Telnyx's REST API) to carry it out.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use switchboard_pipeline::tools::builtin::CallControl;
use tokio::time::Instant;

use super::protocol::StreamStart;

/// Carries out a control for the call `StreamStart` describes.
pub type CallControlHook =
    Arc<dyn Fn(StreamStart, CallControl) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// After the reply's audio should have played, how long to wait for the marks to confirm it.
const GRACE: Duration = Duration::from_millis(500);
/// The longest a control waits once its reply is done.
const MAX_WAIT: Duration = Duration::from_secs(15);

/// A control waiting for its reply to be heard.
#[derive(Debug, Default)]
pub struct PendingControl {
    control: Option<CallControl>,
    due: Option<Instant>,
}

impl PendingControl {
    pub fn request(&mut self, c: CallControl) {
        self.control = Some(c);
    }

    /// The response has sent all its audio; `unheard_ms` of it has not been confirmed by
    /// marks yet.
    pub fn response_done(&mut self, unheard_ms: u64) {
        if self.control.is_some() && self.due.is_none() {
            let wait = (Duration::from_millis(unheard_ms) + GRACE).min(MAX_WAIT);
            self.due = Some(Instant::now() + wait);
        }
    }

    /// The marks say everything sent has been heard.
    pub fn all_heard(&mut self) {
        if self.control.is_some() && self.due.is_some() {
            self.due = Some(Instant::now());
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.due
    }

    /// The control, once due.
    pub fn take(&mut self) -> Option<CallControl> {
        self.due = None;
        self.control.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_reply_then_fires_once() {
        let mut p = PendingControl::default();
        p.response_done(1000);
        assert_eq!(p.deadline(), None, "nothing requested");
        p.request(CallControl::Hangup);
        assert_eq!(p.deadline(), None, "the reply is still playing");
        p.response_done(1000);
        let due = p.deadline().expect("due");
        assert_eq!(due - Instant::now(), Duration::from_millis(1500));
        p.all_heard();
        assert!(
            p.deadline().expect("due") <= Instant::now(),
            "marks caught up: now"
        );
        assert_eq!(p.take(), Some(CallControl::Hangup));
        assert_eq!(p.take(), None);
        p.request(CallControl::Transfer {
            to: "+15550100".into(),
        });
        p.response_done(600_000);
        assert_eq!(p.deadline().expect("due") - Instant::now(), MAX_WAIT);
    }
}
