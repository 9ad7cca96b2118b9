//! A WebRTC call: the caller's Opus track feeds the pipeline, reply audio goes back on our
//! track in paced 20 ms frames, and Realtime events travel on the `oai-events` data channel.
//!
//! Tasks: the peer loop (this function: channel and track arrival, connection state,
//! hang-up), one inbound audio task per remote track, the data channel reader, the event
//! writer, and the pacer. The call ends when the data channel closes, the connection fails
//! or closes, the peer never connects, or the pipeline ends the call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rtc::rtp;
use serde_json::Value;
use switchboard_pipeline::call::{CallError, CallEvent, CallHandle, CallInput, Command, end_call};
use switchboard_pipeline::metrics::CallMetrics;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::RTCPeerConnectionState;

use super::codec::{FRAME_SAMPLES, OpusIn, OpusOut, RATE};
use super::jitter::{Frame, JitterBuffer};
use super::metrics::WebRtcMetrics;
use super::peer::{Peer, PeerEvent};
use crate::realtime::{Connection, EventWriter, RealtimeSession, Transport};

/// The data channel OpenAI's Realtime WebRTC clients open for events.
pub const EVENTS_CHANNEL: &str = "oai-events";
/// A peer that has not connected this long after its answer is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Events held for a data channel that has not opened yet.
const MAX_EARLY_EVENTS: usize = 1_000;

/// Serve one answered peer as a Realtime call until either side ends it, or `hangup` fires
/// (the server ending the call).
pub async fn serve(
    peer: Peer,
    call: CallHandle,
    session: RealtimeSession,
    metrics: CallMetrics,
    media_metrics: WebRtcMetrics,
    mut hangup: oneshot::Receiver<()>,
    limits: Option<std::sync::Arc<dyn crate::realtime::ConnectionLimits>>,
) {
    let CallHandle {
        id,
        commands,
        events,
        guard,
        task,
    } = call;
    let Peer {
        connection: pc,
        events: mut peer_events,
        audio,
        ssrc,
        payload_type,
        ..
    } = peer;
    let connection =
        Connection::new(session.with_media_rate(RATE), Transport::WebRtc).with_limits(limits);
    let first_seq = rand::random::<u16>();
    let out = match OpusOut::new(first_seq, rand::random::<u32>()) {
        Ok(o) => Arc::new(Mutex::new(o)),
        Err(e) => {
            tracing::error!(call = %id, error = %e, "opus encoder");
            let _ = pc.close().await;
            return;
        }
    };
    let (local_tx, local_rx) = mpsc::channel::<CallError>(32);
    let (channel_tx, channel_rx) = watch::channel::<Option<Arc<dyn DataChannel>>>(None);
    let (hangup_tx, mut hangup_rx) = mpsc::channel::<&'static str>(4);
    let writer = tokio::spawn(write_events(
        events,
        local_rx,
        connection.writer(),
        channel_rx,
        Arc::clone(&out),
    ));
    let pacer = tokio::spawn(pace(
        Arc::clone(&out),
        audio,
        ssrc,
        payload_type,
        media_metrics.clone(),
    ));
    let mut tasks = Vec::new();
    tracing::info!(call = %id, "webrtc call answered");

    let deadline = tokio::time::sleep(CONNECT_TIMEOUT);
    tokio::pin!(deadline);
    let mut connected = false;
    let reason = loop {
        tokio::select! {
            ev = peer_events.recv() => match ev {
                None => break "peer gone",
                Some(PeerEvent::State(state)) => {
                    tracing::debug!(call = %id, %state, "peer connection state");
                    match state {
                        RTCPeerConnectionState::Connected => connected = true,
                        RTCPeerConnectionState::Failed => break "connection failed",
                        RTCPeerConnectionState::Closed => break "connection closed",
                        RTCPeerConnectionState::Disconnected => break "connection lost",
                        _ => {}
                    }
                }
                Some(PeerEvent::Track(track)) => {
                    tasks.push(tokio::spawn(receive_audio(
                        track,
                        commands.clone(),
                        media_metrics.clone(),
                    )));
                }
                Some(PeerEvent::DataChannel(dc)) => {
                    let label = dc.label().await.unwrap_or_default();
                    if label != EVENTS_CHANNEL {
                        tracing::info!(call = %id, %label, "ignoring an unknown data channel");
                        continue;
                    }
                    let _ = channel_tx.send(Some(Arc::clone(&dc)));
                    tasks.push(tokio::spawn(read_events(
                        dc,
                        connection.clone(),
                        commands.clone(),
                        local_tx.clone(),
                        hangup_tx.clone(),
                        metrics.clone(),
                    )));
                }
            },
            why = hangup_rx.recv() => break why.unwrap_or("hang-up"),
            _ = &mut hangup => break "hung up by the server",
            () = &mut deadline, if !connected => break "never connected",
        }
    };
    tracing::info!(call = %id, reason, "webrtc call ending");
    end_call(&commands, guard, task).await;
    drop(local_tx);
    let _ = writer.await;
    pacer.abort();
    for t in tasks {
        t.abort();
    }
    // Close the events channel first so the caller learns at once that the call is over.
    let dc = channel_tx.borrow().clone();
    if let Some(dc) = dc {
        let _ = dc.close().await;
    }
    let _ = pc.close().await;
    tracing::info!(call = %id, "webrtc call ended");
}

