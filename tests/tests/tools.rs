//! Server-side tools end to end: the real gateway with a persona file declaring HTTP tools
//! against a local order system (`fake_orders`), a scripted LLM that calls them, and chat
//! completions over HTTP: a lookup runs at once; a cancellation runs only after "yes" or an
//! API approval, never after "no" or expiry; internal destinations are refused; everything
//! lands in the audit log. A spoken call confirms by saying "yes".

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::fake_orders::FakeOrders;
use switchboard_e2e::gateway::{
    Gateway, TestDatabase, chat_completion, http_get, http_post_json, reply_text,
};
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn persona_file(dir: &std::path::Path, orders: &str) -> std::path::PathBuf {
    let closed = closed_port();
    let order_id = r#"parameters = { type = "object", properties = { order_id = { type = "string" } }, required = ["order_id"] }"#;
    let text = format!(
        r#"
[tools.lookup_order]
description = "Look up an order by its number"
effect = "read"
{order_id}
http = {{ url = "{orders}/orders/{{order_id}}", headers = {{ Authorization = "Bearer ${{ORDERS_TOKEN}}" }} }}

[tools.cancel_order]
description = "Cancel an order"
effect = "dangerous"
confirm = "cancel order {{order_id}}"
{order_id}
http = {{ method = "POST", url = "{orders}/orders/{{order_id}}/cancel", headers = {{ Authorization = "Bearer ${{ORDERS_TOKEN}}" }} }}

[tools.peek_metadata]
description = "Read instance metadata"
effect = "read"
http = {{ url = "http://169.254.169.254/latest/meta-data/iam/" }}

[tools.internal_admin]
description = "Internal admin page"
effect = "read"
http = {{ url = "http://127.0.0.1:{closed}/admin" }}

[tools.by_name]
description = "Internal admin page by host name"
effect = "read"
http = {{ url = "http://localhost:{closed}/admin" }}

[tools.bounce]
description = "A page that redirects"
effect = "read"
http = {{ url = "{orders}/redirect?to=http://169.254.169.254/latest/meta-data/" }}
"#
    );
    let path = dir.join("personas.toml");
    std::fs::write(&path, text).expect("persona file");
    path
}

struct Rig {
    orders: FakeOrders,
    llm: ScriptedLlm,
    gw: Gateway,
    _dir: tempfile::TempDir,
}

