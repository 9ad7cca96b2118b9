//! The CLI on good and bad input: one-line errors and non-zero exits, never a panic.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_e2e::{binary, run};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_line_error(o: &std::process::Output, needle: &str) {
    assert!(!o.status.success());
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn speak_then_transcribe_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let o = run(&[
        "speak",
        "Your table for two is ready.",
        "-o",
        wav.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["transcribe", wav.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Whisper writes the number as a word or a digit, depending on the synthesized take.
    let text = String::from_utf8_lossy(&o.stdout)
        .to_lowercase()
        .replace(" 2 ", " two ");
    assert!(text.contains("table for two is ready"), "{text}");

    // The output's extension picks the format; each reads back through `transcribe`.
    for ext in ["mp3", "opus", "flac"] {
        let file = dir.path().join(format!("out.{ext}"));
        let o = run(&[
            "speak",
            "Your table for two is ready.",
            "-o",
            file.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        let o = run(&["transcribe", file.to_str().unwrap()]);
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout)
            .to_lowercase()
            .replace(" 2 ", " two ");
        assert!(text.contains("table for two is ready"), "{ext}: {text}");
    }
    let flac = std::fs::read(dir.path().join("out.flac")).unwrap();
    assert!(flac.starts_with(b"fLaC"));
    assert_one_line_error(
        &run(&[
            "speak",
            "Hello.",
            "-o",
            dir.path().join("out.aac").to_str().unwrap(),
        ]),
        "cannot write .aac",
    );
}

#[test]
fn the_stt_model_flag_picks_whisper_base_and_json_names_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let o = run(&[
        "speak",
        "Please send the weekly report.",
        "-o",
        wav.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "transcribe",
        "--json",
        "--stt-model",
        "base",
        wav.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["backend"], "cpu", "{out}");
    assert!(
        out["device"]
            .as_str()
            .unwrap_or_default()
            .starts_with("CPU, "),
        "{out}"
    );
    let text = out["text"].as_str().unwrap_or_default().to_lowercase();
    assert!(text.contains("weekly report"), "{out}");
    assert!(
        stderr(&o).contains("ggml-base.bin"),
        "the start-up log names the model: {}",
        stderr(&o)
    );
    let o = run(&[
        "transcribe",
        "--stt-model",
        "/nonexistent/model.bin",
        wav.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "/nonexistent/model.bin");
}

/// A multilingual model transcribes the language it is told, or translates it into English;
/// an English-only one refuses another language, and translating, by name instead of
/// transcribing wrongly.
#[test]
fn language_is_honoured_by_a_multilingual_model_and_refused_by_an_english_one() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("de.wav");
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "de", "-s", "140", "-w"])
        .arg(&wav)
        .arg("Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren.")
        .status()
        .unwrap();
    assert!(status.success());
    let wav = wav.to_str().unwrap();
    let o = run(&[
        "transcribe",
        "--json",
        "--stt-model",
        "base",
        "--language",
        "de",
        wav,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["language"], "de", "{out}");
    let text = out["text"].as_str().unwrap_or_default().to_lowercase();
    assert!(text.contains("morgen") && text.contains("tisch"), "{out}");
    // No language: base tells German by itself.
    let o = run(&["transcribe", "--json", "--stt-model", "base", wav]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["language"], "de", "{out}");
    // Translated into English ("Good morning, I must have a dish…": base on espeak's German).
    let o = run(&["transcribe", "--stt-model", "base", "--translate", wav]);
    assert!(o.status.success(), "{}", stderr(&o));
    let english = String::from_utf8_lossy(&o.stdout).to_lowercase();
    assert!(
        english.contains("good morning") && !english.contains("morgen"),
        "{english}"
    );
    assert_one_line_error(
        &run(&["transcribe", "--language", "de", wav]),
        "--stt-model base",
    );
    assert_one_line_error(
        &run(&["transcribe", "--translate", wav]),
        "cannot translate",
    );
    assert_one_line_error(
        &run(&["transcribe", "--stt-model", "base", "--language", "xx", wav]),
        "not a language Whisper knows",
    );
}

#[test]
fn bad_audio_gets_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_wav = dir.path().join("notes.wav");
    std::fs::write(&not_wav, "this is text, not audio").unwrap();
    assert_one_line_error(
        &run(&["transcribe", not_wav.to_str().unwrap()]),
        "not decodable",
    );

    let missing = dir.path().join("missing.wav");
    assert_one_line_error(
        &run(&["transcribe", missing.to_str().unwrap()]),
        "No such file",
    );

    // A valid WAV header cut off mid-data, and a WAV with no samples.
    let good = dir.path().join("good.wav");
    assert!(
        run(&["speak", "Hello there.", "-o", good.to_str().unwrap()])
            .status
            .success()
    );
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..20]).unwrap();
    assert_one_line_error(
        &run(&["transcribe", cut.to_str().unwrap()]),
        "not a readable WAV",
    );
    let empty = dir.path().join("empty.wav");
    let mut header = bytes[..44].to_vec();
    header[40..44].copy_from_slice(&0u32.to_le_bytes());
    header[4..8].copy_from_slice(&36u32.to_le_bytes());
    std::fs::write(&empty, header).unwrap();
    assert_one_line_error(
        &run(&["transcribe", empty.to_str().unwrap()]),
        "no audio samples",
    );
}