/// Caller audio: RTP -> jitter buffer -> Opus decode -> the pipeline at 48 kHz.
async fn receive_audio(
    track: Arc<dyn TrackRemote>,
    commands: mpsc::Sender<Command>,
    metrics: WebRtcMetrics,
) {
    let (mut jitter, mut decoder) = (JitterBuffer::default(), None::<OpusIn>);
    while let Some(ev) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = ev else {
            continue;
        };
        let decoder = match &mut decoder {
            Some(d) => d,
            None => match OpusIn::new() {
                Ok(d) => decoder.insert(d),
                Err(e) => {
                    tracing::error!(error = %e, "opus decoder");
                    return;
                }
            },
        };
        let (late, concealed) = (jitter.counters.late, decoder.concealed);
        jitter.push(
            packet.header.sequence_number,
            packet.header.timestamp,
            packet.payload.to_vec(),
        );
        metrics.add("in", "received", 1);
        let mut samples = Vec::new();
        while let Some(frame) = jitter.pop() {
            if matches!(frame, Frame::Lost { .. }) {
                metrics.add("in", "lost", 1);
            }
            samples.extend(decoder.decode(&frame));
        }
        metrics.add("in", "late", jitter.counters.late - late);
        metrics.add("in", "concealed", decoder.concealed - concealed);
        if samples.is_empty() {
            continue;
        }
        let cmd = Command {
            event_id: None,
            input: CallInput::AppendAudio(samples),
        };
        if commands.send(cmd).await.is_err() {
            return;
        }
    }
}

/// Client events from the data channel; its closing is the caller hanging up.
async fn read_events(
    dc: Arc<dyn DataChannel>,
    connection: Connection,
    commands: mpsc::Sender<Command>,
    errors: mpsc::Sender<CallError>,
    hangup: mpsc::Sender<&'static str>,
    metrics: CallMetrics,
) {
    loop {
        let msg = match dc.poll().await {
            Some(DataChannelEvent::OnMessage(msg)) => msg,
            Some(DataChannelEvent::OnClose) | None => break,
            Some(_) => continue,
        };
        let command = match std::str::from_utf8(&msg.data) {
            Ok(text) if msg.is_string => connection.command(text),
            _ => Err(CallError::invalid(
                "invalid_event",
                "Binary messages are not part of the Realtime protocol; send JSON text events.",
            )),
        };
        let command = match command {
            Ok(cmd) => connection.admit(&cmd).await.map(|()| cmd),
            Err(e) => Err(e),
        };
        match command {
            Ok(cmd) => {
                if commands.send(cmd).await.is_err() {
                    break;
                }
            }
            Err(err) => {
                metrics.errors_total.with_label_values(&[err.code]).inc();
                if errors.send(err).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = hangup.send("data channel closed").await;
}

/// Call events: audio to the pacer, everything as Realtime events on the data channel (held
/// until it opens).
async fn write_events(
    mut events: mpsc::Receiver<CallEvent>,
    mut local: mpsc::Receiver<CallError>,
    mut writer: EventWriter,
    mut channel: watch::Receiver<Option<Arc<dyn DataChannel>>>,
    out: Arc<Mutex<OpusOut>>,
) {
    let mut early: Vec<Value> = vec![writer.session_created()];
    loop {
        let rendered = tokio::select! {
            biased;
            err = local.recv() => match err {
                Some(e) => writer.error(&e).await,
                None => break,
            },
            ev = events.recv() => match ev {
                Some(ev) => {
                    match &ev {
                        CallEvent::AudioDelta { samples, .. } => {
                            out.lock().unwrap_or_else(|p| p.into_inner()).push(samples);
                        }
                        CallEvent::PlaybackCleared { .. } => {
                            out.lock().unwrap_or_else(|p| p.into_inner()).clear();
                        }
                        _ => {}
                    }
                    writer.event(&ev).await
                }
                None => break,
            },
            Ok(()) = channel.changed() => vec![],
        };
        let dc = channel.borrow().clone();
        match dc {
            Some(dc) => {
                for v in early.drain(..).chain(rendered) {
                    if dc.send_text(&v.to_string()).await.is_err() {
                        return;
                    }
                }
            }
            None if early.len() < MAX_EARLY_EVENTS => early.extend(rendered),
            None => {}
        }
    }
}

/// Reply audio out: one 20 ms Opus frame per tick while any is queued.
async fn pace(
    out: Arc<Mutex<OpusOut>>,
    track: Arc<dyn TrackLocal>,
    ssrc: u32,
    payload_type: u8,
    metrics: WebRtcMetrics,
) {
    let started = Instant::now();
    let ts_base = rand::random::<u32>();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut partial_ticks = 0u32;
    loop {
        tick.tick().await;
        let elapsed = (started.elapsed().as_secs_f64() * RATE as f64) as u32;
        let frame = {
            let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
            let queued = o.queued_samples();
            // A partial frame is the end of a reply once nothing has joined it for a tick.
            partial_ticks = if queued > 0 && queued < FRAME_SAMPLES {
                partial_ticks + 1
            } else {
                0
            };
            o.next_frame(ts_base.wrapping_add(elapsed), partial_ticks > 1)
        };
        let Some(frame) = frame else { continue };
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker: frame.marker,
                payload_type,
                sequence_number: frame.sequence_number,
                timestamp: frame.timestamp,
                ssrc,
                ..Default::default()
            },
            payload: Bytes::from(frame.payload),
        };
        match track.write_rtp(packet).await {
            Ok(()) => metrics.add("out", "sent", 1),
            Err(e) => tracing::trace!(error = %e, "rtp write (not yet connected?)"),
        }
    }
}