fn rig(extra: &[(&str, &str)]) -> Rig {
    let orders = FakeOrders::start();
    let llm = ScriptedLlm::start(Script::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let personas = persona_file(dir.path(), &orders.base_url());
    let allow = orders.addr.to_string();
    let mut env = vec![
        (
            "SWITCHBOARD_PERSONAS",
            personas.to_str().expect("utf-8 path"),
        ),
        ("SWITCHBOARD_OUTBOUND_ALLOW", allow.as_str()),
        ("ORDERS_TOKEN", "tok-secret-123"),
    ];
    env.extend_from_slice(extra);
    let gw = Gateway::start(&[llm.base_url()], &env);
    Rig {
        orders,
        llm,
        gw,
        _dir: dir,
    }
}

fn get_json(gw: &Gateway, path: &str) -> (u16, Value) {
    let (status, text) = http_get(gw.addr, path).expect("answers");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn audit_kinds(gw: &Gateway, session: &str) -> Vec<String> {
    let (_, v) = get_json(
        gw,
        &format!("/v1/admin/audit?session_id={session}&kind=tool."),
    );
    let mut kinds: Vec<String> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    // Entries written in the same millisecond have no order among them.
    kinds.sort();
    kinds
}

/// The audit log is written through the write queue: wait for `n` entries.
fn wait_for_audit(gw: &Gateway, session: &str, n: usize) -> Vec<String> {
    for _ in 0..50 {
        let kinds = audit_kinds(gw, session);
        if kinds.len() >= n {
            return kinds;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    audit_kinds(gw, session)
}

fn cancels(orders: &FakeOrders) -> usize {
    orders.seen().iter().filter(|s| s.method == "POST").count()
}

#[test]
fn tools_look_up_confirm_refuse_and_audit() {
    let Rig {
        orders,
        llm,
        gw,
        _dir,
    } = rig(&[]);

    // A read tool runs without confirmation; the secret header reaches the service only.
    llm.call_tool("where", "lookup_order", json!({"order_id": "42"}));
    let v = chat_completion(&gw, "s-lookup", &[("user", "Where is my order 42?")]);
    let said = reply_text(&v);
    assert!(
        said.contains("shipped") && said.contains("Friday"),
        "{said}"
    );
    assert_eq!(v["metadata"]["tools_run"], "lookup_order", "{v}");
    let seen = orders.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/orders/42");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer tok-secret-123")
    );
    assert_eq!(wait_for_audit(&gw, "s-lookup", 1), ["tool.executed"]);
    let (_, audit) = get_json(&gw, "/v1/admin/audit?session_id=s-lookup");
    assert!(
        !audit.to_string().contains("tok-secret-123"),
        "secrets never reach the audit log"
    );
    assert_eq!(
        audit["data"][0]["detail"]["arguments"],
        json!({"order_id": "42"})
    );
    assert!(
        audit["data"][0]["detail"]["result"]
            .as_str()
            .unwrap_or_default()
            .contains("shipped"),
        "{audit}"
    );

    // A dangerous tool asks first and runs only after yes, once.
    llm.call_tool("cancel", "cancel_order", json!({"order_id": "42"}));
    let ask = [("user", "Please cancel order 42.")];
    let v = chat_completion(&gw, "s-cancel", &ask);
    let question = reply_text(&v);
    assert!(
        question.contains("cancel order 42. Shall I go ahead?"),
        "{question}"
    );
    let action_id = v["metadata"]["pending_action_id"]
        .as_str()
        .expect("pending action")
        .to_owned();
    assert_eq!(cancels(&orders), 0, "nothing ran before the answer");
    let (_, a) = get_json(&gw, &format!("/v1/actions/{action_id}"));
    assert_eq!(
        (a["status"].as_str(), a["tool"].as_str()),
        (Some("pending"), Some("cancel_order")),
        "{a}"
    );

    let v = chat_completion(
        &gw,
        "s-cancel",
        &[ask[0], ("assistant", &question), ("user", "Yes, please.")],
    );
    let said = reply_text(&v);
    assert!(said.contains("cancelled"), "{said}");
    assert_eq!(v["metadata"]["action_status"], "executed", "{v}");
    assert_eq!(orders.status_of("42").as_deref(), Some("cancelled"));
    let posts: Vec<_> = orders
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].idempotency_key.as_deref(),
        Some(action_id.as_str())
    );
    let (_, a) = get_json(&gw, &format!("/v1/actions/{action_id}"));
    assert_eq!(a["status"], "executed");
    let (status, _) =
        http_post_json(gw.addr, &format!("/v1/actions/{action_id}/approve"), "").expect("answers");
    assert_eq!(status, 409, "an action runs once");
    assert_eq!(cancels(&orders), 1);
    assert_eq!(
        wait_for_audit(&gw, "s-cancel", 3),
        ["tool.confirmed", "tool.executed", "tool.proposed"]
    );

    // No means no.
    llm.call_tool("cancel", "cancel_order", json!({"order_id": "7"}));
    let ask = [("user", "Cancel order 7 please.")];
    let v = chat_completion(&gw, "s-reject", &ask);
    let question = reply_text(&v);
    let action_id = v["metadata"]["pending_action_id"]
        .as_str()
        .expect("pending action")
        .to_owned();
    let v = chat_completion(
        &gw,
        "s-reject",
        &[ask[0], ("assistant", &question), ("user", "No, don't.")],
    );
    assert!(reply_text(&v).contains("rejected"), "{v}");
    assert_eq!(orders.status_of("7").as_deref(), Some("processing"));
    let (status, _) =
        http_post_json(gw.addr, &format!("/v1/actions/{action_id}/approve"), "").expect("answers");
    assert_eq!(status, 409);
    assert_eq!(cancels(&orders), 1);

    // Approval through the API: the tool runs at once, and the next turn tells the model.
    let v = chat_completion(&gw, "s-api", &ask);
    let action_id = v["metadata"]["pending_action_id"]
        .as_str()
        .expect("pending action")
        .to_owned();
    let (status, body) =
        http_post_json(gw.addr, &format!("/v1/actions/{action_id}/approve"), "").expect("answers");
    let approved: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "executed");
    assert!(
        approved["output"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("cancelled")
    );
    assert_eq!(orders.status_of("7").as_deref(), Some("cancelled"));
    let before = llm.requests().len();
    chat_completion(
        &gw,
        "s-api",
        &[
            ask[0],
            ("assistant", "Shall I go ahead?"),
            ("user", "Thanks, bye."),
        ],
    );
    let sent = llm.requests()[before..].to_vec();
    assert!(
        sent.iter().any(|r| r["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["role"] == "tool"
                && m["content"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("cancelled"))),
        "the model learned the outcome: {sent:?}"
    );
    let (_, missing) = get_json(&gw, "/v1/actions/act_nope");
    assert_eq!(missing["error"]["code"], "action_not_found");

    // Internal destinations are refused before any connection; the model is told so.
    for (tool, word) in [
        ("peek_metadata", "metadata"),
        ("internal_admin", "admin"),
        ("by_name", "hostname"),
        ("bounce", "bounce"),
    ] {
        llm.call_tool(word, tool, json!({}));
        let v = chat_completion(
            &gw,
            &format!("s-ssrf-{word}"),
            &[("user", &format!("Please check the {word} page."))],
        );
        let said = reply_text(&v);
        assert!(
            said.contains("blocked") && said.contains("not allowed"),
            "{tool}: {said}"
        );
    }
    let redirects: Vec<_> = orders
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/redirect"))
        .collect();
    assert_eq!(
        redirects.len(),
        1,
        "the first hop was allowed; the redirect hop was not followed"
    );
    let metrics = gw.metrics();
    for tool in ["peek_metadata", "internal_admin", "by_name", "bounce"] {
        let counted = metrics.lines().any(|l| {
            l.starts_with("switchboard_tool_calls_total{")
                && l.contains("outcome=\"blocked\"")
                && l.contains(&format!("tool=\"{tool}\""))
                && l.ends_with(" 1")
        });
        assert!(counted, "{tool} not counted as blocked");
    }
}

/// On PostgreSQL, so the action store's queries run on both databases.
#[test]
fn an_unanswered_action_expires_and_never_runs() {
    let db = TestDatabase::new("actions");
    let Rig {
        orders,
        llm,
        gw,
        _dir,
    } = rig(&[
        ("SWITCHBOARD_ACTION_TTL_SECS", "1"),
        ("SWITCHBOARD_DATABASE_URL", &db.url),
    ]);
    llm.call_tool("cancel", "cancel_order", json!({"order_id": "42"}));
    let ask = [("user", "Please cancel order 42.")];
    let v = chat_completion(&gw, "s-expire", &ask);
    let question = reply_text(&v);
    let action_id = v["metadata"]["pending_action_id"]
        .as_str()
        .expect("pending action")
        .to_owned();
    // The sweep cancels it on its own.
    let mut status = Value::Null;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        status = get_json(&gw, &format!("/v1/actions/{action_id}")).1["status"].clone();
        if status == "expired" {
            break;
        }
    }
    assert_eq!(status, "expired");
    let (code, body) =
        http_post_json(gw.addr, &format!("/v1/actions/{action_id}/approve"), "").expect("answers");
    assert_eq!(code, 410, "{body}");
    assert!(body.contains("action_expired"));
    // A late yes gets the notice, not the action.
    let v = chat_completion(
        &gw,
        "s-expire",
        &[ask[0], ("assistant", &question), ("user", "Yes.")],
    );
    assert!(reply_text(&v).contains("expired"), "{v}");
    assert_eq!(v["metadata"]["action_status"], "expired");
    assert_eq!(cancels(&orders), 0);
    assert_eq!(orders.status_of("42").as_deref(), Some("shipped"));
    assert_eq!(
        wait_for_audit(&gw, "s-expire", 2),
        ["tool.expired", "tool.proposed"]
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn spoken(text: &str) -> Vec<i16> {
    let mut audio = silence(300, RATE);
    audio.extend(say(text, RATE));
    audio.extend(silence(1_200, RATE));
    audio
}

const RATE: u32 = 24_000;
const LONG: Duration = Duration::from_secs(30);

#[test]
fn a_caller_approves_a_change_by_saying_yes() {
    let Rig {
        orders,
        llm,
        gw,
        _dir,
    } = rig(&[]);
    llm.call_tool("cancel", "cancel_order", json!({"order_id": "42"}));
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url())
            .await
            .expect("connects");
        c.stream_audio(&spoken("Please cancel my order."), RATE)
            .await
            .expect("streams");
        let asked = c
            .wait_for("switchboard.action.confirmation_requested", LONG)
            .await
            .expect("a confirmation is asked for");
        let action = asked.event["action"].clone();
        assert_eq!(action["tool"], "cancel_order", "{action}");
        assert_eq!(action["prompt"], "cancel order 42");
        let done = c
            .wait_for("response.done", LONG)
            .await
            .expect("the question is spoken");
        assert_eq!(done.event["response"]["status"], "completed");
        let question: String = c
            .of_kind("response.output_audio_transcript.delta")
            .iter()
            .map(|r| r.event["delta"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(question.contains("Shall I go ahead?"), "{question}");
        assert!(
            !c.of_kind("response.output_audio.delta").is_empty(),
            "the question is audio"
        );
        assert_eq!(cancels(&orders), 0, "nothing ran before the answer");

        c.skip_seen();
        c.stream_audio(&spoken("Yes."), RATE)
            .await
            .expect("streams");
        let resolved = c
            .wait_for("switchboard.action.resolved", LONG)
            .await
            .expect("the answer settles the action");
        assert_eq!(resolved.event["action_id"], action["id"]);
        assert_eq!(resolved.event["status"], "executed", "{:?}", c.kinds());
        c.wait_for("response.done", LONG)
            .await
            .expect("the outcome is spoken");
        c.close().await;
    });
    assert_eq!(orders.status_of("42").as_deref(), Some("cancelled"));
    let posts: Vec<_> = orders
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].idempotency_key.as_deref(),
        action_id_of(&gw).as_deref()
    );
}