#[test]
fn stereo_48k_silence_is_an_empty_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("silence.wav");
    let status = Command::new("sox")
        .args([
            "-n",
            "-r",
            "48000",
            "-c",
            "2",
            "-b",
            "16",
            wav.to_str().unwrap(),
            "trim",
            "0",
            "2",
        ])
        .status()
        .expect("sox installed");
    assert!(status.success());
    let o = run(&["transcribe", wav.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "");
}

#[test]
fn missing_models_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("x.wav");
    let models = dir.path().join("no-models");
    let o = Command::new(binary())
        .args([
            "speak",
            "Hi.",
            "-o",
            wav.to_str().unwrap(),
            "--dir",
            models.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_one_line_error(&o, "switchboard models fetch");
    let o = Command::new(binary())
        .args(["models", "verify", "--dir", models.to_str().unwrap()])
        .output()
        .unwrap();
    assert_one_line_error(&o, "switchboard models fetch");
    // An optional Whisper model by name: the error names the id to fetch.
    let status = Command::new("sox")
        .args(["-n", "-r", "16000", "-c", "1", "-b", "16"])
        .arg(&wav)
        .args(["trim", "0", "1"])
        .status()
        .expect("sox installed");
    assert!(status.success());
    let o = Command::new(binary())
        .args([
            "transcribe",
            "--stt-model",
            "base-q8_0",
            "--dir",
            models.to_str().unwrap(),
            wav.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_one_line_error(&o, "switchboard models fetch whisper-base-q8_0");
}

#[test]
fn corrupt_models_are_detected_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    // A copy of the real models directory with one byte of the voice changed.
    let real = std::env::var_os("SWITCHBOARD_MODELS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap())
                .join(".local/share/switchboard/models")
        });
    let status = Command::new("cp")
        .arg("-r")
        .arg(&real)
        .arg(&models)
        .status()
        .unwrap();
    assert!(status.success());
    let voice = models.join("vad/silero_vad.onnx");
    let mut bytes = std::fs::read(&voice).unwrap();
    bytes[1000] ^= 0xFF;
    std::fs::write(&voice, bytes).unwrap();
    let o = Command::new(binary())
        .args(["models", "verify", "--dir", models.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("silero-vad: vad/silero_vad.onnx is corrupt")
    );
    // fetch repairs it from the pinned wheel and is then a no-op.
    let fetch = |d: &std::path::Path| {
        Command::new(binary())
            .args(["models", "fetch", "--dir", d.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let o = fetch(&models);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("silero-vad: installed"));
    let o = fetch(&models);
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"));
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let status = body.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body))
}

#[test]
fn serve_answers_health_readiness_and_metrics() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(binary())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = None;
    while Instant::now() < deadline {
        if let Some((200, body)) = http_get(port, "/readyz") {
            ready = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let health = http_get(port, "/healthz");
    let metrics = http_get(port, "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    let ready = ready.expect("ready within 60 s");
    assert!(ready.contains("\"backend\":\"cpu\""), "{ready}");
    assert!(ready.contains("\"device\":\"CPU, "), "{ready}");
    assert!(ready.contains("\"workers\":1"), "{ready}");
    assert!(ready.contains("\"model\":\"smart-turn-v3.2\""), "{ready}");
    assert_eq!(health.map(|h| h.0), Some(200));
    let (status, metrics) = metrics.unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("switchboard_ready 1"), "{metrics}");
    assert!(metrics.contains("switchboard_build_info{"), "{metrics}");
}
