//! Load generator for the live call: real `switchboard serve`, the scripted LLM, and Realtime
//! WebSocket clients playing espeak-ng speech at real-time pace. Measures, from the client:
//!
//! - voice-to-voice: the last audible speech sample sent to the first reply audio received;
//! - barge-in: `speech_started` received to the last audio of the interrupted reply, and the
//!   caller's speech onset to that last audio;
//! - concurrent calls: p95 voice-to-voice as calls are added, until it doubles;
//! - live transcription: in transcription sessions (`intent=transcription`, no replies), the
//!   last speech sample sent to the turn's `input_audio_transcription.completed`, for one
//!   session and as sessions are added, until its p95 doubles;
//! - resident memory per idle call.
//!
//! After the single-call turns it prints where a turn's time went on the server, as means
//! of the gateway's own stage histograms (`/metrics`) over those turns. The single-call turns
//! run four ways: as configured by default (replies drafted while the caller pauses), on a
//! second gateway with `SWITCHBOARD_SPECULATIVE_REPLIES=false`, with early transcription
//! off (so no drafts either), and with noise reduction on.
//!
//! Run: `cargo bench -p switchboard-benches --bench realtime` (needs `make build models`);
//! `SWITCHBOARD_BENCH_LLM=embedded` answers with the gateway's embedded model instead of the
//! scripted LLM, and `SWITCHBOARD_BENCH=v2v,barge,concurrency,transcription,memory` picks
//! sections; `SWITCHBOARD_BENCH_CALLS=4,6,8` runs those concurrent call counts, all of them.
//! `SWITCHBOARD_BENCH_REPLIES=1` prints each voice-to-voice turn's figure and reply transcript
//! (with a local model, the figure depends on how soon the reply's first chunk can be spoken).

use std::time::Duration;

use serde_json::json;
use switchboard_benches::caller::{audible, question};
use switchboard_benches::{
    client_runtime, counts, env_list, env_number, histogram, latency_row, latency_table,
};
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};
use tokio::time::Instant;

const RATE: u32 = 24_000;
const TURNS: usize = 12;
/// Turns each concurrent call takes (so p95 rests on enough samples), unless
/// `SWITCHBOARD_BENCH_TURNS_PER_CALL` says otherwise.
fn turns_per_call() -> usize {
    env_number("SWITCHBOARD_BENCH_TURNS_PER_CALL", 5)
}

/// Stream `speech` then silence; returns voice-to-voice (last speech sample sent to the first
/// reply audio received) once the response is done.
async fn one_turn(c: &mut RealtimeClient, speech: &[i16]) -> Option<Duration> {
    c.skip_seen();
    c.stream_audio(speech, RATE).await.ok()?;
    let speech_end = Instant::now();
    // Keep sending silence (as a live microphone does) while waiting for the reply.
    let before = c.log.len();
    c.stream_audio(&silence(3_000, RATE), RATE).await.ok()?;
    let first_audio = c.log[before..]
        .iter()
        .find(|r| r.kind() == "response.output_audio.delta")
        .map(|r| r.at);
    let first_audio = match first_audio {
        Some(t) => t,
        None => {
            c.wait_for("response.output_audio.delta", Duration::from_secs(30))
                .await
                .ok()?
                .at
        }
    };
    if !c.log[before..].iter().any(|r| r.kind() == "response.done") {
        c.wait_for("response.done", Duration::from_secs(60))
            .await
            .ok()?;
    }
    let v2v = first_audio - speech_end;
    if std::env::var_os("SWITCHBOARD_BENCH_REPLIES").is_some() {
        let done = c.log[before..].iter().find(|r| r.kind() == "response.done");
        let said = done
            .and_then(|d| d.event["response"]["output"][0]["content"][0]["transcript"].as_str());
        eprintln!("{:>5} ms  {}", v2v.as_millis(), said.unwrap_or("-"));
    }
    Some(v2v)
}

const TRANSCRIBED: &str = "conversation.item.input_audio_transcription.completed";

