//! MCP servers as tool sources end to end: a small MCP server written for the test
//! (`tests/python/mcp_orders.py`, JSON-RPC by hand) over stdio and over streamable HTTP,
//! its tools listed with the configured side-effect levels and called from a chat; a write
//! waits for "yes" like any other. And a server a Realtime client declares in its session:
//! listed, called by the gateway as `mcp_call` items, approved or declined by the client.
//! Calls to one server run side by side, and a call given up on (past its deadline, or its
//! response cancelled) is cancelled at the server.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::gateway::{Gateway, chat_completion, http_get, reply_text};
use switchboard_e2e::mcp_server::{self, HttpMcp};
use switchboard_e2e::python::run_sdk_script;
use switchboard_e2e::realtime_client::{RealtimeClient, Received};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

fn chat_reply(gw: &Gateway, session: &str, messages: &[(&str, &str)]) -> String {
    reply_text(&chat_completion(gw, session, messages))
}

/// A scratch folder, the call log in it, and the HTTP server writing to it.
fn served(token: Option<&str>) -> (tempfile::TempDir, std::path::PathBuf, HttpMcp) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("calls.jsonl");
    let http = HttpMcp::start(Some(log.to_str().expect("utf-8")), token);
    (dir, log, http)
}

fn logged(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn mcp_tools_over_stdio_and_http_are_called_from_a_chat() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("calls.jsonl");
    let log_s = log.to_str().expect("utf-8").to_owned();
    let http = HttpMcp::start(Some(&log_s), None);
    let personas = dir.path().join("personas.toml");
    std::fs::write(
        &personas,
        format!(
            r#"
[mcp.shop]
command = "python3"
args = ["{script}"]
effects = {{ order_status = "read" }}

[mcp.remote]
url = "http://127.0.0.1:{port}/mcp"
effects = {{ order_status = "read" }}
tools = ["order_status"]
"#,
            script = mcp_server::script(),
            port = http.port
        ),
    )
    .expect("persona file");
    let llm = ScriptedLlm::start(Script::default());
    let allow = format!("127.0.0.1:{}", http.port);
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_PERSONAS", personas.to_str().expect("utf-8")),
            ("SWITCHBOARD_OUTBOUND_ALLOW", &allow),
            ("MCP_ORDERS_LOG", &log_s),
        ],
    );

    // The servers connect in the background; their tools appear once listed.
    let mut effects = std::collections::BTreeMap::new();
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
        if effects.len() >= 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let expected: std::collections::BTreeMap<String, String> = [
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
        !logged(&log).iter().any(|c| c["tool"] == "issue_coupon"),
        "nothing ran before yes"
    );
    let said = chat_reply(
        &gw,
        "s-mcp-4",
        &[ask[0], ("assistant", &question), ("user", "yes please")],
    );
    assert!(said.contains("SAVE10"), "{said}");

    let calls = logged(&log);
    let tools: Vec<&str> = calls.iter().filter_map(|c| c["tool"].as_str()).collect();
    assert_eq!(
        tools,
        [
            "order_status",
            "order_status",
            "order_status",
            "issue_coupon"
        ],
        "{calls:?}"
    );
}

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Say `text` as the user in a text-only session and wait for the response's end; every
/// event of that response.
async fn ask(c: &mut RealtimeClient, text: &str) -> Vec<Received> {
    c.skip_seen();
    let from = c.log.len();
    c.send(
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": text}]}}),
    )
    .await
    .unwrap();
    respond(c, from).await
}

async fn respond(c: &mut RealtimeClient, from: usize) -> Vec<Received> {
    c.send(json!({"type": "response.create"})).await.unwrap();
    c.wait_for("response.done", WAIT).await.unwrap();
    c.log[from..].to_vec()
}

fn kinds(events: &[Received]) -> Vec<&str> {
    events.iter().map(Received::kind).collect()
}

/// The response's output items of `kind`.
fn outputs<'a>(events: &'a [Received], kind: &str) -> Vec<&'a Value> {
    let done = events.iter().rev().find(|e| e.kind() == "response.done");
    done.and_then(|d| d.event["response"]["output"].as_array())
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == kind)
        .collect()
}

