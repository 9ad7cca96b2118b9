//! A Realtime WebSocket connection: one reader (client events -> call commands) and one
//! writer (call events -> server events). The socket is the call: when it closes, the call
//! handle is dropped and everything the call started stops.

use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use switchboard_pipeline::call::{CallError, CallEvent, CallHandle, CallInput, Command};
use switchboard_pipeline::metrics::CallMetrics;
use tokio::sync::mpsc;

use super::client_events::{self, ClientEvent};
use super::server_events::{self, EventIds, Transport};
use super::session::RealtimeSession;

/// WebSocket messages larger than this violate the protocol and close the socket (1009).
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Serve one connection until either side ends it.
pub async fn serve(
    socket: WebSocket,
    call: CallHandle,
    session: RealtimeSession,
    metrics: CallMetrics,
) {
    let CallHandle {
        id,
        commands,
        events,
        guard,
        task,
    } = call;
    let session = Arc::new(Mutex::new(session));
    let (sink, mut stream) = socket.split();
    let (local_tx, local_rx) = mpsc::channel::<CallError>(32);
    let writer = tokio::spawn(write_events(sink, events, local_rx, Arc::clone(&session)));
    tracing::info!(call = %id, "realtime session started");

    let close = loop {
        let Some(msg) = stream.next().await else {
            break None;
        };
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) => break None,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Binary(_)) => {
                let err = CallError::invalid(
                    "invalid_event",
                    "Binary frames are not part of the Realtime protocol; send JSON text events.",
                );
                metrics.errors_total.with_label_values(&[err.code]).inc();
                if local_tx.send(err).await.is_err() {
                    break None;
                }
                continue;
            }
            Err(e) => {
                tracing::info!(call = %id, error = %e, "realtime socket error");
                break Some((1009u16, "protocol violation"));
            }
        };
        let command = match client_events::parse(&text) {
            Ok(parsed) => to_command(parsed, &session),
            Err(e) => Err(e),
        };
        match command {
            Ok(cmd) => {
                if commands.send(cmd).await.is_err() {
                    break None;
                }
            }
            Err(err) => {
                tracing::debug!(call = %id, code = err.code, message = %err.message, "bad client event");
                metrics.errors_total.with_label_values(&[err.code]).inc();
                if local_tx.send(err).await.is_err() {
                    break None;
                }
            }
        }
    };
    let _ = commands
        .send(Command {
            event_id: None,
            input: CallInput::Shutdown,
        })
        .await;
    drop(guard);
    drop(local_tx);
    let _ = task.await;
    if let Ok(mut sink) = writer.await {
        if let Some((code, reason)) = close {
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                })))
                .await;
        }
        let _ = sink.close().await;
    }
    tracing::info!(call = %id, "realtime session ended");
}

fn to_command(
    parsed: client_events::Parsed,
    session: &Mutex<RealtimeSession>,
) -> Result<Command, CallError> {
    let event_id = parsed.event_id;
    let fail = |e: CallError| e.with_event_id(event_id.clone());
    let input = match parsed.event {
        ClientEvent::SessionUpdate(v) => {
            let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
            let next = s.apply(&v).map_err(fail)?;
            *s = next;
            CallInput::UpdateSession(Box::new(s.config.clone()))
        }
        ClientEvent::AudioAppend(bytes) => {
            let format = session
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .input_format;
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

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

async fn write_events(
    mut sink: Sink,
    mut events: mpsc::Receiver<CallEvent>,
    mut local: mpsc::Receiver<CallError>,
    session: Arc<Mutex<RealtimeSession>>,
) -> Sink {
    let mut ids = EventIds::default();
    let created = {
        let s = session.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::json!({"type": "session.created", "event_id": "event_000000", "session": s.to_json()})
    };
    if sink
        .send(Message::Text(created.to_string().into()))
        .await
        .is_err()
    {
        return sink;
    }
    loop {
        let rendered = tokio::select! {
            biased;
            err = local.recv() => match err {
                Some(e) => vec![server_events::error_event(&mut ids, &e)],
                None => break,
            },
            ev = events.recv() => match ev {
                Some(ev) => {
                    let s = session.lock().unwrap_or_else(|p| p.into_inner());
                    server_events::render(&ev, &s, &mut ids, Transport::WebSocket)
                }
                None => break,
            },
        };
        for v in rendered {
            if sink
                .send(Message::Text(v.to_string().into()))
                .await
                .is_err()
            {
                return sink;
            }
        }
    }
    sink
}
