//! What every Realtime transport shares: client event text -> call command, and call event
//! -> server event JSON. The WebSocket and the WebRTC data channel differ only in how the text
//! travels and in where audio goes (inside the events, or on a media track).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use switchboard_pipeline::call::{CallError, CallEvent, CallInput, Command};

use super::client_events::{self, ClientEvent};
use super::server_events::{self, EventIds, Transport};
use super::session::RealtimeSession;

/// Where a connection stands against a rate limit, as `rate_limits.updated` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub name: &'static str,
    pub limit: u64,
    pub remaining: u64,
    pub reset_seconds: f64,
}

/// The limits a connection answers to; the gateway supplies them (its limiter).
pub trait ConnectionLimits: Send + Sync {
    /// Asked before each client `response.create`, which it counts: `Ok` within the limit,
    /// `Err` over it, each with where the connection now stands (`Ok(None)`: no limit on
    /// responses).
    fn admit_response(&self) -> BoxFuture<'static, Result<Option<RateLimit>, RateLimit>>;
    /// The limits that are looked at, not counted, for each `rate_limits.updated` (the
    /// tenant's token budget).
    fn look(&self) -> BoxFuture<'static, Vec<RateLimit>>;
}

/// How long a `rate_limits.updated` waits for [`ConnectionLimits::look`] before it reports
/// what it last knew: events behind it must not stall on a slow Redis.
const LOOK_TIMEOUT: Duration = Duration::from_millis(50);

/// What a connection last knew of its limits.
#[derive(Debug, Default)]
struct Known {
    /// The response limit, as the last `response.create` left it.
    responses: Option<RateLimit>,
    /// The looked-at limits, as the last look found them.
    looked: Vec<RateLimit>,
}

/// One Realtime connection's protocol state, shared by its reader and writer.
#[derive(Clone)]
pub struct Connection {
    session: Arc<Mutex<RealtimeSession>>,
    transport: Transport,
    limits: Option<Arc<dyn ConnectionLimits>>,
    /// The latest limit states, reported in every `rate_limits.updated`.
    known: Arc<Mutex<Known>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("transport", &self.transport)
            .field("limited", &self.limits.is_some())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub fn new(session: RealtimeSession, transport: Transport) -> Self {
        Self {
            session: Arc::new(Mutex::new(session)),
            transport,
            limits: None,
            known: Arc::default(),
        }
    }

    /// Limit the responses the client asks for, and report the limits.
    pub fn with_limits(mut self, limits: Option<Arc<dyn ConnectionLimits>>) -> Self {
        self.limits = limits;
        self
    }

    /// Whether a command may go to the call: a `response.create` over the limit is refused
    /// with `rate_limit_exceeded` (the writer then also sends `rate_limits.updated`).
    pub async fn admit(&self, cmd: &Command) -> Result<(), CallError> {
        let (Some(limits), CallInput::CreateResponse(_)) = (&self.limits, &cmd.input) else {
            return Ok(());
        };
        let verdict = limits.admit_response().await;
        let state = match &verdict {
            Ok(state) => state.clone(),
            Err(state) => Some(state.clone()),
        };
        self.known().responses = state;
        let Err(refused) = verdict else {
            return Ok(());
        };
        Err(CallError::invalid(
            "rate_limit_exceeded",
            format!(
                "Too many responses requested in this session; try again in {:.1} s.",
                refused.reset_seconds
            ),
        )
        .with_event_id(cmd.event_id.clone()))
    }

    fn known(&self) -> MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every limit as `rate_limits.updated` lists it: the response limit as it stands, the
    /// looked-at ones looked at again (or as last known, when the look is slow).
    async fn limits_json(&self) -> Value {
        if let Some(limits) = &self.limits
            && let Ok(looked) = tokio::time::timeout(LOOK_TIMEOUT, limits.look()).await
        {
            self.known().looked = looked;
        }
        let known = self.known();
        Value::Array(
            known
                .responses
                .iter()
                .chain(&known.looked)
                .map(|l| {
                    json!({"name": l.name, "limit": l.limit, "remaining": l.remaining,
                        "reset_seconds": l.reset_seconds})
                })
                .collect(),
        )
    }

    fn session(&self) -> MutexGuard<'_, RealtimeSession> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The command a client event asks for, or the error to send back (the call goes on).
    pub fn command(&self, text: &str) -> Result<Command, CallError> {
        let parsed = client_events::parse(text)?;
        let event_id = parsed.event_id;
        let fail = |e: CallError| e.with_event_id(event_id.clone());
        let input = match parsed.event {
            ClientEvent::SessionUpdate(v) => {
                let mut s = self.session();
                let next = s.apply(&v).map_err(fail)?;
                *s = next;
                CallInput::UpdateSession(Box::new(s.config.clone()))
            }
            ClientEvent::AudioAppend(_) if self.transport == Transport::WebRtc => {
                return Err(fail(CallError::invalid(
                    "invalid_event",
                    "input_audio_buffer.append is not used over WebRTC: the caller's audio \
                     travels on the media track.",
                )));
            }
            ClientEvent::AudioAppend(bytes) => {
                let format = self.session().input_format;
                let samples = format.decode(&bytes).map_err(|e| {
                    fail(
                        CallError::invalid("invalid_value", format!("Invalid 'audio': {e}"))
                            .with_param("audio"),
                    )
                })?;
                CallInput::AppendAudio(samples)
            }
            ClientEvent::AudioCommit => CallInput::CommitAudio,
            ClientEvent::AudioClear => CallInput::ClearAudio,
            ClientEvent::ItemCreate {
                previous_item_id,
                item,
            } => CallInput::CreateItem {
                previous_item_id,
                item,
            },
            ClientEvent::ItemTruncate {
                item_id,
                content_index,
                audio_end_ms,
            } => CallInput::TruncateItem {
                item_id,
                content_index,
                audio_end_ms,
            },
            ClientEvent::ItemDelete { item_id } => CallInput::DeleteItem { item_id },
            ClientEvent::ItemRetrieve { item_id } => CallInput::RetrieveItem { item_id },
            ClientEvent::ResponseCreate(opts) => CallInput::CreateResponse(opts),
            ClientEvent::ResponseCancel { response_id } => {
                CallInput::CancelResponse { response_id }
            }
            ClientEvent::OutputAudioClear => CallInput::ClearOutputAudio,
        };
        Ok(Command { event_id, input })
    }

