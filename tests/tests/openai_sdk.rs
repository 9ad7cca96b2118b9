//! The official `openai` Python SDK (pip `openai[realtime]`) as the Realtime client.

use std::ffi::OsStr;

use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::python::run_sdk_script;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};

#[test]
fn openai_python_sdk_realtime_conversation() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("question.wav");
    let mut audio = silence(300, 24_000);
    audio.extend(say("What is the weather like in Paris today?", 24_000));
    audio.extend(silence(1_500, 24_000));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 24_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).unwrap();
    for s in audio {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    run_sdk_script(
        "realtime_sdk.py",
        &[
            OsStr::new(&format!("http://{}/v1", gw.addr)),
            OsStr::new(&wav),
        ],
    );
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
