//! The end-of-turn judgement alone, without a gateway: on phrases cut where a caller might
//! pause ("Can you send the invoice to") and on whole sentences, and on both kinds ending on
//! or near a number ("My phone number is five five five" / "My account number is four five
//! six seven."), each followed by the ~200 ms of silence heard when the gateway judges a
//! pause, how each way of judging reads it:
//!
//! - the transcript (Whisper tiny.en q8_0, as the early transcription hears the pause):
//!   end punctuation and the last word, `semantic_vad`'s judgement before Smart Turn;
//! - Smart Turn v3.2 alone: complete at a probability of 0.5, as Pipecat decides;
//! - both, as `semantic_vad` now judges (`pipeline/src/call/end_of_turn.rs`).
//!
//! A cut phrase judged finished is a caller cut off at `high` and `auto` eagerness; a whole
//! sentence judged otherwise waits longer than it had to. Speakers: espeak-ng's en-us and
//! en-gb voices and the Piper voice, each heard wideband (16 kHz, as a browser or a Realtime
//! client sends it) and over a phone line (8 kHz G.711 μ-law, as a telephony media stream
//! carries it, resampled back to 16 kHz as the gateway does). Also times Smart Turn's
//! inference (features included) on one thread, against the transcription it runs beside,
//! and both started at once, as the gateway starts them at a pause: how much later the
//! judgement can be made than with the transcript alone.
//!
//! Run: `cargo bench -p switchboard-benches --bench end_of_turn` (needs `make models`).

use std::time::Instant;

use switchboard_benches::caller::audible;
use switchboard_benches::{env_number, espeak_16k, models_dir, percentiles, piper_speech};
use switchboard_models::audio::{MonoAudio, g711, pcm, rates};
use switchboard_models::end_of_turn::SmartTurn;
use switchboard_models::provision::catalog::{
    PIPER_JOE, SMART_TURN, WHISPER_DEFAULT, whisper_model,
};
use switchboard_models::stt::{
    ENGLISH, SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine,
};
use switchboard_models::tts::{PiperConfig, PiperEngine};
use switchboard_pipeline::call::end_of_turn::{Ending, judge, judge_heard};

/// Where a caller might pause: a listener would wait for the rest.
const CUT: [&str; 12] = [
    "I need to change my flight because",
    "Can you send the invoice to",
    "Please transfer me to the",
    "I would like to order a large pizza with",
    "Can I have the",
    "I would like to book a table for",
    "My account number is, um",
    "I want the red one and",
    "What time do you",
    "So what I was thinking is",
    "Could you check whether",
    "My name is",
];
/// Whole sentences and questions.
const WHOLE: [&str; 12] = [
    "What is the weather like in Paris today?",
    "Book a table for two at eight.",
    "I think so.",
    "Yes, I'd love to.",
    "My meeting moved to Friday.",
    "Can you send the invoice to my office?",
    "I need to change my flight.",
    "Please transfer me to the billing department.",
    "How long does shipping to Berlin take?",
    "Can I have the bill, please?",
    "That's fine.",
    "Please read me my last message.",
];
/// A number, cut where a caller reading one out pauses between its groups.
const NUMBER_CUT: [&str; 8] = [
    "My phone number is five five five",
    "My account number is four five",
    "The card number is four one two one",
    "My zip code is nine oh",
    "The order number is seven seven",
    "The code is one two",
    "My date of birth is the twelfth",
    "It's flat twenty",
];
/// Whole sentences that end on a number or a word after one ("three tickets"); Whisper
/// writes most of these numbers in digits.
const NUMBER_WHOLE: [&str; 8] = [
    "My account number is four five six seven.",
    "My zip code is nine oh two one oh.",
    "I'd like three tickets.",
    "The order number is seven seven four two.",
    "My flight leaves at six thirty.",
    "It's for four people.",
    "My phone number is five five five, one two three, four five six seven.",
    "I was born in nineteen eighty five.",
];
/// Silence before the speech.
const LEAD_MS: usize = 300;
/// Silence after it: the gateway judges a pause 160 ms after Silero's end of speech, which
/// lags the last audible sample by ~64 ms (`END_OF_TURN_TAIL_MS` to try others).
const TAIL_MS: usize = 200;