    /// Numbers and renders the server events of one connection.
    pub fn writer(&self) -> EventWriter {
        EventWriter {
            connection: self.clone(),
            ids: EventIds::default(),
        }
    }
}

/// The writer side: `session.created` first, then call events and errors in order.
#[derive(Debug)]
pub struct EventWriter {
    connection: Connection,
    ids: EventIds,
}

impl EventWriter {
    pub fn session_created(&mut self) -> Value {
        let s = self.connection.session();
        json!({"type": "session.created", "event_id": self.ids.next(), "session": s.to_json()})
    }

    /// An error event; a refused response is followed by `rate_limits.updated`.
    pub async fn error(&mut self, e: &CallError) -> Vec<Value> {
        let mut out = vec![server_events::error_event(&mut self.ids, e)];
        if e.code == "rate_limit_exceeded" {
            out.push(
                json!({"type": "rate_limits.updated", "event_id": self.ids.next(),
                "rate_limits": self.connection.limits_json().await}),
            );
        }
        out
    }

    pub async fn event(&mut self, ev: &CallEvent) -> Vec<Value> {
        let mut out = {
            let s = self.connection.session();
            server_events::render(ev, &s, &mut self.ids, self.connection.transport)
        };
        for v in &mut out {
            if v["type"] == "rate_limits.updated" {
                v["rate_limits"] = self.connection.limits_json().await;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use switchboard_pipeline::SessionConfig;

    use super::*;

    /// Two responses a session; the token budget looks slow after the first look.
    #[derive(Default)]
    struct TwoResponses {
        asked: AtomicU64,
        looks: AtomicU64,
    }

    impl ConnectionLimits for TwoResponses {
        fn admit_response(&self) -> BoxFuture<'static, Result<Option<RateLimit>, RateLimit>> {
            let asked = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move {
                let state = RateLimit {
                    name: "requests",
                    limit: 2,
                    remaining: 2u64.saturating_sub(asked),
                    reset_seconds: 30.0,
                };
                if asked <= 2 {
                    Ok(Some(state))
                } else {
                    Err(state)
                }
            })
        }

        fn look(&self) -> BoxFuture<'static, Vec<RateLimit>> {
            let looks = self.looks.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if looks > 0 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                vec![RateLimit {
                    name: "tokens",
                    limit: 1000,
                    remaining: 1000 - 100 * looks,
                    reset_seconds: 6.0,
                }]
            })
        }
    }

    fn limited() -> Connection {
        let session = RealtimeSession::new("sess_1".into(), "m".into(), SessionConfig::default());
        Connection::new(session, Transport::WebSocket)
            .with_limits(Some(Arc::new(TwoResponses::default())))
    }

    #[tokio::test]
    async fn a_refused_response_reports_every_limit_and_a_slow_look_reports_the_last_known() {
        let c = limited();
        let create = c
            .command(r#"{"type": "response.create", "event_id": "e1"}"#)
            .unwrap();
        let other = c
            .command(r#"{"type": "input_audio_buffer.clear"}"#)
            .unwrap();
        assert!(c.admit(&other).await.is_ok(), "only responses are counted");
        assert!(c.admit(&create).await.is_ok());
        assert!(c.admit(&create).await.is_ok());
        let refused = c.admit(&create).await.unwrap_err();
        assert_eq!(refused.code, "rate_limit_exceeded");
        assert_eq!(refused.event_id.as_deref(), Some("e1"));

        let mut w = c.writer();
        let out = w.error(&refused).await;
        assert_eq!(out[0]["type"], "error");
        assert_eq!(out[1]["type"], "rate_limits.updated");
        assert_eq!(
            out[1]["rate_limits"],
            json!([
                {"name": "requests", "limit": 2, "remaining": 0, "reset_seconds": 30.0},
                {"name": "tokens", "limit": 1000, "remaining": 1000, "reset_seconds": 6.0},
            ])
        );
        // The second look hangs: the report does not wait for it.
        let started = std::time::Instant::now();
        let out = w.error(&refused).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(out[1]["rate_limits"][1]["remaining"], 1000);
    }

    #[tokio::test]
    async fn a_connection_without_limits_admits_everything_and_reports_none() {
        let session = RealtimeSession::new("sess_1".into(), "m".into(), SessionConfig::default());
        let c = Connection::new(session, Transport::WebSocket);
        let create = c.command(r#"{"type": "response.create"}"#).unwrap();
        for _ in 0..5 {
            assert!(c.admit(&create).await.is_ok());
        }
        let e = CallError::invalid("rate_limit_exceeded", "x");
        assert_eq!(c.writer().error(&e).await[1]["rate_limits"], json!([]));
    }
}
