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
    // The tool result reached the model as a tool message.
    let last = llm.requests().pop().unwrap();
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["role"], "tool");
    assert_eq!(messages.last().unwrap()["content"], "shipped");
}
