//! The call page in a real browser: headless Chromium (Debian's) driven by playwright-core,
//! with a fake microphone playing espeak-ng speech, calls the gateway over WebRTC with the
//! client-secret flow. The page's own statistics show both transcripts, reply audio on the
//! remote track, and the reply being cut off when the caller talks over it; the page's turn
//! end is `semantic_vad`. A voice memo recorded by the browser's MediaRecorder is uploaded
//! from the page and transcribed.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};

const RATE: u32 = 48_000;

fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// Run `tests/browser/{script}` with node and `args`; its stdout is JSON. Returns it and the
/// script's log (stderr).
fn run_browser_script(script: &str, args: &[String]) -> (Value, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("browser")
        .join(script);
    let out = Command::new("node")
        .arg(&script)
        .args(args)
        .output()
        .expect("node runs (make test-deps installs it)");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "browser script failed: {log}");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON from {} ({e}): {}\n{log}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (json, log)
}

#[test]
fn the_call_page_talks_and_is_interrupted_in_chromium() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("caller.wav");
    // Time to connect, the question, a pause while the reply starts, then talking over it.
    let mut speech = silence(2_000, RATE);
    speech.extend(say("What is the weather like in Paris today?", RATE));
    speech.extend(silence(3_500, RATE));
    speech.extend(say("Stop. Tell me about London instead.", RATE));
    speech.extend(silence(8_000, RATE));
    write_wav(&wav, &speech);

    let (stats, log) = run_browser_script(
        "call_page.mjs",
        &[format!("http://{}/", gw.addr), wav.display().to_string()],
    );
    eprintln!("call page stats: {stats}");
    let turns = stats["turns"].as_array().unwrap();
    let said = |role: &str| -> Vec<&Value> { turns.iter().filter(|t| t["role"] == role).collect() };
    let user = said("user");
    assert!(
        user.first()
            .and_then(|t| t["text"].as_str())
            .is_some_and(|t| t.to_lowercase().contains("weather")),
        "user transcript: {stats}\n{log}"
    );
    let assistant = said("assistant");
    assert!(
        assistant
            .first()
            .and_then(|t| t["text"].as_str())
            .is_some_and(|t| t.contains("weather")),
        "assistant transcript: {stats}\n{log}"
    );
    assert!(
        stats["remoteLoudFrames"].as_u64().unwrap_or(0) >= 5,
        "reply audio on the remote track: {stats}"
    );
    let events: Vec<&str> = stats["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        events.contains(&"output_audio_buffer.started"),
        "{events:?}"
    );
    assert!(
        events.contains(&"output_audio_buffer.cleared"),
        "barge-in: {events:?}"
    );
    assert_eq!(assistant[0]["status"], "cancelled", "{stats}");
    // The page keeps only what the caller heard before talking over the agent.
    let heard = assistant[0]["text"].as_str().unwrap_or_default();
    let full = Script::default().reply;
    assert!(
        heard.len() < full.len() && full.starts_with(heard.trim_end_matches('.')),
        "heard {heard:?} of {full:?}"
    );
    assert!(
        !said("latency").is_empty(),
        "the page shows a latency per turn: {stats}"
    );
    // The page's default turn end is semantic_vad: the question ended as a finished turn.
    let finished = gw
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(r#"switchboard_turn_ends_total{by="finished"} "#))
        .and_then(|n| n.parse::<u32>().ok());
    assert!(finished >= Some(1), "{finished:?}");
}

/// A voice memo as a web app records one: Chromium's MediaRecorder (WebM, Opus, written in
/// one-second slices with sizes it cannot know ahead) uploaded from the page to
/// `/v1/audio/transcriptions`, transcribed.
#[test]
fn a_voice_memo_recorded_in_chromium_is_transcribed() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("memo.wav");
    let mut speech = silence(500, RATE);
    speech.extend(say("Remind me to call the plumber tomorrow morning.", RATE));
    speech.extend(silence(1_000, RATE));
    let seconds = speech.len() as f64 / RATE as f64 + 0.5;
    write_wav(&wav, &speech);

    let (memo, _) = run_browser_script(
        "voice_memo.mjs",
        &[
            format!("http://{}/", gw.addr),
            wav.display().to_string(),
            format!("{seconds:.1}"),
        ],
    );
    eprintln!("voice memo: {memo}");
    assert!(
        memo["mimeType"]
            .as_str()
            .is_some_and(|m| m.starts_with("audio/webm")),
        "{memo}"
    );
    assert_eq!(memo["status"], 200, "{memo}");
    let body: Value = serde_json::from_str(memo["body"].as_str().unwrap()).unwrap();
    let text = body["text"].as_str().unwrap().to_lowercase();
    assert!(
        text.contains("plumber") && text.contains("tomorrow"),
        "transcript {text:?}"
    );
}