struct Heard {
    transcript: String,
    words: Ending,
    probability: f32,
    both: Ending,
}

fn main() {
    let dir = models_dir();
    let smart_turn = SmartTurn::load(&dir, &dir.join(SMART_TURN), 1).expect("smart turn");
    let stt = WhisperEngine::load(WhisperConfig::new(whisper_model(&dir, WHISPER_DEFAULT)))
        .expect("whisper");
    let piper = PiperEngine::load(PiperConfig::new(&dir, dir.join(PIPER_JOE))).expect("piper");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cores} CPU cores; Whisper {WHISPER_DEFAULT}\n");

    let (mut inference, mut transcription) = (Vec::new(), Vec::new());
    let mut heard_audio = Vec::new();
    let mut rows = Vec::new();
    for speaker in ["espeak-ng en-us", "espeak-ng en-gb", "Piper joe"] {
        let say = |text: &str| match speaker.strip_prefix("espeak-ng ") {
            Some(voice) => espeak_16k(voice, text),
            None => piper_speech(&piper, text)
                .to_rate(rates::SPEECH_MODELS)
                .expect("resample"),
        };
        for (line, kind, texts) in LINES.into_iter().flat_map(|line| {
            [
                (line, "cut", &CUT[..]),
                (line, "whole", &WHOLE[..]),
                (line, "number cut", &NUMBER_CUT[..]),
                (line, "number whole", &NUMBER_WHOLE[..]),
            ]
        }) {
            let heard: Vec<Heard> = texts
                .iter()
                .map(|text| {
                    let audio = line.carry(padded(&say(text)));
                    heard_audio.push(audio.clone());
                    let started = Instant::now();
                    let probability = smart_turn.complete_probability(&audio).expect("infer");
                    inference.push(started.elapsed());
                    let started = Instant::now();
                    let transcript = stt
                        .transcribe(audio, TranscribeOptions::default())
                        .wait()
                        .expect("transcription")
                        .text
                        .trim()
                        .to_owned();
                    transcription.push(started.elapsed());
                    Heard {
                        words: judge(&transcript, ENGLISH),
                        both: judge_heard(&transcript, ENGLISH, Some(probability)),
                        transcript,
                        probability,
                    }
                })
                .collect();
            for h in &heard {
                eprintln!(
                    "{speaker} {} {kind}: {:.2} {:>10} {:>10} {:?}",
                    line.name(),
                    h.probability,
                    h.words.as_str(),
                    h.both.as_str(),
                    h.transcript
                );
            }
            rows.push((speaker, line, kind, heard));
        }
    }

    println!(
        "| speaker | line | phrases | transcript: finished / unsure / unfinished | Smart Turn: complete | both: finished / unsure / unfinished |"
    );
    println!("|---|---|---|---|---|---|");
    for (speaker, line, kind, heard) in &rows {
        let tally = |pick: fn(&Heard) -> Ending| {
            let n = |e| heard.iter().filter(|h| pick(h) == e).count();
            format!(
                "{} / {} / {}",
                n(Ending::Finished),
                n(Ending::Unsure),
                n(Ending::Unfinished)
            )
        };
        let complete = heard.iter().filter(|h| h.probability >= 0.5).count();
        println!(
            "| {speaker} | {} | {} {kind} | {} | {complete} / {} | {} |",
            line.name(),
            heard.len(),
            tally(|h| h.words),
            heard.len(),
            tally(|h| h.both)
        );
    }
    let (p50, p95) = percentiles(&mut inference);
    let (t50, t95) = percentiles(&mut transcription);
    println!(
        "\nSmart Turn, one thread, features included: p50 {p50:.1} ms, p95 {p95:.1} ms \
         ({} runs); the transcription beside it: p50 {t50:.0} ms, p95 {t95:.0} ms",
        inference.len()
    );
    side_by_side(&smart_turn, &stt, &heard_audio);
}