/// The id of the only action the gateway holds.
fn action_id_of(gw: &Gateway) -> Option<String> {
    let (_, v) = get_json(gw, "/v1/actions");
    v["data"][0]["id"].as_str().map(str::to_owned)
}

/// A Realtime call that types "Please cancel order 42." and asks for a text response: the
/// call, and its `switchboard.action.confirmation_requested` event.
async fn typed_cancel_request(
    gw: &Gateway,
) -> (RealtimeClient, switchboard_e2e::realtime_client::Received) {
    let mut c = RealtimeClient::connect(&gw.ws_url())
        .await
        .expect("connects");
    c.send(
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "Please cancel order 42."}]}}),
    )
    .await
    .expect("sends");
    c.send(json!({"type": "response.create", "response": {"output_modalities": ["text"]}}))
        .await
        .expect("sends");
    let asked = c
        .wait_for("switchboard.action.confirmation_requested", LONG)
        .await
        .expect("a confirmation is asked for");
    (c, asked)
}

#[test]
fn a_realtime_client_approves_with_the_custom_event() {
    let Rig {
        orders,
        llm,
        gw,
        _dir,
    } = rig(&[]);
    llm.call_tool("cancel", "cancel_order", json!({"order_id": "42"}));
    runtime().block_on(async {
        let (mut c, asked) = typed_cancel_request(&gw).await;
        let id = asked.event["action"]["id"]
            .as_str()
            .expect("action id")
            .to_owned();
        c.wait_for("response.done", LONG)
            .await
            .expect("the question ends the response");
        assert_eq!(cancels(&orders), 0);

        // A malformed answer is refused in the protocol's shape; the call goes on.
        c.send(json!({"type": "switchboard.action.confirm", "action_id": id, "approve": "yes"}))
            .await
            .expect("sends");
        let err = c.wait_for("error", LONG).await.expect("an error event");
        assert_eq!(err.event["error"]["param"], "approve", "{}", err.event);

        c.send(json!({"type": "switchboard.action.confirm", "action_id": id, "approve": true}))
            .await
            .expect("sends");
        let resolved = c
            .wait_for("switchboard.action.resolved", LONG)
            .await
            .expect("settled");
        assert_eq!(resolved.event["status"], "executed", "{}", resolved.event);
        let done = c
            .wait_for("response.done", LONG)
            .await
            .expect("the outcome is told");
        assert!(
            done.event.to_string().contains("cancelled"),
            "{}",
            done.event
        );
        c.close().await;
    });
    assert_eq!(cancels(&orders), 1);
}

