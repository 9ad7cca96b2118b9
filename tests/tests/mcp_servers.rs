//! The operator's MCP servers as tool sources end to end: a small MCP server written for
//! the test (`tests/python/mcp_orders.py`, JSON-RPC by hand) over stdio and over streamable
//! HTTP, declared in the persona file; its tools listed with the configured side-effect
//! levels and called from a chat, a write waiting for "yes" like any other. Calls to one
//! server run side by side, and a call given up on (past its deadline, or its response
//! cancelled) is cancelled at the server. (Servers a Realtime client declares:
//! `mcp_realtime.rs`.)

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::gateway::{Gateway, chat_completion, http_get, reply_text};
use switchboard_e2e::mcp_server::{self, LoggedMcp};
use switchboard_e2e::realtime_client::{RealtimeClient, said};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

const WAIT: Duration = Duration::from_secs(30);

fn chat_reply(gw: &Gateway, session: &str, messages: &[(&str, &str)]) -> String {
    reply_text(&chat_completion(gw, session, messages))
}

/// A gateway with the persona file `persona` (written to a scratch folder, returned with
/// it), allowed to reach `mcp`'s server.
fn gateway_with(
    llm: &ScriptedLlm,
    mcp: &LoggedMcp,
    persona: &str,
    env: &[(&str, &str)],
) -> (tempfile::TempDir, Gateway) {
    let dir = tempfile::tempdir().expect("temp dir");
    let personas = dir.path().join("personas.toml");
    std::fs::write(&personas, persona).expect("persona file");
    let allow = mcp.addr();
    let mut env = env.to_vec();
    env.push(("SWITCHBOARD_PERSONAS", personas.to_str().expect("utf-8")));
    env.push(("SWITCHBOARD_OUTBOUND_ALLOW", &allow));
    let gw = Gateway::start(&[llm.base_url()], &env);
    (dir, gw)
}

