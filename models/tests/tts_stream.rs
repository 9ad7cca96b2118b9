//! Piper streaming: chunks arrive in order, the first before the rest exist, and a dropped
//! stream stops synthesis.

mod common;

use std::time::{Duration, Instant};

use common::models_dir;
use switchboard_models::provision::catalog::PIPER_JOE;
use switchboard_models::tts::{
    PiperConfig, PiperEngine, Priority, SpeakOptions, TextToSpeech, TtsError, phonemize,
};

fn engine() -> PiperEngine {
    let dir = models_dir();
    PiperEngine::load(PiperConfig::new(&dir, dir.join(PIPER_JOE))).expect("piper")
}

#[test]
fn chunks_stream_in_order_with_the_voice_rate() {
    let e = engine();
    let mut s = e.synthesize(
        "Sure thing, I can help with that, no problem. Your order ships on Monday. Is there anything else?",
        SpeakOptions::default(),
    );
    let mut chunks = Vec::new();
    while let Some(c) = s.next_blocking() {
        chunks.push(c.unwrap());
    }
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Sure thing,",
            "I can help with that, no problem.",
            "Your order ships on Monday.",
            "Is there anything else?"
        ]
    );
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.index, i);
        assert_eq!(c.sample_rate, 22_050);
        assert!(c.samples.len() > 22_050 / 4, "chunk {i} too short");
        assert!(c.samples.iter().any(|s| s.abs() > 0.05), "chunk {i} silent");
    }
}

#[test]
fn the_first_chunk_arrives_before_the_whole_reply_is_synthesized() {
    let e = engine();
    let text = "Okay, here is the plan for tomorrow. We meet at the station at eight. Then we take the train \
                to the coast. Lunch is at a small place by the harbour. We head back before sunset.";
    let started = Instant::now();
    let mut s = e.synthesize(text, SpeakOptions::default());
    s.next_blocking().unwrap().unwrap();
    let first = started.elapsed();
    while let Some(c) = s.next_blocking() {
        c.unwrap();
    }
    let total = started.elapsed();
    // Not a speed assertion: the first of six chunks must not wait for the other five.
    assert!(first * 2 < total, "first {first:?} of total {total:?}");
}

#[test]
fn dropping_the_stream_stops_synthesis() {
    let e = engine();
    let long = "This is a sentence that takes a while to say. ".repeat(30);
    let mut s = e.synthesize(&long, SpeakOptions::default());
    s.next_blocking().unwrap().unwrap();
    drop(s);
    // The single worker is free again long before 30 sentences could have been synthesized.
    let started = Instant::now();
    let mut next = e.synthesize("Hello.", SpeakOptions::default());
    next.next_blocking().unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A listener that stops reading a long text (a slow `/v1/audio/speech` client) holds no
/// worker: a live call's sentence is synthesized meanwhile, ahead of the text's next chunks.
#[test]
fn a_stalled_listener_holds_no_worker_and_live_chunks_go_first() {
    let e = engine(); // one worker
    let long = "This is a sentence that takes a while to say. ".repeat(30);
    let batch = SpeakOptions {
        priority: Priority::Batch,
        ..SpeakOptions::default()
    };
    let mut upload = e.synthesize(&long, batch);
    upload.next_blocking().unwrap().unwrap();
    // Nobody reads the upload for a while; a live reply is spoken meanwhile.
    let started = Instant::now();
    let mut live = e.synthesize("Your table is booked for seven.", SpeakOptions::default());
    live.next_blocking().unwrap().unwrap();
    let live_took = started.elapsed();
    assert!(
        live_took < Duration::from_secs(2),
        "the live reply waited {live_took:?}"
    );
    // The upload goes on where it stopped, in order.
    for i in 1..5 {
        let c = upload.next_blocking().unwrap().unwrap();
        assert_eq!(c.index, i);
    }

    // With a Batch chunk queued, a Live one still goes first.
    let mut other_upload = e.synthesize(&long, batch);
    let mut second_live = e.synthesize("One moment, please.", SpeakOptions::default());
    let order = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            other_upload.next_blocking().unwrap().unwrap();
            other_upload.next_blocking().unwrap().unwrap();
            order.lock().unwrap().push("upload's second");
        });
        s.spawn(|| {
            second_live.next_blocking().unwrap().unwrap();
            order.lock().unwrap().push("live");
        });
    });
    assert_eq!(order.into_inner().unwrap(), ["live", "upload's second"]);
}

#[test]
fn speed_changes_duration_and_empty_text_is_refused() {
    let e = engine();
    let len = |speed: f32| {
        let mut s = e.synthesize("Good afternoon and welcome.", SpeakOptions::at_speed(speed));
        s.next_blocking().unwrap().unwrap().samples.len()
    };
    let (normal, fast) = (len(1.0), len(2.0));
    assert!(fast * 10 < normal * 7, "normal {normal}, fast {fast}");
    let mut s = e.synthesize(" ... ", SpeakOptions::default());
    assert!(matches!(s.next_blocking(), Some(Err(TtsError::EmptyText))));
}

#[test]
fn phonemes_keep_clause_punctuation_and_pauses() {
    models_dir();
    let p = phonemize("Hello, your table is ready.", "en-us").unwrap();
    assert!(p.contains(", "), "{p}");
    assert!(p.ends_with('.'), "{p}");
}
