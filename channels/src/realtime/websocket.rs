//! A Realtime WebSocket connection: one reader (client events -> call commands) and one
//! writer (call events -> server events). The socket is the call: when it closes, the call
//! handle is dropped and everything the call started stops.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard_pipeline::call::{CallError, CallEvent, CallHandle, end_call};
use switchboard_pipeline::metrics::CallMetrics;
use tokio::sync::mpsc;

use super::connection::{Connection, EventWriter};
use super::server_events::Transport;
use super::session::RealtimeSession;

/// WebSocket messages larger than this violate the protocol and close the socket (1009).
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Serve one connection until either side ends it (the client closing, or the call ending:
/// then the socket is closed with 1000).
pub async fn serve(
    socket: WebSocket,
    call: CallHandle,
    session: RealtimeSession,
    metrics: CallMetrics,
    limits: Option<std::sync::Arc<dyn super::ConnectionLimits>>,
) {
    let CallHandle {
        id,
        commands,
        events,
        guard,
        task,
    } = call;
    let connection = Connection::new(session, Transport::WebSocket).with_limits(limits);
    let (sink, mut stream) = socket.split();
    let (local_tx, local_rx) = mpsc::channel::<CallError>(32);
    let mut writer = tokio::spawn(write_events(sink, events, local_rx, connection.writer()));
    tracing::info!(call = %id, "realtime session started");

    // The writer ends first when the call ends on the server's side (hung up from outside).
    let mut finished = None;
    let close = loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            done = &mut writer => {
                finished = Some(done);
                break Some((1000u16, "call ended"));
            }
        };
        let Some(msg) = msg else {
            break None;
        };
        let command = match msg {
            Ok(Message::Text(text)) => connection.command(&text),
            Ok(Message::Close(_)) => break None,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Binary(_)) => Err(CallError::invalid(
                "invalid_event",
                "Binary frames are not part of the Realtime protocol; send JSON text events.",
            )),
            Err(e) => {
                tracing::info!(call = %id, error = %e, "realtime socket error");
                break Some((1009u16, "protocol violation"));
            }
        };
        let command = match command {
            Ok(cmd) => connection.admit(&cmd).await.map(|()| cmd),
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
    end_call(&commands, guard, task).await;
    drop(local_tx);
    let sink = match finished {
        Some(done) => done,
        None => writer.await,
    };
    if let Ok(mut sink) = sink {
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

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

async fn send(sink: &mut Sink, v: &Value) -> bool {
    sink.send(Message::Text(v.to_string().into())).await.is_ok()
}

async fn write_events(
    mut sink: Sink,
    mut events: mpsc::Receiver<CallEvent>,
    mut local: mpsc::Receiver<CallError>,
    mut writer: EventWriter,
) -> Sink {
    if !send(&mut sink, &writer.session_created()).await {
        return sink;
    }
    loop {
        let rendered = tokio::select! {
            biased;
            err = local.recv() => match err {
                Some(e) => writer.error(&e).await,
                None => break,
            },
            ev = events.recv() => match ev {
                Some(ev) => writer.event(&ev).await,
                None => break,
            },
        };
        for v in &rendered {
            if !send(&mut sink, v).await {
                return sink;
            }
        }
    }
    sink
}