/// In a transcription session: stream `speech` then silence; returns the last speech sample
/// sent to the turn's transcript received.
async fn transcript_turn(c: &mut RealtimeClient, speech: &[i16]) -> Option<Duration> {
    c.skip_seen();
    c.stream_audio(speech, RATE).await.ok()?;
    let speech_end = Instant::now();
    let before = c.log.len();
    c.stream_audio(&silence(1_500, RATE), RATE).await.ok()?;
    let done = match c.log[before..].iter().find(|r| r.kind() == TRANSCRIBED) {
        Some(r) => r.at,
        None => {
            c.wait_for(TRANSCRIBED, Duration::from_secs(30))
                .await
                .ok()?
                .at
        }
    };
    Some(done - speech_end)
}

/// What the bench's calls do: converse (a reply to every turn) or only transcribe.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Converse,
    Transcribe,
}

impl Mode {
    fn url(self, gw: &Gateway) -> String {
        match self {
            Mode::Converse => gw.ws_url(),
            Mode::Transcribe => format!("{}&intent=transcription", gw.ws_url()),
        }
    }

    async fn turn(self, c: &mut RealtimeClient, speech: &[i16]) -> Option<Duration> {
        match self {
            Mode::Converse => one_turn(c, speech).await,
            Mode::Transcribe => transcript_turn(c, speech).await,
        }
    }
}

/// `input`: fields of the session's `audio.input` to set first (`None`: the defaults).
async fn voice_to_voice(gw: &Gateway, input: Option<serde_json::Value>) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut c = RealtimeClient::connect(&gw.ws_url())
        .await
        .expect("connect");
    if let Some(input) = input {
        c.send(
            json!({"type": "session.update", "session": {"type": "realtime",
            "audio": {"input": input}}}),
        )
        .await
        .expect("send");
        c.wait_for("session.updated", Duration::from_secs(5))
            .await
            .expect("session.updated");
    }
    for i in 0..TURNS {
        if let Some(d) = one_turn(&mut c, &question(i, RATE, 200)).await {
            out.push(d);
        }
    }
    out
}

/// Barge-in figures: `speech_started` to the last audio of the interrupted reply, the
/// caller's onset to that audio, and the interruption's last audible sample to the first
/// audio of the reply to it.
#[derive(Default)]
struct BargeIn {
    from_event: Vec<Duration>,
    from_onset: Vec<Duration>,
    answered: Vec<Duration>,
}

async fn barge_in(gw: &Gateway) -> BargeIn {
    let mut out = BargeIn::default();
    let interruption = audible(say("Stop, wait a second.", RATE));
    let interruption_ms = interruption.len() as u64 * 1000 / u64::from(RATE);
    for i in 0..TURNS / 2 {
        let mut c = RealtimeClient::connect(&gw.ws_url())
            .await
            .expect("connect");
        let mut q = question(i, RATE, 200);
        q.extend(silence(800, RATE));
        c.stream_audio(&q, RATE).await.expect("send");
        let _ = c
            .wait_for("response.output_audio.delta", Duration::from_secs(30))
            .await;
        c.stream_audio(&silence(1_000, RATE), RATE)
            .await
            .expect("send");
        let onset = Instant::now();
        let mut talk = interruption.clone();
        talk.extend(silence(1_500, RATE));
        c.stream_audio(&talk, RATE).await.expect("send");
        let Ok(done) = c.wait_for("response.done", Duration::from_secs(30)).await else {
            eprintln!("barge-in run {i}: no response.done");
            continue;
        };
        if done.event["response"]["status"] != "cancelled" {
            eprintln!(
                "barge-in run {i}: response {} (not interrupted)",
                done.event["response"]["status"]
            );
            continue;
        }
        let rid = done.event["response"]["id"].clone();
        let started = c
            .log
            .iter()
            .find(|r| r.kind() == "input_audio_buffer.speech_started" && r.at > onset)
            .map(|r| r.at);
        let last_audio = c
            .log
            .iter()
            .rfind(|r| r.kind() == "response.output_audio.delta" && r.event["response_id"] == rid)
            .map(|r| r.at);
        match (started, last_audio) {
            (Some(s), Some(l)) => {
                out.from_event.push(l.saturating_duration_since(s));
                out.from_onset.push(l.saturating_duration_since(onset));
            }
            _ => eprintln!("barge-in run {i}: started {started:?} last audio {last_audio:?}"),
        }
        let answer = c
            .log
            .iter()
            .find(|r| {
                r.kind() == "response.output_audio.delta"
                    && r.at > onset
                    && r.event["response_id"] != rid
            })
            .map(|r| r.at);
        let answer = match answer {
            Some(t) => Some(t),
            None => c
                .wait_for("response.output_audio.delta", Duration::from_secs(30))
                .await
                .ok()
                .map(|r| r.at),
        };
        let spoke_until = onset + Duration::from_millis(interruption_ms);
        match answer {
            Some(a) => out.answered.push(a.saturating_duration_since(spoke_until)),
            None => eprintln!("barge-in run {i}: the interruption got no reply audio"),
        }
        c.close().await;
    }
    out
}

