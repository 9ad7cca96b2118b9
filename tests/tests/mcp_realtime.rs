//! MCP servers a Realtime client declares in its session, end to end: listed, called by
//! the gateway as `mcp_call` items, approved or declined by the client (also through the
//! OpenAI Python SDK); a response can declare one of its own; the calls of one round run
//! side by side; the words before and after a call are two messages. The server is the tests' own (`tests/python/mcp_orders.py`) over
//! streamable HTTP. (The operator's servers: `mcp_servers.rs`.)

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::mcp_server::LoggedMcp;
use switchboard_e2e::python::run_sdk_script;
use switchboard_e2e::realtime_client::{RealtimeClient, Received, output_items, outputs_of, said};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn kinds(events: &[Received]) -> Vec<&str> {
    events.iter().map(Received::kind).collect()
}

/// The types of the response's output items, in order.
fn output_types(events: &[Received]) -> Vec<&str> {
    output_items(events)
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect()
}

/// The tools the model was offered in its last request.
fn offered(llm: &ScriptedLlm) -> Vec<String> {
    llm.requests().last().expect("a request")["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Answer the approval request `id` (`approve`) and ask for a response; its events.
async fn answer(c: &mut RealtimeClient, id: &Value, approve: bool) -> Vec<Received> {
    let from = c.log.len();
    c.send(
        json!({"type": "conversation.item.create", "item": {"type": "mcp_approval_response",
        "approval_request_id": id, "approve": approve}}),
    )
    .await
    .unwrap();
    c.respond(from).await.unwrap()
}

/// A client connected to `gw`, its session declaring `mcp`'s server as "orders" (with
/// `require_approval`), in text; once the server's tools are listed.
async fn declaring(gw: &Gateway, mcp: &LoggedMcp, require_approval: Value) -> RealtimeClient {
    let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
    c.send(json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"],
        "tools": [{"type": "mcp", "server_label": "orders", "server_url": mcp.url(),
                   "require_approval": require_approval}]}}))
        .await
        .unwrap();
    c.wait_for("mcp_list_tools.completed", WAIT).await.unwrap();
    c
}

