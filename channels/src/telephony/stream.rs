//! A telephony media stream as a call: G.711 at 8 kHz both ways, `mark`s to learn what the
//! caller has heard, `clear` on barge-in, DTMF into the conversation.
//!
//! The stream opens with `connected` and `start`; the call starts on `start` (its custom
//! parameters pick persona and user). Each reply frame is followed by a mark naming the
//! item and the audio played up to it, so the provider's echo says exactly how much the
//! caller heard. When the caller talks over the reply we send `clear`; once the response is
//! cut, the item is truncated to the last mark heard before the clear (the pipeline's own
//! estimate cannot see the provider's network and playout delay). Malformed messages are
//! logged, counted and skipped: a phone call does not drop over one bad frame.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard_pipeline::call::{
    CallEvent, CallHandle, CallInput, Command, ResponseOptions, end_call,
};
use switchboard_pipeline::conversation::{Content, Item, Role};
use switchboard_pipeline::llm::{ActionNotice, ToolChoice};
use switchboard_pipeline::metrics::CallMetrics;
use tokio::sync::mpsc;

use super::control::{CallControlHook, PendingControl};
use super::protocol::{self, Dialect, Inbound, StreamStart};
use crate::audio_format::AudioFormat;

/// The provider must send `start` within this long of connecting.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What a keypad digit means on this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtmfAction {
    /// The caller said this.
    Say(String),
    /// The agent must call this tool (e.g. `escalate_to_human` for "press 0").
    Tool(String),
}

pub type DtmfMap = HashMap<char, DtmfAction>;

/// What the reader tells the writer.
enum Note {
    /// A mark came back: the audio before it has played.
    Played(String),
}

fn command(input: CallInput) -> Command {
    Command {
        event_id: None,
        input,
    }
}

/// Serve one media stream. `start_call` turns the `start` message into a call (or `None`
/// when the gateway cannot take one: the socket is then closed).
pub async fn serve(
    socket: WebSocket,
    dialect: Dialect,
    metrics: CallMetrics,
    control: CallControlHook,
    start_call: impl FnOnce(&StreamStart) -> Option<(CallHandle, DtmfMap)>,
) {
    let (mut sink, mut stream) = socket.split();
    let start = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(Ok(msg)) = stream.next().await {
            let Message::Text(text) = msg else { continue };
            match protocol::parse(dialect, &text) {
                Ok(Inbound::Start(s)) => return Some(s),
                Ok(Inbound::Stop) => return None,
                Ok(_) => {}
                Err(e) => skip(&metrics, &e.message),
            }
        }
        None
    })
    .await;
    let Ok(Some(start)) = start else {
        tracing::info!("telephony stream ended before its start message");
        let _ = sink.close().await;
        return;
    };
    let Some((call, dtmf)) = start_call(&start) else {
        let _ = sink.close().await;
        return;
    };
    let CallHandle {
        id,
        commands,
        events,
        guard,
        task,
    } = call;
    tracing::info!(call = %id, provider_call = %start.call_id, stream = %start.stream_id, "phone call started");
    let (notes_tx, notes_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_events(
        sink,
        events,
        notes_rx,
        dialect,
        start.clone(),
        commands.clone(),
        control,
    ));
    while let Some(msg) = stream.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let input = match protocol::parse(dialect, &text) {
            Ok(Inbound::Media {
                payload,
                inbound: true,
            }) => match start.format.decode(&payload) {
                Ok(samples) => CallInput::AppendAudio(samples),
                Err(e) => {
                    skip(&metrics, &e.to_string());
                    continue;
                }
            },
            Ok(Inbound::Dtmf { digit }) => {
                // A key press is a user turn of its own: the agent answers it, saying what
                // the persona maps the digit to, or calling the tool it maps it to.
                let pressed = format!("[The caller pressed the key {digit} on the phone keypad.]");
                let (text, tool) = match dtmf.get(&digit) {
                    Some(DtmfAction::Say(t)) => (t.clone(), None),
                    Some(DtmfAction::Tool(name)) => (pressed, Some(name.clone())),
                    None => (pressed, None),
                };
                let item =
                    Item::message(String::new(), Role::User, vec![Content::InputText { text }]);
                let created = CallInput::CreateItem {
                    previous_item_id: None,
                    item,
                };
                if commands.send(command(created)).await.is_err() {
                    break;
                }
                CallInput::CreateResponse(ResponseOptions {
                    tool_choice: tool.map(ToolChoice::Function),
                    interrupt: true,
                    ..ResponseOptions::default()
                })
            }
            Ok(Inbound::Mark { name }) => {
                let _ = notes_tx.send(Note::Played(name));
                continue;
            }
            Ok(Inbound::Stop) => break,
            Ok(_) => continue,
            Err(e) => {
                skip(&metrics, &e.message);
                continue;
            }
        };
        if commands.send(command(input)).await.is_err() {
            break;
        }
    }
    end_call(&commands, guard, task).await;
    drop(notes_tx);
    if let Ok(mut sink) = writer.await {
        let _ = sink.close().await;
    }
    tracing::info!(call = %id, "phone call ended");
}

