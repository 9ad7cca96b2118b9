//! Shared helpers for the benchmarks: percentiles, test speech, the models directory.

use std::path::PathBuf;
use std::time::Duration;

/// p50 and p95 of some durations, in milliseconds.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.95))
}

/// Print the head of a latency table whose rows [`latency_row`] prints; `title` heads the
/// first column.
pub fn latency_table(title: &str) {
    println!("| {title} | p50 | p95 | samples |\n|---|---|---|---|");
}

/// Print one row of a latency table: `name`, p50 and p95 in milliseconds with `decimals`
/// digits, and how many samples they come from. Returns p50 and p95 (NaN without samples).
pub fn latency_row(name: &str, samples: &mut [Duration], decimals: usize) -> (f64, f64) {
    if samples.is_empty() {
        println!("| {name} | - | - | 0 |");
        return (f64::NAN, f64::NAN);
    }
    let (p50, p95) = percentiles(samples);
    println!(
        "| {name} | {p50:.decimals$} ms | {p95:.decimals$} ms | {} |",
        samples.len()
    );
    (p50, p95)
}

/// One turn of `user` through the orchestrator as tenant `t` in `session`: the reply's text.
pub async fn turn_text(
    orchestrator: &switchboard_pipeline::orchestrator::Orchestrator,
    session: String,
    user: &str,
) -> String {
    turn_text_with(orchestrator, session, user, Default::default()).await
}

/// [`turn_text`] with `client_mcp`: MCP servers the client declared.
pub async fn turn_text_with(
    orchestrator: &switchboard_pipeline::orchestrator::Orchestrator,
    session: String,
    user: &str,
    client_mcp: switchboard_pipeline::tools::client_mcp::ClientTools,
) -> String {
    use futures_util::StreamExt;
    use switchboard_pipeline::llm::{ChatMessage, ChatRequest, LlmEvent};
    let prepared = orchestrator
        .prepare(switchboard_pipeline::orchestrator::TurnRequest {
            tenant: "t".into(),
            session: Some(session),
            request: ChatRequest {
                messages: vec![ChatMessage::User(user.into())],
                ..Default::default()
            },
            client_mcp,
            ..Default::default()
        })
        .await;
    let mut stream = orchestrator.respond(prepared);
    let mut text = String::new();
    while let Some(Ok(ev)) = stream.next().await {
        if let LlmEvent::Text(t) = ev {
            text.push_str(&t);
        }
    }
    text
}

/// `text` spoken by espeak-ng's `voice` ("en-us", "de") at 150 words a minute, at 16 kHz.
pub fn espeak_16k(voice: &str, text: &str) -> switchboard_models::audio::MonoAudio {
    use switchboard_models::audio::{rates, wav};
    let out = std::env::temp_dir().join(format!("bench-speech-{}.wav", std::process::id()));
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(&out)
        .arg(text)
        .status()
        .expect("espeak-ng");
    assert!(status.success(), "espeak-ng failed");
    let audio = wav::read_file(&out).expect("wav");
    let _ = std::fs::remove_file(&out);
    audio.to_rate(rates::SPEECH_MODELS).expect("resample")
}

/// `text` spoken by the Piper voice `tts`, at its own rate.
pub fn piper_speech(
    tts: &switchboard_models::tts::PiperEngine,
    text: &str,
) -> switchboard_models::audio::MonoAudio {
    use switchboard_models::tts::{SpeakOptions, TextToSpeech};
    let mut s = tts.synthesize(text, SpeakOptions::default());
    let mut samples = Vec::new();
    while let Some(c) = s.next_blocking() {
        samples.extend(c.expect("synthesis").samples);
    }
    switchboard_models::audio::MonoAudio::new(samples, tts.sample_rate())
}