/// Each clip transcribed alone, then transcribed while Smart Turn scores it on another
/// thread (both started at once, as at a pause); prints how long the transcript and the
/// judgement (both in) took.
fn side_by_side(smart_turn: &SmartTurn, stt: &WhisperEngine, clips: &[Vec<f32>]) {
    let transcribe = |audio: &[f32]| {
        stt.transcribe(audio.to_vec(), TranscribeOptions::default())
            .wait()
            .expect("transcription")
    };
    let (mut alone, mut beside, mut judged) = (Vec::new(), Vec::new(), Vec::new());
    for audio in clips {
        let started = Instant::now();
        transcribe(audio);
        alone.push(started.elapsed());
        let started = Instant::now();
        let (heard, scored) = std::thread::scope(|s| {
            let model = s.spawn(|| {
                smart_turn.complete_probability(audio).expect("infer");
                started.elapsed()
            });
            transcribe(audio);
            let heard = started.elapsed();
            (heard, model.join().expect("smart turn thread"))
        });
        beside.push(heard);
        judged.push(heard.max(scored));
    }
    let [alone, beside, judged] = [alone, beside, judged].map(|mut t| percentiles(&mut t));
    println!(
        "\nBoth started at once ({} clips): the transcription alone p50 {:.0} ms, p95 {:.0} ms; \
         beside Smart Turn p50 {:.0} ms, p95 {:.0} ms; judgement ready (both in) p50 {:.0} ms, \
         p95 {:.0} ms",
        clips.len(),
        alone.0,
        alone.1,
        beside.0,
        beside.1,
        judged.0,
        judged.1
    );
}

/// How the caller's audio reaches the gateway.
#[derive(Debug, Clone, Copy)]
enum Line {
    /// 16 kHz PCM: a browser, a Realtime client.
    Wideband,
    /// A telephony media stream: 8 kHz G.711 μ-law.
    Phone,
}

const LINES: [Line; 2] = [Line::Wideband, Line::Phone];

impl Line {
    fn name(self) -> &'static str {
        match self {
            Self::Wideband => "wideband",
            Self::Phone => "phone",
        }
    }

    /// 16 kHz `audio` as the models hear it after this line.
    fn carry(self, audio: Vec<f32>) -> Vec<f32> {
        match self {
            Self::Wideband => audio,
            Self::Phone => {
                let narrow = MonoAudio::new(audio, rates::SPEECH_MODELS)
                    .to_rate(rates::TELEPHONY)
                    .expect("resample");
                let coded = g711::mulaw_encode_all(&pcm::f32_to_i16(&narrow.samples));
                let heard = pcm::i16_to_f32(&g711::mulaw_decode_all(&coded));
                MonoAudio::new(heard, rates::TELEPHONY)
                    .to_rate(rates::SPEECH_MODELS)
                    .expect("resample")
                    .samples
            }
        }
    }
}

/// `audio` as the gateway hands it over at a pause: speech cut at its last audible sample,
/// after `LEAD_MS` and before `TAIL_MS` of silence.
fn padded(audio: &MonoAudio) -> Vec<f32> {
    let said = pcm::i16_to_f32(&audible(pcm::f32_to_i16(&audio.samples)));
    let ms = |n: usize| n * rates::SPEECH_MODELS as usize / 1000;
    let tail = env_number("END_OF_TURN_TAIL_MS", TAIL_MS);
    let mut out = vec![0.0; ms(LEAD_MS)];
    out.extend(said);
    out.extend(std::iter::repeat_n(0.0, ms(tail)));
    out
}