fn skip(metrics: &CallMetrics, why: &str) {
    tracing::warn!(error = why, "skipping a malformed telephony message");
    metrics
        .errors_total
        .with_label_values(&["telephony_message"])
        .inc();
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Per assistant item: reply audio sent (ms), audio heard according to marks (ms), and
/// whether a `clear` has been sent (marks after it are not evidence of playing).
#[derive(Debug, Default)]
struct Sent {
    sent_ms: u64,
    heard_ms: u64,
    cleared: bool,
}

async fn write_events(
    mut sink: Sink,
    mut events: mpsc::Receiver<CallEvent>,
    mut notes: mpsc::UnboundedReceiver<Note>,
    dialect: Dialect,
    start: StreamStart,
    commands: mpsc::Sender<Command>,
    hook: CallControlHook,
) -> Sink {
    let format: AudioFormat = start.format;
    let stream_id = start.stream_id.clone();
    let mut items: HashMap<String, Sent> = HashMap::new();
    let mut current: Option<String> = None;
    let mut control = PendingControl::default();
    let unheard = |items: &HashMap<String, Sent>, current: &Option<String>| {
        current
            .as_ref()
            .and_then(|i| items.get(i))
            .map_or(0, |s| s.sent_ms.saturating_sub(s.heard_ms))
    };
    loop {
        let deadline = control.deadline();
        let out: Vec<Value> = tokio::select! {
            () = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                if let Some(c) = control.take() {
                    let (hook, start) = (hook.clone(), start.clone());
                    tokio::spawn(async move {
                        tracing::info!(provider_call = %start.call_id, control = ?c, "call control");
                        if let Err(e) = hook(start, c).await {
                            tracing::warn!(error = %e, "call control failed");
                        }
                    });
                }
                continue;
            }
            note = notes.recv() => match note {
                Some(Note::Played(name)) => {
                    if let Some((item, ms)) = name.rsplit_once(':')
                        && let (Some(s), Ok(ms)) = (items.get_mut(item), ms.parse::<u64>())
                        && !s.cleared
                    {
                        s.heard_ms = s.heard_ms.max(ms);
                    }
                    if unheard(&items, &current) == 0 {
                        control.all_heard();
                    }
                    continue;
                }
                None => vec![],
            },
            ev = events.recv() => match ev {
                None => break,
                Some(CallEvent::AudioDelta { part, samples }) => {
                    let s = items.entry(part.item_id.clone()).or_default();
                    s.sent_ms += samples.len() as u64 * 1000 / format.rate() as u64;
                    current = Some(part.item_id.clone());
                    let name = format!("{}:{}", part.item_id, s.sent_ms);
                    vec![
                        protocol::media(dialect, &stream_id, &format.encode(&samples)),
                        protocol::mark(dialect, &stream_id, &name),
                    ]
                }
                Some(CallEvent::PlaybackCleared { .. }) => {
                    if let Some(s) = current.as_ref().and_then(|i| items.get_mut(i)) {
                        s.cleared = true;
                    }
                    vec![protocol::clear(dialect, &stream_id)]
                }
                Some(CallEvent::ItemTruncated { item_id, content_index, audio_end_ms }) => {
                    // The pipeline cut the item at its own estimate; the marks know better.
                    if let Some(s) = items.get(&item_id)
                        && s.cleared
                        && s.heard_ms < audio_end_ms as u64
                    {
                        let fix = CallInput::TruncateItem {
                            item_id,
                            content_index,
                            audio_end_ms: s.heard_ms as u32,
                        };
                        let _ = commands.try_send(command(fix));
                    }
                    continue;
                }
                Some(CallEvent::Error(e)) => {
                    tracing::debug!(code = e.code, message = %e.message, "call error on a phone line");
                    continue;
                }
                Some(CallEvent::Action(ActionNotice::CallControl(c))) => {
                    control.request(c);
                    continue;
                }
                Some(CallEvent::ResponseDone(_)) => {
                    control.response_done(unheard(&items, &current));
                    continue;
                }
                Some(_) => continue,
            },
        };
        for v in out {
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