/// A counter's series by `label` in Prometheus text, as `used 11, cancelled 1`.
pub fn counts(metrics: &str, name: &str, label: &str) -> String {
    let prefix = format!("{name}{{{label}=\"");
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(value, n)| format!("{value} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sum and count of a histogram's series in Prometheus text (the series with `labels`, or
/// the unlabelled one when `labels` is empty).
pub fn histogram(metrics: &str, name: &str, labels: &str) -> (f64, f64) {
    let (mut sum, mut count) = (0.0, 0.0);
    for line in metrics.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let labelled = |suffix: &str| match labels.is_empty() {
            true => series == format!("{name}_{suffix}"),
            false => series.starts_with(&format!("{name}_{suffix}{{")) && series.contains(labels),
        };
        if labelled("sum") {
            sum += value;
        } else if labelled("count") {
            count += value;
        }
    }
    (sum, count)
}

/// The clients' runtime for benches against a live gateway: two workers, as many as the
/// machine's cores the figures are quoted for.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn models_dir() -> PathBuf {
    switchboard_models::provision::default_models_dir()
}

/// The environment variable `name` (else `default`) as a comma-separated list, blanks dropped.
pub fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The environment variable `name` as a number, or `default` when unset or not one.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Word errors of `hypothesis` against `reference` (lower-case, punctuation ignored) and the
/// reference's word count.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

/// Test speech at 16 kHz for the STT benchmarks: `$STT_BENCH_CLIPS/{label}.wav` (spaces
/// left out of `label`) where that is set, since a GPU machine has no espeak-ng
/// (`deploy/gpu/build-cuda.sh` renders the clips into its bundle); else espeak-ng's `voice`.
pub fn speech_clip(label: &str, voice: &str, text: &str) -> switchboard_models::audio::MonoAudio {
    use switchboard_models::audio::{rates, wav};
    if let Ok(dir) = std::env::var("STT_BENCH_CLIPS") {
        let path = PathBuf::from(dir).join(format!("{}.wav", label.replace(' ', "")));
        let audio = wav::read_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return audio.to_rate(rates::SPEECH_MODELS).expect("resample");
    }
    espeak_16k(voice, text)
}

/// The machine a speech-to-text benchmark runs on, as its first line says it: the GPU, or
/// the CPU's cores.
pub fn stt_machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    match switchboard_models::stt::device::gpus().first() {
        Some(gpu) => format!("machine: {gpu}; {cores} CPU cores"),
        None => format!("machine: CPU only, {cores} cores"),
    }
}

/// The STT benchmarks' utterances: (label, text), about 1, 3 and 10 s when spoken.
pub const STT_UTTERANCES: [(&str, &str); 3] = [
    ("1 s", "Yes, please."),
    (
        "3 s",
        "I would like to book a table for four people tonight at seven.",
    ),
    (
        "10 s",
        "I would like to book a table for four people tonight at seven, preferably by the window, \
         and one of us is vegetarian so please let the kitchen know. We will come by car, so we \
         also need to know where to park.",
    ),
];

/// The most streams `fits` accepts, up to `max`: try `first`, twice that, and so on until one
/// does not fit, then bisect between the last that fit (or 0) and the first that did not, to
/// within an eighth. A GPU carries hundreds of streams; stepping one by one would take the
/// whole run. Assumes more streams never fit better, as for a queue served at a fixed rate.
pub fn most_streams_within_budget(
    first: usize,
    max: usize,
    mut fits: impl FnMut(usize) -> bool,
) -> usize {
    let (mut carried, mut failed) = (0, None);
    let mut streams = first.clamp(1, max.max(1));
    while streams <= max {
        if !fits(streams) {
            failed = Some(streams);
            break;
        }
        carried = streams;
        if streams == max {
            break;
        }
        streams = (streams * 2).min(max);
    }
    let Some(mut failed) = failed else {
        return carried;
    };
    while failed - carried > (carried / 8).max(1) {
        let mid = carried + (failed - carried) / 2;
        if fits(mid) {
            carried = mid;
        } else {
            failed = mid;
        }
    }
    carried
}

/// What the live-call benchmarks' callers say.
pub mod caller {
    /// Short questions, one a turn.
    pub const QUESTIONS: [&str; 4] = [
        "What is the weather like in Paris today?",
        "Can you book a table for two at eight?",
        "How long does shipping to Berlin take?",
        "Please read me my last message.",
    ];

    /// Speech cut at its last audible sample: 1% of full scale, as `sox silence ... 1%`
    /// would cut. espeak-ng pads its output with ~350 ms of silence, which would otherwise
    /// count as speech on the client's clock and hide that much of the gateway's latency.
    pub fn audible(mut said: Vec<i16>) -> Vec<i16> {
        let end = said
            .iter()
            .rposition(|s| s.unsigned_abs() > 327)
            .map_or(0, |p| p + 1);
        said.truncate(end);
        said
    }

