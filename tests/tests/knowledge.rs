//! The knowledge API and the orchestrator's context stage through the real binary: uploads
//! over HTTP, a chat turn whose prompt carries the retrieved chunk, and a persona whose
//! engine deadline is too short, which degrades the turn without failing it.

use std::ffi::OsStr;

use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::python::run_sdk_script;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

const PERSONAS: &str = r#"
[personas.hurried]
instructions = "You answer in a hurry."
deadlines_ms = { knowledge = 1 }
"#;

#[test]
fn knowledge_upload_search_and_context_in_chat_turns() {
    let llm = ScriptedLlm::start(Script::default());
    let dir = tempfile::tempdir().unwrap();
    let personas = dir.path().join("personas.toml");
    std::fs::write(&personas, PERSONAS).unwrap();
    let gw = Gateway::start(
        &[llm.base_url()],
        &[("SWITCHBOARD_PERSONAS", personas.to_str().unwrap())],
    );
    let faq =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipeline/tests/fixtures/faq.md");
    run_sdk_script(
        "knowledge_api.py",
        &[
            OsStr::new(&format!("http://{}/v1", gw.addr)),
            OsStr::new(&faq),
        ],
    );

    // The first chat turn's prompt: the retrieved FAQ section in the system message.
    let requests = llm.requests();
    let system = requests[0]["messages"][0]["content"].as_str().unwrap_or("");
    assert!(
        system.contains("Repairs") && system.contains("fixes zips"),
        "no retrieved chunk in the prompt: {system}"
    );
    // The hurried persona's prompt: its own instructions, no reference material.
    let hurried = &requests[2]["messages"][0]["content"];
    assert_eq!(hurried, "You answer in a hurry.");

    let metrics = gw.metrics();
    assert!(
        metrics.contains(
            r#"switchboard_engine_degraded_total{engine="knowledge",reason="timeout"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switchboard_engine_calls_total{engine="knowledge",outcome="ok"} 2"#),
        "{metrics}"
    );
}