/// The gateway's tools (name: side-effect level) once at least `count` are listed (the
/// servers connect in the background); waits up to 10 s.
fn listed(gw: &Gateway, count: usize) -> BTreeMap<String, String> {
    let mut effects = BTreeMap::new();
    for _ in 0..100 {
        let (_, body) = http_get(gw.addr, "/v1/admin/tools").expect("answers");
        let v: Value = serde_json::from_str(&body).expect("json");
        effects = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["name"].as_str().unwrap_or_default().to_owned(),
                    t["effect"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if effects.len() >= count {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    effects
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn mcp_tools_over_stdio_and_http_are_called_from_a_chat() {
    let mcp = LoggedMcp::start(None);
    let log = mcp.log.to_str().expect("utf-8");
    let persona = format!(
        r#"
[mcp.shop]
command = "python3"
args = ["{script}"]
effects = {{ order_status = "read" }}

[mcp.remote]
url = "{url}"
effects = {{ order_status = "read" }}
tools = ["order_status"]
"#,
        script = mcp_server::script(),
        url = mcp.url()
    );
    let llm = ScriptedLlm::start(Script::default());
    // The stdio server, the gateway's child, logs to the same file.
    let (_personas, gw) = gateway_with(&llm, &mcp, &persona, &[("MCP_ORDERS_LOG", log)]);

    // The servers connect in the background; their tools appear once listed.
    let effects = listed(&gw, 5);
    let expected: BTreeMap<String, String> = [
        ("remote_order_status", "read"),
        ("shop_issue_coupon", "write"),
        ("shop_order_status", "read"),
        ("shop_slow_lookup", "write"),
        ("shop_wipe_orders", "dangerous"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(
        effects, expected,
        "configured levels; the destructive hint raises, nothing lowers"
    );

    // A read tool over stdio runs at once.
    llm.call_tool("status", "shop_order_status", json!({"order_id": "42"}));
    let said = chat_reply(
        &gw,
        "s-mcp-1",
        &[("user", "What is the status of order 42?")],
    );
    assert!(said.contains("shipped") && said.contains("DHL"), "{said}");

    // Over streamable HTTP too.
    llm.call_tool("remote", "remote_order_status", json!({"order_id": "7"}));
    let said = chat_reply(
        &gw,
        "s-mcp-2",
        &[("user", "Ask the remote shop about order 7.")],
    );
    assert!(said.contains("processing"), "{said}");

    // A tool error reaches the model as an error it can explain.
    llm.call_tool("status", "shop_order_status", json!({"order_id": "999"}));
    let said = chat_reply(
        &gw,
        "s-mcp-3",
        &[("user", "What is the status of order 999?")],
    );
    assert!(
        said.contains("tool_error") && said.contains("no order 999"),
        "{said}"
    );

    // A write waits for yes.
    llm.call_tool("coupon", "shop_issue_coupon", json!({"percent": 10}));
    let ask = [("user", "Can I get a coupon?")];
    let question = chat_reply(&gw, "s-mcp-4", &ask);
    assert!(question.contains("Shall I go ahead?"), "{question}");
    assert!(
        !mcp.tools_called().contains(&"issue_coupon".to_owned()),
        "nothing ran before yes"
    );
    let said = chat_reply(
        &gw,
        "s-mcp-4",
        &[ask[0], ("assistant", &question), ("user", "yes please")],
    );
    assert!(said.contains("SAVE10"), "{said}");

    assert_eq!(
        mcp.tools_called(),
        [
            "order_status",
            "order_status",
            "order_status",
            "issue_coupon"
        ],
    );
}

#[test]
fn mcp_calls_run_side_by_side_and_are_cancelled_when_given_up() {
    let mcp = LoggedMcp::start(None);
    let persona = format!(
        r#"
[mcp.slow]
url = "{url}"
effects = {{ slow_lookup = "read" }}
tools = ["slow_lookup"]
timeout_ms = 60000

[mcp.brief]
url = "{url}"
effects = {{ slow_lookup = "read" }}
tools = ["slow_lookup"]
timeout_ms = 1000
"#,
        url = mcp.url()
    );
    let llm = ScriptedLlm::start(Script::default());
    let (_personas, gw) = gateway_with(&llm, &mcp, &persona, &[]);
    listed(&gw, 2);

    // Three lookups the model asks for at once run side by side on one server session.
    llm.call_tool_times(3, "three", "slow_slow_lookup", json!({"seconds": 2}));
    let reply = chat_reply(&gw, "s-slow-1", &[("user", "Do three lookups")]);
    assert!(reply.contains("slowly"), "{reply}");
    let calls = mcp.calls_of("slow_lookup");
    assert_eq!(calls.len(), 3, "{calls:?}");
    let most = calls.iter().filter_map(|c| c["running"].as_u64()).max();
    assert_eq!(most, Some(3), "all three ran at once: {calls:?}");

    // Past its deadline a call is answered as timed out and cancelled at the server.
    llm.call_tool("late", "brief_slow_lookup", json!({"seconds": 30}));
    let reply = chat_reply(&gw, "s-slow-2", &[("user", "A late lookup")]);
    assert!(reply.contains("timeout"), "{reply}");
    let reason = mcp.cancelled(&mcp.started(30));
    assert!(!reason.is_empty());

    let url = mcp.url();
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.send(json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"],
            "tools": [{"type": "mcp", "server_label": "orders", "server_url": url, "require_approval": "never"}]}}))
            .await
            .unwrap();
        c.wait_for("mcp_list_tools.completed", WAIT).await.unwrap();

        // A response cancelled while the operator's tool runs cancels the call.
        llm.call_tool("abandon", "slow_slow_lookup", json!({"seconds": 31}));
        c.say("abandon this lookup").await.unwrap();
        c.send(json!({"type": "response.create"})).await.unwrap();
        let call = mcp.started(31);
        c.send(json!({"type": "response.cancel"})).await.unwrap();
        let done = c.wait_for("response.done", WAIT).await.unwrap();
        assert_eq!(done.event["response"]["status"], "cancelled", "{}", done.event);
        mcp.cancelled(&call);

        // So does one to the client's own server, whose item ends incomplete.
        c.skip_seen();
        llm.call_tool("client", "orders_slow_lookup", json!({"seconds": 32}));
        c.say("a client lookup").await.unwrap();
        c.send(json!({"type": "response.create"})).await.unwrap();
        c.wait_for("response.mcp_call.in_progress", WAIT).await.unwrap();
        let call = mcp.started(32);
        c.send(json!({"type": "response.cancel"})).await.unwrap();
        let done = c.wait_for("response.done", WAIT).await.unwrap();
        let calls: Vec<&Value> = done.event["response"]["output"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["type"] == "mcp_call")
            .collect();
        assert_eq!(calls.len(), 1, "{}", done.event);
        assert_eq!(calls[0]["status"], "incomplete", "{}", done.event);
        mcp.cancelled(&call);

        // The session goes on.
        let events = c.ask("Hello there").await.unwrap();
        assert!(!said(&events).is_empty());
        c.close().await;
    });
}
