//! End of turn, by turn detection: `server_vad` (500 ms of silence) against `semantic_vad` at
//! each eagerness, on the real gateway with the scripted LLM and espeak-ng callers at
//! real-time pace. Two figures trade against each other:
//!
//! - how soon a finished question is answered: voice-to-voice on the client's clock (last
//!   audible speech sample sent to the first reply audio), and the gateway's own end of speech
//!   (last speech sample to the end-of-turn decision, mean of `switchboard_end_of_speech_seconds`);
//! - how often a pause inside a sentence cuts the turn in two: each caller says half a
//!   sentence, pauses `INNER_PAUSE_MS`, and says the rest.
//!
//! Run: `cargo bench -p switchboard-benches --bench turns` (needs `make build models`).

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_benches::caller::{audible, question};
use switchboard_benches::{client_runtime, counts, histogram, percentiles};
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};
use tokio::time::Instant;

const RATE: u32 = 24_000;
/// Finished questions per setting.
const TURNS: usize = 8;
/// Sentences said with a pause inside, per setting.
const SPLIT_TURNS: usize = 8;
/// The pause inside each split sentence, between its audible halves.
const INNER_PAUSE_MS: u32 = 700;
/// Sentences said with a pause inside: where a listener would wait.
const SPLIT: [(&str, &str); 4] = [
    (
        "I would like to book a table for",
        "two people at eight tonight.",
    ),
    ("Can you send the invoice to", "my office address, please?"),
    ("My account number is, um", "four five six seven."),
    (
        "I need to change my flight because",
        "my meeting moved to Friday.",
    ),
];
const LONG: Duration = Duration::from_secs(30);

/// A session with `turn_detection`.
async fn session(gw: &Gateway, turn_detection: &Value) -> RealtimeClient {
    let mut c = RealtimeClient::connect(&gw.ws_url())
        .await
        .expect("connect");
    c.send(
        json!({"type": "session.update", "session": {"type": "realtime",
        "audio": {"input": {"turn_detection": turn_detection}}}}),
    )
    .await
    .expect("send");
    c.wait_for("session.updated", LONG)
        .await
        .expect("session.updated");
    c
}

/// Say `speech`, then keep the microphone open (silence, at least 3 s, streamed as a phone
/// streams it, so the gateway's pause clock runs) until every response it started is done.
/// Returns the time from the end of the speech to the first reply audio, if any, and how many
/// turns were committed.
async fn say_and_wait(c: &mut RealtimeClient, speech: &[i16]) -> (Option<Duration>, usize) {
    c.skip_seen();
    let before = c.log.len();
    c.stream_audio(speech, RATE).await.expect("stream");
    let speech_end = Instant::now();
    c.stream_audio(&silence(3_000, RATE), RATE)
        .await
        .expect("stream");
    let count = |c: &RealtimeClient, kind: &str| {
        c.log[before..].iter().filter(|r| r.kind() == kind).count()
    };
    let deadline = Instant::now() + LONG;
    while (count(c, "response.done") < count(c, "response.created")
        || count(c, "response.created") == 0)
        && Instant::now() < deadline
    {
        c.stream_audio(&silence(200, RATE), RATE)
            .await
            .expect("stream");
    }
    let first_audio = c.log[before..]
        .iter()
        .find(|r| r.kind() == "response.output_audio.delta")
        .map(|r| r.at.saturating_duration_since(speech_end));
    (first_audio, count(c, "input_audio_buffer.committed"))
}

struct Figures {
    v2v: Vec<Duration>,
    end_of_speech_ms: f64,
    cut: usize,
    /// The sentences with a pause inside that were not cut: the end of the whole sentence
    /// to the first reply audio.
    uncut_v2v: Vec<Duration>,
}

/// Mean of a histogram's new observations between two `/metrics` snapshots, in ms.
fn mean_ms(before: &str, after: &str, name: &str) -> f64 {
    let (s0, c0) = histogram(before, name, "");
    let (s1, c1) = histogram(after, name, "");
    (s1 - s0) / (c1 - c0) * 1000.0
}

async fn measure(gw: &Gateway, turn_detection: &Value) -> Figures {
    let mut c = session(gw, turn_detection).await;
    let before = gw.metrics();
    let mut v2v = Vec::new();
    for i in 0..TURNS {
        if let (Some(d), _) = say_and_wait(&mut c, &question(i, RATE, 200)).await {
            v2v.push(d);
        }
    }
    let end_of_speech_ms = mean_ms(&before, &gw.metrics(), "switchboard_end_of_speech_seconds");
    let (mut cut, mut uncut_v2v) = (0, Vec::new());
    for (first, rest) in SPLIT.iter().cycle().take(SPLIT_TURNS) {
        let mut speech = silence(200, RATE);
        speech.extend(audible(say(first, RATE)));
        speech.extend(silence(INNER_PAUSE_MS, RATE));
        speech.extend(audible(say(rest, RATE)));
        match say_and_wait(&mut c, &speech).await {
            (_, turns) if turns > 1 => cut += 1,
            (Some(d), _) => uncut_v2v.push(d),
            (None, _) => {}
        }
    }
    c.close().await;
    Figures {
        v2v,
        end_of_speech_ms,
        cut,
        uncut_v2v,
    }
}

/// "p50 / p95 ms (n=…)" of `samples`, or with `max` "p50 / max ms (n=…)".
fn summary(samples: &mut [Duration], max: bool) -> String {
    if samples.is_empty() {
        return "no replies".to_owned();
    }
    let n = samples.len();
    let (p50, p95) = percentiles(samples);
    // `percentiles` sorted them.
    let tail = match max {
        true => samples[n - 1].as_secs_f64() * 1000.0,
        false => p95,
    };
    format!("{p50:.0} / {tail:.0} ms (n={n})")
}

fn main() {
    let llm = ScriptedLlm::start(Script {
        reply: "Sure. Let me check that for you.".into(),
        ..Script::default()
    });
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let rt = client_runtime();
    let settings = [
        ("server_vad, 500 ms", json!({"type": "server_vad"})),
        (
            "semantic_vad, high",
            json!({"type": "semantic_vad", "eagerness": "high"}),
        ),
        (
            "semantic_vad, auto (medium)",
            json!({"type": "semantic_vad", "eagerness": "auto"}),
        ),
        (
            "semantic_vad, low",
            json!({"type": "semantic_vad", "eagerness": "low"}),
        ),
    ];
    println!(
        "scripted LLM; {TURNS} finished questions and {SPLIT_TURNS} sentences with a {INNER_PAUSE_MS} ms pause inside, per setting\n"
    );
    println!(
        "| turn detection | voice-to-voice p50 / p95 | end of speech (server, mean) | sentences cut at the inner pause | the others: voice-to-voice p50 / max |\n|---|---|---|---|---|"
    );
    for (name, td) in &settings {
        let mut f = rt.block_on(measure(&gw, td));
        let (v2v, uncut) = (summary(&mut f.v2v, false), summary(&mut f.uncut_v2v, true));
        println!(
            "| {name} | {v2v} | {:.0} ms | {} / {} | {uncut} |",
            f.end_of_speech_ms, f.cut, SPLIT_TURNS
        );
    }
    let ends = counts(&gw.metrics(), "switchboard_turn_ends_total", "by");
    println!("\nturn ends (whole run): {ends}");
}
