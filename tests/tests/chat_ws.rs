//! The text-chat WebSocket through the real binary with a real WebSocket client.

use std::ffi::OsStr;

use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::python::run_sdk_script;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

#[test]
fn chat_websocket_streams_replies_and_runs_tool_rounds() {
    let llm = ScriptedLlm::start(Script {
        tool_trigger: Some((
            "order".into(),
            "get_order".into(),
            r#"{"id": "A17"}"#.into(),
        )),
        ..Script::default()
    });
    let gw = Gateway::start(&[llm.base_url()], &[]);
    run_sdk_script(
        "chat_ws.py",
        &[
            OsStr::new(&format!("ws://{}/v1/chat/ws", gw.addr)),
            OsStr::new(&format!("http://{}/v1", gw.addr)),
        ],
    );
    let requests = llm.requests();
    // The tool result reached the model as a tool message.
    let tool_round = requests
        .iter()
        .find(|r| r["messages"].as_array().unwrap().last().unwrap()["role"] == "tool")
        .expect("a request with the tool result");
    let last = tool_round["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["content"], "shipped");
    // The summary was asked for with the whole transcript.
    let summary = requests
        .iter()
        .find(|r| {
            r["messages"][0]["content"]
                .as_str()
                .is_some_and(|s| s.starts_with("Summarize this conversation"))
        })
        .expect("a summary request");
    let transcript = summary["messages"][1]["content"].as_str().unwrap();
    assert!(
        transcript.contains("User: Where is my order?")
            && transcript.contains("The tool says shipped."),
        "{transcript}"
    );
}