fn said(events: &[Received]) -> String {
    outputs(events, "message")
        .iter()
        .map(|m| {
            m["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn a_realtime_client_declares_an_mcp_server_and_approves_its_calls() {
    let (_dir, log, http) = served(Some("tok-7"));
    let llm = ScriptedLlm::start(Script::default());
    let allow = format!("127.0.0.1:{}", http.port);
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_OUTBOUND_ALLOW", &allow)]);
    let url = format!("http://127.0.0.1:{}/mcp", http.port);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.send(json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"],
            "tools": [{"type": "mcp", "server_label": "orders", "server_url": url, "authorization": "tok-7",
                       "require_approval": {"never": {"tool_names": ["order_status"]}}}]}}))
            .await
            .unwrap();
        let updated = c.wait_for("session.updated", WAIT).await.unwrap();
        let shown = &updated.event["session"]["tools"][0];
        assert_eq!(shown["server_label"], "orders", "{shown}");
        assert!(!shown.to_string().contains("tok-7"), "the token is not shown back: {shown}");
        let listed = c.wait_for("mcp_list_tools.completed", WAIT).await.unwrap();
        let item_id = listed.event["item_id"].clone();
        let done = c.wait_for("conversation.item.done", WAIT).await.unwrap();
        assert_eq!(done.event["item"]["id"], item_id);
        let names: Vec<&str> = done.event["item"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names, ["order_status", "issue_coupon", "wipe_orders", "slow_lookup"]);

        // A tool that needs no approval runs inside the response.
        llm.call_tool("status", "orders_order_status", json!({"order_id": "42"}));
        let events = ask(&mut c, "What is the status of order 42?").await;
        let k = kinds(&events);
        for kind in [
            "response.mcp_call_arguments.delta",
            "response.mcp_call_arguments.done",
            "response.mcp_call.in_progress",
            "response.mcp_call.completed",
        ] {
            assert!(k.contains(&kind), "missing {kind} in {k:?}");
        }
        let calls = outputs(&events, "mcp_call");
        assert_eq!(calls.len(), 1, "{k:?}");
        assert_eq!(calls[0]["server_label"], "orders");
        assert_eq!(calls[0]["name"], "order_status");
        assert!(calls[0]["output"].as_str().is_some_and(|o| o.contains("shipped")), "{}", calls[0]);
        assert!(said(&events).contains("shipped"), "{}", said(&events));

        // One that needs approval waits for the client; nothing runs before.
        llm.call_tool("coupon", "orders_issue_coupon", json!({"percent": 10}));
        let events = ask(&mut c, "Can I get a coupon?").await;
        let asked = outputs(&events, "mcp_approval_request");
        assert_eq!(asked.len(), 1, "{:?}", kinds(&events));
        assert_eq!(asked[0]["name"], "issue_coupon");
        assert!(outputs(&events, "mcp_call").is_empty());
        assert!(!logged(&log).iter().any(|c| c["tool"] == "issue_coupon"), "nothing ran before approval");
        let request_id = asked[0]["id"].as_str().expect("id").to_owned();

        // An answer to something that is not an approval request is refused.
        c.send(json!({"type": "conversation.item.create", "item": {"type": "mcp_approval_response",
            "approval_request_id": "item_nope", "approve": true}}))
            .await
            .unwrap();
        let err = c.wait_for("error", WAIT).await.unwrap();
        assert_eq!(err.event["error"]["param"], "item.approval_request_id", "{}", err.event);

        // Approved: the next response runs the call, then answers.
        let from = c.log.len();
        c.send(json!({"type": "conversation.item.create", "item": {"type": "mcp_approval_response",
            "approval_request_id": request_id, "approve": true}}))
            .await
            .unwrap();
        let events = respond(&mut c, from).await;
        let calls = outputs(&events, "mcp_call");
        assert_eq!(calls.len(), 1, "{:?}", kinds(&events));
        assert_eq!(calls[0]["approval_request_id"], request_id.as_str());
        assert!(said(&events).contains("SAVE10"), "{}", said(&events));

        // Declined: the model hears so, and nothing runs.
        let events = ask(&mut c, "Another coupon please").await;
        let request_id = outputs(&events, "mcp_approval_request")[0]["id"].clone();
        let from = c.log.len();
        c.send(json!({"type": "conversation.item.create", "item": {"type": "mcp_approval_response",
            "approval_request_id": request_id, "approve": false}}))
            .await
            .unwrap();
        let events = respond(&mut c, from).await;
        assert!(outputs(&events, "mcp_call").is_empty());
        assert!(said(&events).contains("declined"), "{}", said(&events));
        let tools: Vec<String> = logged(&log).iter().filter_map(|c| c["tool"].as_str().map(str::to_owned)).collect();
        assert_eq!(tools, ["order_status", "issue_coupon"], "one coupon, approved");
        // Counted under one label: clients name their own tools.
        let metrics = gw.metrics();
        let counted = metrics.lines().any(|l| {
            l.starts_with("switchboard_tool_calls_total{")
                && l.contains("tool=\"client_mcp\"")
                && l.contains("outcome=\"ok\"")
                && l.ends_with(" 2")
        });
        assert!(counted, "{}", metrics.lines().filter(|l| l.contains("tool_calls")).collect::<Vec<_>>().join("\n"));

        // `response.tools` replaces the session's functions for one response; the session's
        // MCP servers stay offered.
        c.send(json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Will it rain?"}]}}))
            .await
            .unwrap();
        c.send(json!({"type": "response.create", "response": {"tools": [
            {"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {}}}]}}))
            .await
            .unwrap();
        c.wait_for("response.done", WAIT).await.unwrap();
        let offered: Vec<String> = llm.requests().last().expect("a request")["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect();
        assert!(offered.contains(&"weather".to_owned()), "{offered:?}");
        assert!(offered.contains(&"orders_order_status".to_owned()), "{offered:?}");

        // A wrong token, and a destination the outbound guard refuses: listed as failed,
        // with an error that says why; the session goes on.
        c.skip_seen();
        c.send(json!({"type": "session.update", "session": {"type": "realtime", "tools": [
            {"type": "mcp", "server_label": "orders", "server_url": url, "authorization": "wrong"},
            {"type": "mcp", "server_label": "inside", "server_url": "http://127.0.0.1:9/mcp"}]}}))
            .await
            .unwrap();
        let mut failed = Vec::new();
        for _ in 0..2 {
            let e = c.wait_for("error", WAIT).await.unwrap();
            assert_eq!(e.event["error"]["code"], "mcp_server_unavailable", "{}", e.event);
            failed.push(e.event["error"]["message"].as_str().unwrap_or_default().to_owned());
        }
        failed.sort();
        assert!(failed[0].contains("'inside'") && failed[0].contains("not an allowed destination"), "{failed:?}");
        assert!(failed[1].contains("'orders'"), "{failed:?}");
        assert!(failed.iter().all(|m| !m.contains("wrong")), "the token stays out: {failed:?}");
        assert_eq!(c.log.iter().filter(|e| e.kind() == "mcp_list_tools.failed").count(), 2);
        let events = ask(&mut c, "Hello there").await;
        assert!(!said(&events).is_empty(), "the session still answers");
        c.close().await;
    });
}

#[test]
fn an_operator_can_turn_client_declared_mcp_servers_off() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_CLIENT_MCP", "false")]);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.send(json!({"type": "session.update", "session": {"type": "realtime",
            "tools": [{"type": "mcp", "server_label": "orders", "server_url": "https://mcp.example.com/mcp"}]}}))
            .await
            .unwrap();
        c.wait_for("mcp_list_tools.failed", WAIT).await.unwrap();
        let e = c.wait_for("error", WAIT).await.unwrap();
        assert_eq!(e.event["error"]["code"], "mcp_server_unavailable", "{}", e.event);
        let message = e.event["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("SWITCHBOARD_CLIENT_MCP"), "{message}");
        c.close().await;
    });
}

