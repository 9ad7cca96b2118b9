//! The official `openai` Python SDK (pip `openai[realtime]`) as the Realtime client.

use std::ffi::OsStr;

use switchboard_e2e::gateway::{Gateway, http_get};
use switchboard_e2e::python::run_sdk_script;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence, write_wav};

/// A 24 kHz 16-bit mono WAV of `sentences`, each after 300 ms and followed by 1.5 s of
/// silence.
fn speech_wav(dir: &std::path::Path, sentences: &[&str]) -> std::path::PathBuf {
    let wav = dir.join("speech.wav");
    let mut audio = Vec::new();
    for sentence in sentences {
        audio.extend(silence(300, 24_000));
        audio.extend(say(sentence, 24_000));
        audio.extend(silence(1_500, 24_000));
    }
    write_wav(&wav, &audio, 24_000);
    wav
}

#[test]
fn openai_python_sdk_realtime_conversation() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let dir = tempfile::tempdir().unwrap();
    let wav = speech_wav(dir.path(), &["What is the weather like in Paris today?"]);
    run_sdk_script(
        "realtime_sdk.py",
        &[
            OsStr::new(&format!("http://{}/v1", gw.addr)),
            OsStr::new(&wav),
        ],
    );
}

#[test]
fn openai_python_sdk_transcription_session() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let dir = tempfile::tempdir().unwrap();
    let wav = speech_wav(
        dir.path(),
        &[
            "Please send me to the billing team.",
            "My account number is four two seven.",
        ],
    );
    run_sdk_script(
        "transcription_sdk.py",
        &[
            OsStr::new(&format!("http://{}/v1", gw.addr)),
            OsStr::new(&wav),
        ],
    );
    assert!(
        llm.requests().is_empty(),
        "a transcription session asked the LLM"
    );
    // Both transcripts are stored as the session's messages.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, body) = http_get(gw.addr, "/v1/sessions").unwrap();
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let session = &list["data"][0];
        if session["message_count"] == 2 {
            let (_, stored) = http_get(
                gw.addr,
                &format!("/v1/sessions/{}", session["id"].as_str().unwrap()),
            )
            .unwrap();
            let stored = stored.to_lowercase();
            assert!(
                stored.contains("billing") && stored.contains("account"),
                "{stored}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "transcripts not stored: {list}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn openai_python_sdk_chat_completions_on_the_embedded_model() {
    let gw = Gateway::start(&[], &[]);
    run_sdk_script(
        "chat_sdk.py",
        &[OsStr::new(&format!("http://{}/v1", gw.addr))],
    );
}

#[test]
fn openai_python_sdk_audio_speech_and_transcriptions() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let dir = tempfile::tempdir().unwrap();
    run_sdk_script(
        "audio_sdk.py",
        &[
            OsStr::new(&format!("http://{}/v1", gw.addr)),
            OsStr::new(&dir.path()),
        ],
    );
}
