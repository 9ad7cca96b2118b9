//! `/v1/audio/speech` in each response format, through the gateway over HTTP: time from the
//! request to the first audio byte and to the whole file, and the bytes per second of
//! speech, for a three-sentence reply (Piper, 24 kHz out). p50/p95 of `RUNS` runs after one
//! warm-up per format; formats take turns so drift hits them alike.
//!
//! Run: `cargo bench -p switchboard-benches --bench speech_formats` with `make models` done.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_benches::{client_runtime, latency_row, latency_table};
use switchboard_e2e::gateway::Gateway;

const RUNS: usize = 7;
const FORMATS: [&str; 5] = ["wav", "pcm", "mp3", "opus", "flac"];
const REPLY: &str = "Your table for two is booked for eight o'clock tonight. We will hold it \
                     for fifteen minutes. If you are running late, call us and we will do \
                     our best to keep it.";

/// (time to the first body byte, time to the end, body bytes).
async fn one(client: &reqwest::Client, url: &str, format: &str) -> (Duration, Duration, usize) {
    let started = Instant::now();
    let mut response = client
        .post(url)
        .json(
            &json!({"model": "tts-1", "voice": "alloy", "input": REPLY, "response_format": format}),
        )
        .send()
        .await
        .expect("speech request");
    assert!(
        response.status().is_success(),
        "{format}: {}",
        response.status()
    );
    let mut first = None;
    let mut bytes = 0;
    while let Some(chunk) = response.chunk().await.expect("speech body") {
        if !chunk.is_empty() {
            first.get_or_insert_with(|| started.elapsed());
            bytes += chunk.len();
        }
    }
    (first.expect("some audio"), started.elapsed(), bytes)
}

fn main() {
    let gw = Gateway::start(&[], &[]);
    let url = format!("http://{}/v1/audio/speech", gw.addr);
    let rt = client_runtime();
    let client = reqwest::Client::new();
    let mut first: Vec<Vec<Duration>> = vec![Vec::new(); FORMATS.len()];
    let mut whole: Vec<Vec<Duration>> = vec![Vec::new(); FORMATS.len()];
    let mut sizes = vec![0usize; FORMATS.len()];
    for run in 0..=RUNS {
        for (i, format) in FORMATS.iter().enumerate() {
            let (f, w, bytes) = rt.block_on(one(&client, &url, format));
            if run > 0 {
                first[i].push(f);
                whole[i].push(w);
            }
            sizes[i] = bytes;
        }
    }
    // The PCM body's length says how long the speech is (24 kHz, 16-bit).
    let pcm_seconds = sizes[1] as f64 / 48_000.0;
    latency_table("`/v1/audio/speech`, three sentences: first audio byte");
    for (i, format) in FORMATS.iter().enumerate() {
        latency_row(format, &mut first[i], 0);
    }
    println!();
    latency_table("the whole file");
    for (i, format) in FORMATS.iter().enumerate() {
        latency_row(format, &mut whole[i], 0);
    }
    println!("\n| format | bytes per second of speech (last run; {pcm_seconds:.1} s) |\n|---|---|");
    for (i, format) in FORMATS.iter().enumerate() {
        println!("| {format} | {:.0} |", sizes[i] as f64 / pcm_seconds);
    }
}