#[test]
fn the_openai_python_sdk_declares_an_mcp_server_and_approves_a_call() {
    let (_dir, log, http) = served(Some("tok-9"));
    let llm = ScriptedLlm::start(Script::default());
    llm.call_tool("coupon", "orders_issue_coupon", json!({"percent": 10}));
    let allow = format!("127.0.0.1:{}", http.port);
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_OUTBOUND_ALLOW", &allow)]);
    let mcp_url = format!("http://127.0.0.1:{}/mcp", http.port);
    run_sdk_script(
        "mcp_sdk.py",
        &[
            std::ffi::OsStr::new(&format!("http://{}/v1", gw.addr)),
            std::ffi::OsStr::new(&mcp_url),
            std::ffi::OsStr::new("tok-9"),
        ],
    );
    let tools: Vec<String> = logged(&log)
        .iter()
        .filter_map(|c| c["tool"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(tools, ["issue_coupon"], "the approved call ran once");
}

/// The logged calls of `tool` (each with its JSON-RPC `id` and the calls `running` as it
/// started).
fn calls_of(log: &std::path::Path, tool: &str) -> Vec<Value> {
    logged(log)
        .into_iter()
        .filter(|c| c["tool"] == tool)
        .collect()
}

/// Wait (up to 5 s) until the server has been told to cancel `call` (a logged call: its
/// session and JSON-RPC id) and has stopped it; the reason it was given.
fn cancelled_at_server(log: &std::path::Path, call: &Value) -> String {
    for _ in 0..50 {
        let entries = logged(log);
        let reason = entries
            .iter()
            .find(|e| e["cancelled"] == call["id"] && e["session"] == call["session"]);
        let stopped = entries
            .iter()
            .any(|e| e["stopped"] == true && e["arguments"] == call["arguments"]);
        if let (Some(r), true) = (reason, stopped) {
            return r["reason"].as_str().unwrap_or_default().to_owned();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{call} was not cancelled at the server: {:?}", logged(log));
}

/// The logged `slow_lookup` call asked to take `seconds`, once it has started.
fn started(log: &std::path::Path, seconds: u64) -> Value {
    for _ in 0..100 {
        if let Some(c) = calls_of(log, "slow_lookup")
            .into_iter()
            .find(|c| c["arguments"]["seconds"] == seconds)
        {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no slow_lookup({seconds}) started: {:?}", logged(log));
}

#[test]
fn mcp_calls_run_side_by_side_and_are_cancelled_when_given_up() {
    let (dir, log, http) = served(None);
    let personas = dir.path().join("personas.toml");
    std::fs::write(
        &personas,
        format!(
            r#"
[mcp.slow]
url = "http://127.0.0.1:{port}/mcp"
effects = {{ slow_lookup = "read" }}
tools = ["slow_lookup"]
timeout_ms = 60000

[mcp.brief]
url = "http://127.0.0.1:{port}/mcp"
effects = {{ slow_lookup = "read" }}
tools = ["slow_lookup"]
timeout_ms = 1000
"#,
            port = http.port
        ),
    )
    .expect("persona file");
    let llm = ScriptedLlm::start(Script::default());
    let allow = format!("127.0.0.1:{}", http.port);
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_PERSONAS", personas.to_str().expect("utf-8")),
            ("SWITCHBOARD_OUTBOUND_ALLOW", &allow),
        ],
    );
    for _ in 0..100 {
        let (_, body) = http_get(gw.addr, "/v1/admin/tools").expect("answers");
        if body.contains("brief_slow_lookup") && body.contains("slow_slow_lookup") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Three lookups the model asks for at once run side by side on one server session.
    llm.call_tool_times(3, "three", "slow_slow_lookup", json!({"seconds": 2}));
    let reply = chat_reply(&gw, "s-slow-1", &[("user", "Do three lookups")]);
    assert!(reply.contains("slowly"), "{reply}");
    let calls = calls_of(&log, "slow_lookup");
    assert_eq!(calls.len(), 3, "{calls:?}");
    let most = calls.iter().filter_map(|c| c["running"].as_u64()).max();
    assert_eq!(most, Some(3), "all three ran at once: {calls:?}");

    // Past its deadline a call is answered as timed out and cancelled at the server.
    llm.call_tool("late", "brief_slow_lookup", json!({"seconds": 30}));
    let reply = chat_reply(&gw, "s-slow-2", &[("user", "A late lookup")]);
    assert!(reply.contains("timeout"), "{reply}");
    let reason = cancelled_at_server(&log, &started(&log, 30));
    assert!(!reason.is_empty());

    let url = format!("http://127.0.0.1:{}/mcp", http.port);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.send(json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"],
            "tools": [{"type": "mcp", "server_label": "orders", "server_url": url, "require_approval": "never"}]}}))
            .await
            .unwrap();
        c.wait_for("mcp_list_tools.completed", WAIT).await.unwrap();

        // A response cancelled while the operator's tool runs cancels the call.
        llm.call_tool("abandon", "slow_slow_lookup", json!({"seconds": 31}));
        c.send(json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "abandon this lookup"}]}}))
            .await
            .unwrap();
        c.send(json!({"type": "response.create"})).await.unwrap();
        let call = started(&log, 31);
        c.send(json!({"type": "response.cancel"})).await.unwrap();
        let done = c.wait_for("response.done", WAIT).await.unwrap();
        assert_eq!(done.event["response"]["status"], "cancelled", "{}", done.event);
        cancelled_at_server(&log, &call);

        // So does one to the client's own server, whose item ends incomplete.
        c.skip_seen();
        llm.call_tool("client", "orders_slow_lookup", json!({"seconds": 32}));
        c.send(json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "a client lookup"}]}}))
            .await
            .unwrap();
        c.send(json!({"type": "response.create"})).await.unwrap();
        c.wait_for("response.mcp_call.in_progress", WAIT).await.unwrap();
        let call = started(&log, 32);
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
        cancelled_at_server(&log, &call);

        // The session goes on.
        let events = ask(&mut c, "Hello there").await;
        assert!(!said(&events).is_empty());
        c.close().await;
    });
}