#[test]
fn a_realtime_client_declares_an_mcp_server_and_approves_its_calls() {
    let mcp = LoggedMcp::start(Some("tok-7"));
    let llm = ScriptedLlm::start(Script::default());
    let allow = mcp.addr();
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_OUTBOUND_ALLOW", &allow)]);
    let url = mcp.url();
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
        let events = c.ask("What is the status of order 42?").await.unwrap();
        let k = kinds(&events);
        for kind in [
            "response.mcp_call_arguments.delta",
            "response.mcp_call_arguments.done",
            "response.mcp_call.in_progress",
            "response.mcp_call.completed",
        ] {
            assert!(k.contains(&kind), "missing {kind} in {k:?}");
        }
        let calls = outputs_of(&events, "mcp_call");
        assert_eq!(calls.len(), 1, "{k:?}");
        assert_eq!(calls[0]["server_label"], "orders");
        assert_eq!(calls[0]["name"], "order_status");
        assert!(calls[0]["output"].as_str().is_some_and(|o| o.contains("shipped")), "{}", calls[0]);
        assert!(said(&events).contains("shipped"), "{}", said(&events));

        // One that needs approval waits for the client; nothing runs before.
        llm.call_tool("coupon", "orders_issue_coupon", json!({"percent": 10}));
        let events = c.ask("Can I get a coupon?").await.unwrap();
        let asked = outputs_of(&events, "mcp_approval_request");
        assert_eq!(asked.len(), 1, "{:?}", kinds(&events));
        assert_eq!(asked[0]["name"], "issue_coupon");
        assert!(outputs_of(&events, "mcp_call").is_empty());
        assert!(!mcp.tools_called().contains(&"issue_coupon".to_owned()), "nothing ran before approval");
        let request_id = asked[0]["id"].clone();

        // An answer to something that is not an approval request is refused.
        c.send(json!({"type": "conversation.item.create", "item": {"type": "mcp_approval_response",
            "approval_request_id": "item_nope", "approve": true}}))
            .await
            .unwrap();
        let err = c.wait_for("error", WAIT).await.unwrap();
        assert_eq!(err.event["error"]["param"], "item.approval_request_id", "{}", err.event);

        // Approved: the next response runs the call, then answers.
        let events = answer(&mut c, &request_id, true).await;
        let calls = outputs_of(&events, "mcp_call");
        assert_eq!(calls.len(), 1, "{:?}", kinds(&events));
        assert_eq!(calls[0]["approval_request_id"], request_id);
        assert!(said(&events).contains("SAVE10"), "{}", said(&events));

        // Declined: the model hears so, and nothing runs.
        let events = c.ask("Another coupon please").await.unwrap();
        let request_id = outputs_of(&events, "mcp_approval_request")[0]["id"].clone();
        let events = answer(&mut c, &request_id, false).await;
        assert!(outputs_of(&events, "mcp_call").is_empty());
        assert!(said(&events).contains("declined"), "{}", said(&events));
        assert_eq!(mcp.tools_called(), ["order_status", "issue_coupon"], "one coupon, approved");
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
        let weather = json!({"tools": [{"type": "function", "name": "weather",
            "parameters": {"type": "object", "properties": {}}}]});
        c.ask_with("Will it rain?", weather).await.unwrap();
        let offered = offered(&llm);
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
        let events = c.ask("Hello there").await.unwrap();
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
    let mcp = LoggedMcp::start(Some("tok-9"));
    let llm = ScriptedLlm::start(Script::default());
    llm.call_tool("coupon", "orders_issue_coupon", json!({"percent": 10}));
    let allow = mcp.addr();
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_OUTBOUND_ALLOW", &allow)]);
    let mcp_url = mcp.url();
    run_sdk_script(
        "mcp_sdk.py",
        &[
            std::ffi::OsStr::new(&format!("http://{}/v1", gw.addr)),
            std::ffi::OsStr::new(&mcp_url),
            std::ffi::OsStr::new("tok-9"),
        ],
    );
    assert_eq!(
        mcp.tools_called(),
        ["issue_coupon"],
        "the approved call ran once"
    );
}

#[test]
fn a_clients_mcp_calls_in_one_round_run_side_by_side() {
    let mcp = LoggedMcp::start(None);
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(
        &[llm.base_url()],
        &[("SWITCHBOARD_OUTBOUND_ALLOW", &mcp.addr())],
    );
    let running_at_once = |seconds: u64| {
        let calls: Vec<Value> = mcp
            .calls_of("slow_lookup")
            .into_iter()
            .filter(|c| c["arguments"]["seconds"] == seconds)
            .collect();
        assert_eq!(calls.len(), 3, "{calls:?}");
        calls.iter().filter_map(|c| c["running"].as_u64()).max()
    };
    runtime().block_on(async {
        // Run at once: three calls the model makes together, three items in its order.
        let mut c = declaring(&gw, &mcp, json!("never")).await;
        llm.call_tool_times(3, "three", "orders_slow_lookup", json!({"seconds": 1}));
        let events = c.ask("Do three lookups").await.unwrap();
        assert_eq!(
            output_types(&events),
            ["mcp_call", "mcp_call", "mcp_call", "message"]
        );
        for call in outputs_of(&events, "mcp_call") {
            assert_eq!(call["status"], "completed", "{call}");
            assert!(
                call["output"]
                    .as_str()
                    .is_some_and(|o| o.contains("slowly")),
                "{call}"
            );
        }
        assert_eq!(running_at_once(1), Some(3), "all three ran at once");
        c.close().await;

        // Approved together: the next response runs them side by side too.
        let mut c = declaring(&gw, &mcp, json!("always")).await;
        llm.call_tool_times(3, "three", "orders_slow_lookup", json!({"seconds": 2}));
        let events = c.ask("Do three lookups").await.unwrap();
        let asked: Vec<String> = outputs_of(&events, "mcp_approval_request")
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(asked.len(), 3, "{:?}", kinds(&events));
        let from = c.log.len();
        for id in &asked {
            c.send(
                json!({"type": "conversation.item.create", "item": {"type": "mcp_approval_response",
                "approval_request_id": id, "approve": true}}),
            )
            .await
            .unwrap();
        }
        let events = c.respond(from).await.unwrap();
        let calls = outputs_of(&events, "mcp_call");
        assert_eq!(calls.len(), 3, "{:?}", kinds(&events));
        assert!(
            calls.iter().all(|c| c["status"] == "completed"),
            "{calls:?}"
        );
        assert_eq!(running_at_once(2), Some(3), "all three ran at once");
        c.close().await;
    });
}