    /// Question `i` (of `QUESTIONS`, in turn) as the caller says it at `rate`: `lead_ms` of
    /// silence, then espeak-ng's speech ending at its last audible sample.
    pub fn question(i: usize, rate: u32, lead_ms: u32) -> Vec<i16> {
        use switchboard_e2e::speech::{say, silence};
        let mut a = silence(lead_ms, rate);
        a.extend(audible(say(QUESTIONS[i % QUESTIONS.len()], rate)));
        a
    }
}

/// A restaurant's booking line: the persona and callers of the LLM benchmarks.
pub mod restaurant {
    pub const PERSONA: &str = "You are a helpful voice assistant for a restaurant booking line. Answer briefly, in plain \
        spoken sentences, without lists. You can tell callers about opening hours, which are noon to \
        ten at night every day except Monday, about the menu, which changes weekly and always has \
        vegetarian dishes, and about bookings, which need a name, a time and the number of guests. \
        Tables for more than eight guests need a call with the manager. Parking is free behind the \
        building, and the nearest metro station is a five minute walk away.";

    pub const QUESTIONS: [&str; 3] = [
        "Hi, I would like to book a table for four people this Saturday at eight in the evening. \
         Is that possible, and do you have anything vegetarian on the menu?",
        "Good evening, we are a group of six and want to come on Friday around seven. Can we park \
         near the restaurant, and how far is the metro?",
        "Hello, are you open on Monday at lunch time, and can I bring my dog along to the table \
         outside if the weather is nice?",
    ];

    /// Follow-up questions, one per caller, asked after `QUESTIONS`.
    pub const FOLLOW_UPS: [&str; 3] = [
        "Thank you. And how much is parking?",
        "Great. Do we need to tell you the names of everyone?",
        "Okay. What time do you close on Sunday?",
    ];

    /// Passages of the restaurant's documents, as a knowledge lookup returns them.
    pub const FACTS: [&str; 12] = [
        "This week's vegetarian mains are a mushroom risotto with parmesan and a roasted aubergine with lentils and yoghurt.",
        "Parking behind the building is free for guests for up to three hours; the gate code is given at the desk.",
        "The metro station Central Square is a five minute walk; take the north exit and turn left at the bakery.",
        "Bookings for groups of six to eight are held for fifteen minutes after the booked time, then released.",
        "Dogs are welcome on the terrace but not inside; water bowls are brought to the table on request.",
        "On Sundays the kitchen closes at nine and the restaurant at ten; on Saturdays both stay open until eleven.",
        "Group bookings need one name and a phone number; the names of the other guests are not needed.",
        "The set lunch menu costs twenty-two euros for two courses and is served from noon to half past two.",
        "Gluten-free bread and pasta are available for every dish on request; please mention allergies when booking.",
        "The terrace has twelve tables with heaters and is open from April to October when the weather allows.",
        "Children under ten eat from the children's menu for nine euros, drink included, every day.",
        "Gift vouchers can be bought at the desk or by phone and are valid for twelve months.",
    ];
}

#[cfg(test)]
mod tests {
    use super::most_streams_within_budget;

    /// Every capacity from 0 to 300 streams, with the ceiling above and below it: the search
    /// returns a count that fits, within an eighth of the true one, and never asks beyond max.
    #[test]
    fn finds_the_capacity_within_an_eighth() {
        for (first, max) in [(1, 1), (1, 7), (1, 64), (16, 256), (5, 64)] {
            for capacity in 0..300usize {
                let mut asked = Vec::new();
                let found = most_streams_within_budget(first, max, |n| {
                    asked.push(n);
                    n <= capacity
                });
                let truth = capacity.min(max);
                assert!(
                    found <= truth,
                    "{first}..{max}, capacity {capacity}: {found}"
                );
                assert!(
                    truth - found <= (found / 8).max(1) || found == truth,
                    "{first}..{max}, capacity {capacity}: found {found}"
                );
                assert!(asked.iter().all(|&n| (1..=max).contains(&n)), "{asked:?}");
                assert!(asked.len() <= 20, "{} steps for {capacity}", asked.len());
            }
        }
    }
}