#[test]
fn words_before_and_after_an_mcp_call_are_two_messages() {
    let (_dir, _log, http) = served(None);
    let llm = ScriptedLlm::start(Script {
        reply: "Okay.".into(),
        tool_trigger: Some((
            "status".into(),
            "orders_order_status".into(),
            json!({"order_id": "42"}).to_string(),
        )),
        before_call: "Let me check.".into(),
        ..Script::default()
    });
    let allow = format!("127.0.0.1:{}", http.port);
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_OUTBOUND_ALLOW", &allow)]);
    let url = format!("http://127.0.0.1:{}/mcp", http.port);
    let kinds_of = |events: &[Received]| -> Vec<String> {
        let done = events.iter().rev().find(|e| e.kind() == "response.done");
        done.and_then(|d| d.event["response"]["output"].as_array())
            .into_iter()
            .flatten()
            .map(|i| i["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.send(json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"],
            "tools": [{"type": "mcp", "server_label": "orders", "server_url": url, "require_approval": "never"}]}}))
            .await
            .unwrap();
        c.wait_for("mcp_list_tools.completed", WAIT).await.unwrap();

        // Text: the words before the call, the call, the words after, as three items.
        let events = ask(&mut c, "What is the status of order 42?").await;
        assert_eq!(kinds_of(&events), ["message", "mcp_call", "message"]);
        let messages = outputs(&events, "message");
        assert_eq!(messages[0]["content"][0]["text"], "Let me check.");
        let after = messages[1]["content"][0]["text"].as_str().unwrap_or_default();
        assert!(after.contains("shipped") && !after.contains("Let me check"), "{after}");
        // The first message is closed before the call's item is added.
        let at = |kind: &str, id: &Value| {
            events
                .iter()
                .position(|e| e.kind() == kind && e.event["item"]["id"] == *id)
                .unwrap_or_else(|| panic!("no {kind} for {id}"))
        };
        let call_id = &outputs(&events, "mcp_call")[0]["id"];
        assert!(
            at("response.output_item.done", &messages[0]["id"])
                < at("response.output_item.added", call_id)
        );

        // The model's next request has them in the order they happened.
        ask(&mut c, "Thanks").await;
        let history = llm.requests().last().expect("a request")["messages"].clone();
        let at = |f: &dyn Fn(&Value) -> bool| {
            history
                .as_array()
                .and_then(|m| m.iter().position(f))
                .unwrap_or_else(|| panic!("{history}"))
        };
        let before = at(&|m| m["role"] == "assistant" && m["content"] == "Let me check.");
        let answer = at(&|m| m["role"] == "tool");
        let words_after = at(&|m| {
            m["role"] == "assistant" && m["content"].as_str().is_some_and(|t| t.contains("shipped"))
        });
        assert!(before < answer && answer < words_after, "{history}");

        // Audio: each message has its own audio, the first's all before the second's.
        c.send(json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["audio"]}}))
            .await
            .unwrap();
        c.wait_for("session.updated", WAIT).await.unwrap();
        let events = ask(&mut c, "And the status of order 42 now?").await;
        assert_eq!(kinds_of(&events), ["message", "mcp_call", "message"]);
        let messages = outputs(&events, "message");
        assert_eq!(messages[0]["content"][0]["transcript"], "Let me check.");
        let after = messages[1]["content"][0]["transcript"].as_str().unwrap_or_default();
        assert!(after.contains("shipped") && !after.contains("Let me check"), "{after}");
        let mut audio_items: Vec<&str> = events
            .iter()
            .filter(|e| e.kind() == "response.output_audio.delta")
            .filter_map(|e| e.event["item_id"].as_str())
            .collect();
        audio_items.dedup();
        let ids: Vec<&str> = messages.iter().filter_map(|m| m["id"].as_str()).collect();
        assert_eq!(audio_items, ids, "the first message's audio, then the second's");
        c.close().await;
    });
}