#[test]
fn a_response_declares_an_mcp_server_of_its_own() {
    let mcp = LoggedMcp::start(None);
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(
        &[llm.base_url()],
        &[("SWITCHBOARD_OUTBOUND_ALLOW", &mcp.addr())],
    );
    let orders = |approval: &str| {
        json!({"tools": [{"type": "mcp", "server_label": "orders", "server_url": mcp.url(),
            "require_approval": approval}]})
    };
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.send(json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}))
            .await
            .unwrap();
        c.wait_for("session.updated", WAIT).await.unwrap();

        // The first response that declares it connects and lists it, then calls it.
        llm.call_tool("status", "orders_order_status", json!({"order_id": "42"}));
        let events = c.ask_with("What is the status of order 42?", orders("never")).await.unwrap();
        assert_eq!(output_types(&events), ["mcp_list_tools", "mcp_call", "message"], "{:?}", kinds(&events));
        let k = kinds(&events);
        assert!(k.contains(&"mcp_list_tools.in_progress") && k.contains(&"mcp_list_tools.completed"), "{k:?}");
        let listing = outputs_of(&events, "mcp_list_tools")[0];
        assert_eq!(listing["server_label"], "orders");
        assert!(listing["tools"].to_string().contains("order_status"), "{listing}");
        let call = outputs_of(&events, "mcp_call")[0];
        assert_eq!(call["status"], "completed", "{call}");
        assert!(said(&events).contains("shipped"), "{}", said(&events));

        // Declared again, it is not connected again: the same MCP session answers.
        let events = c.ask_with("And the status of order 42 now?", orders("never")).await.unwrap();
        assert_eq!(output_types(&events), ["mcp_call", "message"], "{:?}", kinds(&events));
        let sessions: Vec<Value> = mcp.calls_of("order_status").iter().map(|c| c["session"].clone()).collect();
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0], sessions[1], "one connection for both responses");

        // A response that does not declare it is not offered it.
        c.ask("Hello there").await.unwrap();
        let offered = offered(&llm);
        assert!(!offered.iter().any(|t| t.starts_with("orders_")), "{offered:?}");

        // A call waiting for approval runs in a later response, declared there or not.
        llm.call_tool("coupon", "orders_issue_coupon", json!({"percent": 10}));
        let events = c.ask_with("Can I get a coupon?", orders("always")).await.unwrap();
        assert_eq!(output_types(&events), ["mcp_list_tools", "mcp_approval_request"], "{:?}", kinds(&events));
        let request_id = outputs_of(&events, "mcp_approval_request")[0]["id"].clone();
        let events = answer(&mut c, &request_id, true).await;
        let calls = outputs_of(&events, "mcp_call");
        assert_eq!(calls.len(), 1, "{:?}", kinds(&events));
        assert_eq!(calls[0]["approval_request_id"], request_id);
        assert_eq!(calls[0]["status"], "completed", "{}", calls[0]);
        assert!(said(&events).contains("SAVE10"), "{}", said(&events));

        // A server that cannot be used: an error saying why, and the response goes on.
        c.skip_seen();
        let inside = json!({"tools": [{"type": "mcp", "server_label": "inside", "server_url": "http://127.0.0.1:9/mcp"}]});
        let events = c.ask_with("Hello again", inside).await.unwrap();
        let e = events.iter().find(|e| e.kind() == "error").expect("an error event");
        assert_eq!(e.event["error"]["code"], "mcp_server_unavailable", "{}", e.event);
        assert_eq!(e.event["error"]["param"], "response.tools", "{}", e.event);
        assert!(kinds(&events).contains(&"mcp_list_tools.failed"), "{:?}", kinds(&events));
        assert_eq!(output_types(&events), ["mcp_list_tools", "message"], "{:?}", kinds(&events));
        assert!(!said(&events).is_empty(), "the response still answers");
        c.close().await;
    });
}

