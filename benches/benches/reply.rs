//! Time to a live reply's first audio, from the moment the LLM is asked: the embedded LLM
//! (SmolLM2, seeded, so every run writes the same reply) streams its tokens into the speech
//! chunker, and Piper speaks the first chunk while the LLM goes on decoding, as in a call.
//! Each question is answered with both chunkers in turn, so they are compared on the very
//! same replies:
//!
//! - `sentences`: the first chunk ends at the first clause or sentence end (`speech_chunks`);
//! - `phrases`: a live reply's chunker, which may also end it before a phrase after six words
//!   (`SpeechChunker::for_reply`).
//!
//! Run: `cargo bench -p switchboard-benches --bench reply` (models fetched).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use switchboard_benches::restaurant::{FOLLOW_UPS, PERSONA, QUESTIONS};
use switchboard_benches::{models_dir, percentiles};
use switchboard_models::llm::{ChatRole, GenerateRequest, LlmToken, LocalLlm, LocalLlmConfig};
use switchboard_models::provision::catalog::{PIPER_JOE, SMOLLM2};
use switchboard_models::tts::text::SpeechChunker;
use switchboard_models::tts::{PiperConfig, PiperEngine, SpeakOptions, TextToSpeech};

const RUNS: usize = 3;

/// Questions a general assistant gets, whose answers tend to open with a long sentence.
const OPEN_QUESTIONS: [&str; 4] = [
    "What is the weather like in Paris today?",
    "How long does shipping to Berlin take?",
    "Can you explain how a heat pump works?",
    "What should I see on a first trip to Rome?",
];

struct Reply {
    /// Asked to the first chunk's text.
    chunk: Duration,
    /// Asked to the first chunk's audio.
    audio: Duration,
    words: usize,
    first_chunk: String,
}

/// Ask, feed the tokens to `chunker` as they come, and speak its first chunk while the rest
/// is decoded.
fn reply(
    llm: &LocalLlm,
    tts: &PiperEngine,
    messages: Vec<(ChatRole, String)>,
    mut chunker: SpeechChunker,
) -> Reply {
    let req = GenerateRequest {
        messages,
        max_tokens: 96,
        temperature: 0.7,
        seed: 7,
        ..GenerateRequest::default()
    };
    let asked = Instant::now();
    let mut stream = llm.generate(req);
    let (tx, rx) = mpsc::channel();
    // The LLM is read to its end on its own thread, as the call's response task reads it.
    let reader = std::thread::spawn(move || {
        let mut tx = Some(tx);
        while let Some(token) = stream.next_blocking() {
            let chunks = match token.expect("generation") {
                LlmToken::Text(t) => chunker.push(&t),
                LlmToken::Done { .. } => chunker.finish().into_iter().collect(),
            };
            if let Some(first) = chunks.into_iter().next()
                && let Some(tx) = tx.take()
            {
                let _ = tx.send((first, asked.elapsed()));
            }
        }
    });
    let (first_chunk, chunk) = rx.recv().expect("a first chunk");
    let mut speech = tts.synthesize(&first_chunk, SpeakOptions::default());
    speech.next_blocking().expect("audio").expect("synthesis");
    let audio = asked.elapsed();
    while speech.next_blocking().is_some() {}
    reader.join().expect("reader");
    Reply {
        chunk,
        audio,
        words: first_chunk.split_whitespace().count(),
        first_chunk,
    }
}

fn main() {
    // SAFETY: before any other thread exists.
    unsafe { switchboard_models::tts::export_espeak_data_dir() };
    let dir = models_dir();
    let tts = PiperEngine::load(PiperConfig::new(&dir, dir.join(PIPER_JOE))).expect("piper");
    let llm = LocalLlm::load(LocalLlmConfig::new(dir.join(SMOLLM2))).expect("SmolLM2 loads");
    let restaurant = QUESTIONS.iter().chain(&FOLLOW_UPS).map(|q| (PERSONA, *q));
    let open = OPEN_QUESTIONS
        .iter()
        .map(|q| ("You are a helpful voice assistant.", *q));
    let asks: Vec<Vec<(ChatRole, String)>> = restaurant
        .chain(open)
        .map(|(system, question)| {
            vec![
                (ChatRole::System, system.into()),
                (ChatRole::User, question.into()),
            ]
        })
        .collect();
    let chunkers = [
        ("sentences", SpeechChunker::default as fn() -> SpeechChunker),
        ("phrases", SpeechChunker::for_reply),
    ];
    let mut times = [(Vec::new(), Vec::new(), Vec::new()), Default::default()];
    let verbose = std::env::var_os("SWITCHBOARD_BENCH_REPLIES").is_some();
    // Warm-up: page faults, thread pools, and each persona's prompt in the KV cache.
    for messages in [&asks[0], &asks[asks.len() - 1]] {
        reply(&llm, &tts, messages.clone(), SpeechChunker::default());
    }
    for run in 0..RUNS {
        for messages in &asks {
            // Alternate which chunker goes first, so neither always finds the cache warmer.
            for k in [run % 2, 1 - run % 2] {
                let r = reply(&llm, &tts, messages.clone(), chunkers[k].1());
                if verbose && run == 0 {
                    eprintln!(
                        "{:>9} {:>5} ms  {}",
                        chunkers[k].0,
                        r.audio.as_millis(),
                        r.first_chunk
                    );
                }
                times[k].0.push(r.chunk);
                times[k].1.push(r.audio);
                times[k].2.push(r.words);
            }
        }
    }
    println!(
        "{} questions x {RUNS} runs, each answered with both chunkers (SmolLM2 seeded, Piper joe)\n",
        asks.len()
    );
    println!(
        "| first chunk ends at | asked → first chunk p50 / p95 | asked → first audio p50 / p95 | words in the first chunk (median) |"
    );
    println!("|---|---|---|---|");
    for (k, (name, _)) in chunkers.iter().enumerate() {
        let (chunk, audio, words) = &mut times[k];
        let (c50, c95) = percentiles(chunk);
        let (a50, a95) = percentiles(audio);
        words.sort_unstable();
        println!(
            "| {name} | {c50:.0} / {c95:.0} ms | {a50:.0} / {a95:.0} ms | {} |",
            words[words.len() / 2]
        );
    }
}