#[test]
fn a_live_call_hears_at_once_when_its_action_expires() {
    let Rig {
        orders,
        llm,
        gw,
        _dir,
    } = rig(&[("SWITCHBOARD_ACTION_TTL_SECS", "1")]);
    llm.call_tool("cancel", "cancel_order", json!({"order_id": "42"}));
    runtime().block_on(async {
        let (mut c, asked) = typed_cancel_request(&gw).await;
        let id = asked.event["action"]["id"].clone();
        c.wait_for("response.done", LONG)
            .await
            .expect("the question ends the response");
        c.skip_seen();

        // The caller says nothing. Once the action expires the agent speaks up by itself.
        let resolved = c
            .wait_for("switchboard.action.resolved", LONG)
            .await
            .expect("the expiry reaches the call without a turn");
        assert_eq!(resolved.event["action_id"], id);
        assert_eq!(resolved.event["status"], "expired", "{}", resolved.event);
        let done = c
            .wait_for("response.done", LONG)
            .await
            .expect("the agent tells the caller");
        assert_eq!(done.event["response"]["status"], "completed");
        assert!(
            done.event
                .to_string()
                .contains("confirmation window closed"),
            "the model was told how it ended: {}",
            done.event
        );
        assert_eq!(
            c.of_kind("response.created").len(),
            2,
            "the question and one notice, not one per sweep: {:?}",
            c.kinds()
        );
        c.close().await;
    });
    assert_eq!(cancels(&orders), 0, "nothing ran");
    let asked = llm.requests().len();
    assert_eq!(asked, 2, "the question, then the notice");
}