/// A response may declare a server under a session server's label; a call it asked approval
/// for runs on that server, even in a later response that declares neither.
#[test]
fn an_approved_call_runs_on_the_server_it_was_asked_for() {
    let session_server = LoggedMcp::start(None);
    let response_server = LoggedMcp::start(None);
    let llm = ScriptedLlm::start(Script::default());
    let allow = format!("{},{}", session_server.addr(), response_server.addr());
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_OUTBOUND_ALLOW", &allow)]);
    runtime().block_on(async {
        let mut c = declaring(&gw, &session_server, json!("always")).await;
        llm.call_tool("coupon", "orders_issue_coupon", json!({"percent": 10}));
        let other = json!({"tools": [{"type": "mcp", "server_label": "orders",
            "server_url": response_server.url(), "require_approval": "always"}]});
        let events = c.ask_with("Can I get a coupon?", other).await.unwrap();
        let request_id = outputs_of(&events, "mcp_approval_request")[0]["id"].clone();
        // Approved, it runs in a plain response, where the session's "orders" is offered.
        let events = answer(&mut c, &request_id, true).await;
        let calls = outputs_of(&events, "mcp_call");
        assert_eq!(calls.len(), 1, "{:?}", kinds(&events));
        assert_eq!(calls[0]["status"], "completed", "{}", calls[0]);
        assert_eq!(response_server.calls_of("issue_coupon").len(), 1);
        assert!(
            session_server.calls_of("issue_coupon").is_empty(),
            "run on the wrong server"
        );
        c.close().await;
    });
}

#[test]
fn words_before_and_after_an_mcp_call_are_two_messages() {
    let mcp = LoggedMcp::start(None);
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
    let gw = Gateway::start(
        &[llm.base_url()],
        &[("SWITCHBOARD_OUTBOUND_ALLOW", &mcp.addr())],
    );
    runtime().block_on(async {
        let mut c = declaring(&gw, &mcp, json!("never")).await;

        // Text: the words before the call, the call, the words after, as three items.
        let events = c.ask("What is the status of order 42?").await.unwrap();
        assert_eq!(output_types(&events), ["message", "mcp_call", "message"]);
        let messages = outputs_of(&events, "message");
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
        let call_id = &outputs_of(&events, "mcp_call")[0]["id"];
        assert!(
            at("response.output_item.done", &messages[0]["id"])
                < at("response.output_item.added", call_id)
        );

        // The model's next request has them in the order they happened.
        c.ask("Thanks").await.unwrap();
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
        let events = c.ask("And the status of order 42 now?").await.unwrap();
        assert_eq!(output_types(&events), ["message", "mcp_call", "message"]);
        let messages = outputs_of(&events, "message");
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
        // And the first is done before the second's audio begins.
        let first_done = events
            .iter()
            .position(|e| e.kind() == "response.output_item.done" && e.event["item"]["id"] == ids[0])
            .expect("the first message is done");
        let second_audio = events
            .iter()
            .position(|e| e.kind() == "response.output_audio.delta" && e.event["item_id"] == ids[1])
            .expect("the second message has audio");
        assert!(first_done < second_audio, "done at {first_done}, audio from {second_audio}");
        c.close().await;
    });
}
