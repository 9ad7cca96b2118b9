//! WebRTC against the WebSocket channel, and the cost of Opus.
//!
//! - voice-to-voice over WebRTC and over the Realtime WebSocket, alternating turns on the
//!   same gateway in the same run: from the last speech sample sent to the first reply
//!   audio received (an RTP packet on the remote track; a `response.output_audio.delta`);
//! - Opus CPU per call: decoding the caller's 20 ms packets and encoding 20 ms reply frames
//!   with the gateway's own codec code, as a share of one core per second of call.
//!
//! Run: `cargo bench -p switchboard-benches --bench webrtc` (needs `make build models`).

use std::time::{Duration, Instant};

use switchboard_benches::caller::QUESTIONS;
use switchboard_benches::{client_runtime, latency_row, latency_table};
use switchboard_channels::webrtc::codec::{FRAME_SAMPLES, OpusIn, OpusOut};
use switchboard_channels::webrtc::jitter::Frame;
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};
use switchboard_e2e::webrtc_client::{self, WebRtcClient, post_sdp};

const TURNS: usize = 10;
async fn webrtc_turn(c: &mut WebRtcClient, question: &str) -> Option<Duration> {
    let rate = webrtc_client::RATE;
    let mut speech = silence(200, rate);
    speech.extend(say(question, rate));
    c.speak(&speech).await.ok()?;
    let speech_end = Instant::now();
    let responses = c
        .seen
        .iter()
        .filter(|(_, v)| v["type"] == "response.done")
        .count();
    // A live microphone keeps sending (silence) while the agent answers.
    c.speak(&silence(3_000, rate)).await.ok()?;
    while c
        .seen
        .iter()
        .filter(|(_, v)| v["type"] == "response.done")
        .count()
        <= responses
    {
        c.wait_for("response.done", Duration::from_secs(60))
            .await
            .ok()?;
    }
    let first = c
        .audio
        .lock()
        .ok()?
        .packets
        .iter()
        .copied()
        .find(|&t| t > speech_end)?;
    Some(first - speech_end)
}

async fn websocket_turn(c: &mut RealtimeClient, question: &str) -> Option<Duration> {
    let rate = 24_000;
    let mut speech = silence(200, rate);
    speech.extend(say(question, rate));
    c.skip_seen();
    c.stream_audio(&speech, rate).await.ok()?;
    let speech_end = tokio::time::Instant::now();
    let before = c.log.len();
    c.stream_audio(&silence(3_000, rate), rate).await.ok()?;
    if !c.log[before..].iter().any(|r| r.kind() == "response.done") {
        c.wait_for("response.done", Duration::from_secs(60))
            .await
            .ok()?;
    }
    let first = c.log[before..]
        .iter()
        .find(|r| r.kind() == "response.output_audio.delta")?
        .at;
    Some(first - speech_end)
}

async fn compare(gw: &Gateway) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    let (mut c, offer, _) = WebRtcClient::offer(111).await.expect("offer");
    let started = Instant::now();
    let posted = post_sdp(
        gw.addr,
        "/v1/realtime/calls",
        None,
        "application/sdp",
        &offer,
    )
    .await;
    let answer_time = vec![started.elapsed()];
    assert_eq!(posted.status, 201, "{}", posted.body);
    c.accept(posted.body).await.expect("answer");
    c.wait_for("session.created", Duration::from_secs(10))
        .await
        .expect("session");
    let mut ws = RealtimeClient::connect(&gw.ws_url())
        .await
        .expect("connect");
    let (mut rtc_v2v, mut ws_v2v) = (Vec::new(), Vec::new());
    for i in 0..TURNS {
        let q = QUESTIONS[i % QUESTIONS.len()];
        if let Some(d) = webrtc_turn(&mut c, q).await {
            rtc_v2v.push(d);
        }
        if let Some(d) = websocket_turn(&mut ws, q).await {
            ws_v2v.push(d);
        }
    }
    c.hang_up().await;
    (rtc_v2v, ws_v2v, answer_time)
}

/// CPU time of Opus per second of call: one second of caller audio decoded plus one second of
/// reply audio encoded (a call where the agent talks all the time: the worst case).
fn opus_cpu() -> f64 {
    let rate = 48_000;
    let mut audio: Vec<f32> = Vec::new();
    for q in QUESTIONS {
        audio.extend(say(q, rate).iter().map(|&s| s as f32 / 32768.0));
    }
    let seconds = audio.len() as f64 / rate as f64;
    let mut out = OpusOut::new(0, 0).expect("encoder");
    let mut inp = OpusIn::new().expect("decoder");
    let started = Instant::now();
    let mut frames = Vec::new();
    for chunk in audio.chunks(FRAME_SAMPLES) {
        out.push(chunk);
        if let Some(f) = out.next_frame(0, true) {
            frames.push(f);
        }
    }
    let encode = started.elapsed();
    let started = Instant::now();
    for f in &frames {
        std::hint::black_box(inp.decode(&Frame::Packet {
            timestamp: f.timestamp,
            payload: f.payload.clone(),
        }));
    }
    let decode = started.elapsed();
    let share = (encode + decode).as_secs_f64() / seconds;
    println!(
        "\nOpus, {seconds:.1} s of speech: encode {:.1} ms, decode {:.1} ms: {:.2}% of a core per call (both directions, agent always talking)",
        encode.as_secs_f64() * 1e3,
        decode.as_secs_f64() * 1e3,
        share * 100.0
    );
    share
}

fn main() {
    let which = std::env::var("SWITCHBOARD_BENCH").unwrap_or_else(|_| "v2v,opus".into());
    if which.split(',').any(|s| s == "opus") {
        opus_cpu();
    }
    if !which.split(',').any(|s| s == "v2v") {
        return;
    }
    let llm = ScriptedLlm::start(Script {
        reply: "Sure. Let me check that for you, it will only take a moment. Here is what I found."
            .into(),
        ..Script::default()
    });
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let rt = client_runtime();
    let (mut rtc, mut ws, mut answer) = rt.block_on(compare(&gw));
    println!();
    latency_table("measure");
    let (a, _) = latency_row("voice-to-voice over WebRTC (loopback)", &mut rtc, 0);
    let (b, _) = latency_row("voice-to-voice over the WebSocket", &mut ws, 0);
    latency_row(
        "SDP offer -> answer (POST /v1/realtime/calls)",
        &mut answer,
        0,
    );
    println!("\nWebRTC adds {:.0} ms at p50 (target <= 30 ms)", a - b);
}
