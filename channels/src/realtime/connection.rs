//! What every Realtime transport shares: client event text -> call command, and call event
//! -> server event JSON. The WebSocket and the WebRTC data channel differ only in how the text
//! travels and in where audio goes (inside the events, or on a media track).

use std::sync::{Arc, Mutex, MutexGuard};

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

/// Asked before each client `response.create`: `Ok` (within the limit) or `Err` (over it),
/// each with where the connection now stands. The gateway supplies it (its limiter).
pub type ResponseGate = Arc<
    dyn Fn() -> futures_util::future::BoxFuture<'static, Result<RateLimit, RateLimit>>
        + Send
        + Sync,
>;

/// One Realtime connection's protocol state, shared by its reader and writer.
#[derive(Clone)]
pub struct Connection {
    session: Arc<Mutex<RealtimeSession>>,
    transport: Transport,
    gate: Option<ResponseGate>,
    /// The latest limit states, reported in every `rate_limits.updated`.
    limits: Arc<Mutex<Vec<RateLimit>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("transport", &self.transport)
            .field("gated", &self.gate.is_some())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub fn new(session: RealtimeSession, transport: Transport) -> Self {
        Self {
            session: Arc::new(Mutex::new(session)),
            transport,
            gate: None,
            limits: Arc::default(),
        }
    }

    /// Limit the responses the client asks for.
    pub fn with_gate(mut self, gate: Option<ResponseGate>) -> Self {
        self.gate = gate;
        self
    }

    /// Whether a command may go to the call: a `response.create` over the limit is refused
    /// with `rate_limit_exceeded` (the writer then also sends `rate_limits.updated`).
    pub async fn admit(&self, cmd: &Command) -> Result<(), CallError> {
        let (Some(gate), CallInput::CreateResponse(_)) = (&self.gate, &cmd.input) else {
            return Ok(());
        };
        let (allowed, state) = match gate().await {
            Ok(s) => (true, s),
            Err(s) => (false, s),
        };
        let reset = state.reset_seconds;
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = vec![state];
        if allowed {
            return Ok(());
        }
        Err(CallError::invalid(
            "rate_limit_exceeded",
            format!("Too many responses requested in this session; try again in {reset:.1} s."),
        )
        .with_event_id(cmd.event_id.clone()))
    }

    fn limits_json(&self) -> Value {
        let limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        Value::Array(
            limits
                .iter()
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
            ClientEvent::ResponseCancel => CallInput::CancelResponse,
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
    pub fn error(&mut self, e: &CallError) -> Vec<Value> {
        let mut out = vec![server_events::error_event(&mut self.ids, e)];
        if e.code == "rate_limit_exceeded" {
            out.push(
                json!({"type": "rate_limits.updated", "event_id": self.ids.next(),
                "rate_limits": self.connection.limits_json()}),
            );
        }
        out
    }

    pub fn event(&mut self, ev: &CallEvent) -> Vec<Value> {
        let mut out = {
            let s = self.connection.session();
            server_events::render(ev, &s, &mut self.ids, self.connection.transport)
        };
        for v in &mut out {
            if v["type"] == "rate_limits.updated" {
                v["rate_limits"] = self.connection.limits_json();
            }
        }
        out
    }
}