/// `calls` calls at once, each taking `turns` turns.
async fn concurrent(gw: &Gateway, calls: usize, turns: usize, mode: Mode) -> Vec<Duration> {
    let tasks: Vec<_> = (0..calls)
        .map(|k| {
            let url = mode.url(gw);
            tokio::spawn(async move {
                // Stagger starts over one turn so turns do not all end at the same instant.
                tokio::time::sleep(Duration::from_millis((k * 397 % 2000) as u64)).await;
                let mut c = RealtimeClient::connect(&url).await.expect("connect");
                let mut out = Vec::new();
                for i in 0..turns {
                    if let Some(d) = mode.turn(&mut c, &question(k + i, RATE, 200)).await {
                        out.push(d);
                    }
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all
}

/// The mean of each turn stage between two `/metrics` snapshots, in milliseconds.
fn stage_means(before: &str, after: &str) -> Vec<(&'static str, f64)> {
    const STAGES: [(&str, &str, &str); 6] = [
        (
            "end of speech (VAD silence)",
            "switchboard_end_of_speech_seconds",
            "",
        ),
        ("speech-to-text", "switchboard_stt_seconds", ""),
        (
            "context stage",
            "switchboard_stage_seconds",
            "stage=\"context\"",
        ),
        ("LLM first token", "switchboard_llm_first_token_seconds", ""),
        ("TTS first audio", "switchboard_tts_first_audio_seconds", ""),
        (
            "voice-to-voice (server)",
            "switchboard_voice_to_voice_seconds",
            "",
        ),
    ];
    STAGES
        .iter()
        .map(|(label, name, labels)| {
            let (s0, c0) = histogram(before, name, labels);
            let (s1, c1) = histogram(after, name, labels);
            let mean = match c1 > c0 {
                true => (s1 - s0) / (c1 - c0) * 1000.0,
                false => f64::NAN,
            };
            (*label, mean)
        })
        .collect()
}

fn main() {
    let llm = ScriptedLlm::start(Script {
        reply: "Sure. Let me check that for you, it will only take a moment. Here is what I found."
            .into(),
        ..Script::default()
    });
    // SWITCHBOARD_BENCH_LLM=embedded: the gateway's own SmolLM2 instead (fully offline).
    let embedded = std::env::var("SWITCHBOARD_BENCH_LLM").as_deref() == Ok("embedded");
    let gw = match embedded {
        true => Gateway::start(&[], &[]),
        false => Gateway::start(&[llm.base_url()], &[]),
    };
    let rt = client_runtime();
    println!(
        "{}; server_vad silence_duration_ms 500\n",
        match embedded {
            true => "embedded LLM: SmolLM2-135M-Instruct in the gateway, on the same cores",
            false => "scripted LLM: first token after 30 ms, 15 ms per word",
        }
    );
    latency_table("measure");
    // SWITCHBOARD_BENCH=v2v,barge,concurrency,memory picks sections (default: all).
    let only = std::env::var("SWITCHBOARD_BENCH").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|s| s == name);
    let mut single_p95 = f64::NAN;
    let mut stages = Vec::new();
    if run("v2v") || run("concurrency") {
        let before = gw.metrics();
        let mut v2v = rt.block_on(voice_to_voice(&gw, None));
        stages = stage_means(&before, &gw.metrics());
        single_p95 = latency_row("voice-to-voice, 1 call", &mut v2v, 0).1;
    }
    // The same turns on a gateway that waits for the turn's end before replying.
    let plain = (run("v2v") || run("barge")).then(|| {
        let env = [("SWITCHBOARD_SPECULATIVE_REPLIES", "false")];
        match embedded {
            true => Gateway::start(&[], &env),
            false => Gateway::start(&[llm.base_url()], &env),
        }
    });
    if run("v2v")
        && let Some(plain) = &plain
    {
        let mut v2v = rt.block_on(voice_to_voice(plain, None));
        latency_row(
            "voice-to-voice, 1 call, no speculative replies",
            &mut v2v,
            0,
        );
        let early_off =
            json!({"turn_detection": {"type": "server_vad", "early_transcription_ms": 0}});
        let mut v2v = rt.block_on(voice_to_voice(&gw, Some(early_off)));
        latency_row(
            "voice-to-voice, 1 call, transcription only after the turn ends",
            &mut v2v,
            0,
        );
        let denoised = json!({"noise_reduction": {"type": "near_field"}});
        let mut v2v = rt.block_on(voice_to_voice(&gw, Some(denoised)));
        latency_row("voice-to-voice, 1 call, noise reduction on", &mut v2v, 0);
    }
    if run("barge")
        && let Some(plain) = &plain
    {
        let mut b = rt.block_on(barge_in(&gw));
        latency_row(
            "barge-in: speech_started -> last reply audio",
            &mut b.from_event,
            0,
        );
        latency_row(
            "barge-in: caller speech onset -> last reply audio",
            &mut b.from_onset,
            0,
        );
        latency_row(
            "barge-in: interruption's end -> first audio of the reply to it",
            &mut b.answered,
            0,
        );
        let mut b = rt.block_on(barge_in(plain));
        latency_row(
            "barge-in: interruption's end -> first audio of the reply to it, no speculative replies",
            &mut b.answered,
            0,
        );
    }
    drop(plain);
    // SWITCHBOARD_BENCH_CALLS=4,6,8 runs exactly those call counts, without stopping early.
    let chosen: Vec<usize> = env_list("SWITCHBOARD_BENCH_CALLS", "")
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    let stop_early = chosen.is_empty();
    let concurrency = match (run("concurrency"), stop_early) {
        (false, _) => Vec::new(),
        (true, true) => vec![2, 3, 4, 6, 8, 12, 16],
        (true, false) => chosen,
    };
    for calls in concurrency {
        let mut d = rt.block_on(concurrent(&gw, calls, turns_per_call(), Mode::Converse));
        let (_, p95) = latency_row(
            &format!("voice-to-voice, {calls} concurrent calls"),
            &mut d,
            0,
        );
        if stop_early && p95 > 2.0 * single_p95 {
            println!("\np95 voice-to-voice more than doubled at {calls} concurrent calls");
            break;
        }
    }
    if run("transcription") {
        let mut d = rt.block_on(concurrent(&gw, 1, TURNS, Mode::Transcribe));
        let (_, single) = latency_row(
            "end of speech -> transcript, 1 transcription session",
            &mut d,
            0,
        );
        for sessions in [2, 4, 6, 8, 12, 16, 24, 32] {
            let mut d = rt.block_on(concurrent(
                &gw,
                sessions,
                turns_per_call(),
                Mode::Transcribe,
            ));
            let (_, p95) = latency_row(
                &format!("end of speech -> transcript, {sessions} transcription sessions"),
                &mut d,
                0,
            );
            if p95 > 2.0 * single {
                println!(
                    "\np95 end of speech -> transcript more than doubled at {sessions} sessions"
                );
                break;
            }
        }
    }

    if !stages.is_empty() {
        // Means, so they do not add up to the p50 above; speech-to-text may start before the
        // end of speech (early transcription) and overlap it.
        println!("\n| where a 1-call turn went (server, mean) | ms |\n|---|---|");
        for (stage, ms) in &stages {
            println!("| {stage} | {ms:.0} |");
        }
        println!(
            "\nspeculative replies (whole run): {}",
            counts(
                &gw.metrics(),
                "switchboard_speculative_replies_total",
                "outcome"
            )
        );
    }
    if !run("memory") {
        return;
    }
    // Memory: idle calls hold their VAD state, buffers and queues only.
    let idle = 50;
    let before = gw.rss_kib();
    let clients = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..idle {
            let mut c = RealtimeClient::connect(&gw.ws_url()).await.expect("connect");
            c.send(json!({"type": "input_audio_buffer.append", "audio": switchboard_e2e::realtime_client::b64(&silence(500, RATE))})).await.expect("send");
            v.push(c);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        v
    });
    let after = gw.rss_kib();
    println!(
        "\nresident memory: {before} KiB before, {after} KiB with {idle} idle calls: {:.2} MiB per idle call",
        (after.saturating_sub(before)) as f64 / idle as f64 / 1024.0
    );
    drop(clients);
}
