//! `/v1/audio/speech` in each response format, through the gateway over HTTP: time from the
//! request to the first audio (the body past 1 KiB, beyond any header) and to the whole file, and the bytes per second of
//! speech, for a three-sentence reply (Piper, 24 kHz out). p50/p95 of `RUNS` runs after one
//! warm-up per format; formats take turns so drift hits them alike.
//!
//! Run: `cargo bench -p switchboard-benches --bench speech_formats` with `make models` done.
//! `SPEECH_BENCH_FORMATS` (default `wav,pcm,mp3,opus,flac`) picks the formats;
//! `SWITCHBOARD_BIN` another gateway binary (an older build, for a before/after).

use std::time::{Duration, Instant};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::json;
use switchboard_benches::{env_list, latency_row, latency_table};
use switchboard_e2e::gateway::{Gateway, dechunk};

const RUNS: usize = 7;
const REPLY: &str = "Your table for two is booked for eight o'clock tonight. We will hold it \
                     for fifteen minutes. If you are running late, call us and we will do \
                     our best to keep it.";

/// Body bytes that mean audio has arrived: more than any format's header (WAV 44, FLAC 42,
/// Ogg Opus ~100 bytes), less than any sentence's audio.
const FIRST_AUDIO_BYTES: usize = 1_024;

/// (time to the first audio, time to the end, audio bytes): plain HTTP/1.1 over a socket, so
/// bytes are timed as they arrive.
fn one(addr: SocketAddr, format: &str) -> (Duration, Duration, usize) {
    let body =
        json!({"model": "tts-1", "voice": "alloy", "input": REPLY, "response_format": format})
            .to_string();
    let started = Instant::now();
    let mut socket = TcpStream::connect(addr).expect("connect");
    write!(
        socket,
        "POST /v1/audio/speech HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut received = Vec::new();
    let mut buf = [0u8; 16_384];
    let mut first = None;
    loop {
        let n = socket.read(&mut buf).expect("response");
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        if first.is_none()
            && head_end(&received).is_some_and(|end| received.len() > end + FIRST_AUDIO_BYTES)
        {
            first = Some(started.elapsed());
        }
    }
    let whole = started.elapsed();
    let end = head_end(&received).expect("a response head");
    let head = String::from_utf8_lossy(&received[..end]);
    assert!(head.starts_with("HTTP/1.1 200"), "{format}: {head}");
    let body = &received[end..];
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let bytes = if chunked {
        dechunk(body).len()
    } else {
        body.len()
    };
    (first.expect("some audio"), whole, bytes)
}

/// Where the response head ends (after its blank line).
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn main() {
    let formats = env_list("SPEECH_BENCH_FORMATS", "wav,pcm,mp3,opus,flac");
    let gw = Gateway::start(&[], &[]);
    let mut first: Vec<Vec<Duration>> = vec![Vec::new(); formats.len()];
    let mut whole: Vec<Vec<Duration>> = vec![Vec::new(); formats.len()];
    let mut sizes = vec![0usize; formats.len()];
    for run in 0..=RUNS {
        for (i, format) in formats.iter().enumerate() {
            let (f, w, bytes) = one(gw.addr, format);
            if run > 0 {
                first[i].push(f);
                whole[i].push(w);
            }
            sizes[i] = bytes;
        }
    }
    // The PCM body's length says how long the speech is (24 kHz, 16-bit).
    let pcm_seconds = formats
        .iter()
        .position(|f| f == "pcm")
        .map(|i| sizes[i] as f64 / 48_000.0);
    latency_table("`/v1/audio/speech`, three sentences: first audio");
    for (i, format) in formats.iter().enumerate() {
        latency_row(format, &mut first[i], 0);
    }
    println!();
    latency_table("the whole file");
    for (i, format) in formats.iter().enumerate() {
        latency_row(format, &mut whole[i], 0);
    }
    let Some(pcm_seconds) = pcm_seconds else {
        return;
    };
    println!("\n| format | bytes per second of speech (last run; {pcm_seconds:.1} s) |\n|---|---|");
    for (i, format) in formats.iter().enumerate() {
        println!("| {format} | {:.0} |", sizes[i] as f64 / pcm_seconds);
    }
}
