//! The server-side tool loop through the orchestrator, against a real HTTP service on
//! loopback (allow-listed by port) and a scripted model: read tools run at once, changes wait
//! for a yes, no or expiry, and the outbound guard refuses internal destinations.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_pipeline::context::{ContextStage, EngineMetrics};
use switchboard_pipeline::llm::{
    ActionNotice, ChatMessage, ChatRequest, LlmError, LlmEvent, LlmProvider, LlmStream,
};
use switchboard_pipeline::orchestrator::{Orchestrator, Speculation, TurnRequest};
use switchboard_pipeline::outbound::OutboundPolicy;
use switchboard_pipeline::persona::Personas;
use switchboard_pipeline::tools::{
    ActionStatus, ActionStore, MemoryActions, ToolEngine, ToolEngineConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Calls `lookup_order` when asked about an order, `cancel_order` when asked to cancel,
/// and repeats a tool's answer.
struct ScriptedModel;

impl LlmProvider for ScriptedModel {
    fn name(&self) -> &str {
        "scripted"
    }

    fn stream(&self, request: ChatRequest) -> LlmStream {
        let offered = |n: &str| request.tools.iter().any(|t| t.name == n);
        let events: Vec<LlmEvent> = match request.messages.last() {
            Some(ChatMessage::Tool { content, .. }) => {
                vec![LlmEvent::Text(format!("The tool says {content}."))]
            }
            Some(ChatMessage::User(t)) => {
                let t = t.to_lowercase();
                let call = |name: &str, args: &str| {
                    vec![
                        LlmEvent::Text("One moment.".into()),
                        LlmEvent::ToolCallStart {
                            index: 0,
                            id: format!("call_{name}"),
                            name: name.into(),
                        },
                        LlmEvent::ToolCallArguments {
                            index: 0,
                            delta: args[..3].into(),
                        },
                        LlmEvent::ToolCallArguments {
                            index: 0,
                            delta: args[3..].into(),
                        },
                    ]
                };
                if t.contains("cancel") && offered("cancel_order") {
                    call("cancel_order", r#"{"order_id": "42"}"#)
                } else if t.contains("metadata") && offered("peek") {
                    call("peek", r#"{"x": 1}"#)
                } else if t.contains("order") && offered("lookup_order") {
                    call("lookup_order", r#"{"order_id": "42"}"#)
                } else {
                    vec![LlmEvent::Text("Hello.".into())]
                }
            }
            _ => vec![LlmEvent::Text("Hello.".into())],
        };
        Box::pin(futures_util::stream::iter(events.into_iter().map(Ok)))
    }
}

/// A one-route-per-request HTTP service: records request heads, answers JSON.
async fn order_service() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let earlier = log
                    .lock()
                    .expect("log")
                    .iter()
                    .filter(|h: &&String| h.lines().next() == head.lines().next())
                    .count();
                let (status, body) = if head.starts_with("POST /orders/42/cancel") {
                    ("200 OK", r#"{"order_id": "42", "status": "cancelled"}"#)
                } else if head.contains(" /flaky ") && earlier == 0 {
                    ("503 Service Unavailable", r#"{"error": "busy"}"#)
                } else if head.contains(" /down ") {
                    ("503 Service Unavailable", r#"{"error": "down"}"#)
                } else if head.contains(" /missing ") {
                    ("404 Not Found", r#"{"error": "no such order"}"#)
                } else if head.contains(" /slow ") {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    ("200 OK", "{}")
                } else {
                    (
                        "200 OK",
                        r#"{"order_id": "42", "status": "shipped", "eta": "Friday"}"#,
                    )
                };
                log.lock().expect("log").push(head);
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

fn personas(port: u16) -> Personas {
    Personas::parse(&format!(
        r#"
[tools.lookup_order]
description = "Look up an order"
effect = "read"
parameters = {{ type = "object", properties = {{ order_id = {{ type = "string" }} }}, required = ["order_id"] }}
http = {{ url = "http://127.0.0.1:{port}/orders/{{order_id}}" }}

[tools.cancel_order]
description = "Cancel an order"
effect = "dangerous"
confirm = "cancel order {{order_id}}"
parameters = {{ type = "object", properties = {{ order_id = {{ type = "string" }} }}, required = ["order_id"] }}
http = {{ method = "POST", url = "http://127.0.0.1:{port}/orders/{{order_id}}/cancel" }}

[tools.flaky]
description = "Fails once, then answers"
effect = "read"
http = {{ url = "http://127.0.0.1:{port}/flaky" }}

[tools.down_write]
description = "A write to a failing service"
effect = "write"
http = {{ method = "POST", url = "http://127.0.0.1:{port}/down" }}

[tools.down_idempotent]
description = "A write the service deduplicates"
effect = "write"
idempotent = true
http = {{ method = "POST", url = "http://127.0.0.1:{port}/down" }}

[tools.missing]
description = "Answers 404"
effect = "read"
http = {{ url = "http://127.0.0.1:{port}/missing" }}

[tools.slow]
description = "Answers after 2 s"
effect = "read"
timeout_ms = 200
http = {{ url = "http://127.0.0.1:{port}/slow" }}

[tools.peek]
description = "Read instance metadata"
effect = "read"
http = {{ url = "http://169.254.169.254/latest/meta-data/" }}
"#
    ))
    .expect("persona file")
}

struct Rig {
    orchestrator: Orchestrator,
    actions: Arc<MemoryActions>,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn rig(ttl: Duration) -> Rig {
    let (port, seen) = order_service().await;
    let personas = personas(port);
    let actions = Arc::new(MemoryActions::default());
    let engine = ToolEngine::new(ToolEngineConfig {
        tools: personas.tools().clone(),
        policy: OutboundPolicy::parse(&format!("127.0.0.1:{port}")).expect("policy"),
        action_ttl: ttl,
        actions: actions.clone(),
        audit: None,
        metrics: None,
        client_mcp: false,
        handoff: None,
    });
    let orchestrator = Orchestrator::new(
        Arc::new(personas),
        ContextStage::new(Vec::new(), EngineMetrics::unregistered()),
        Arc::new(ScriptedModel),
        None,
    )
    .with_tools(Arc::new(engine));
    Rig {
        orchestrator,
        actions,
        seen,
    }
}

/// One turn of session `s1`: (reply text, action notices).
async fn turn(
    rig: &Rig,
    history: &[&str],
    decision: Option<(String, bool)>,
) -> (String, Vec<ActionNotice>) {
    let (text, notices, error) = turn_as(rig, history, decision, Speculation::default()).await;
    assert!(error.is_none(), "no provider error: {error:?}");
    (text, notices)
}

/// One turn of session `s1`, speculative or not: (reply text, action notices, the error
/// the reply ended with).
async fn turn_as(
    rig: &Rig,
    history: &[&str],
    decision: Option<(String, bool)>,
    speculative: Speculation,
) -> (String, Vec<ActionNotice>, Option<LlmError>) {
    let messages = history
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i % 2 == 0 {
                ChatMessage::User((*t).into())
            } else {
                ChatMessage::Assistant {
                    content: (*t).into(),
                    tool_calls: vec![],
                }
            }
        })
        .collect();
    let prepared = rig
        .orchestrator
        .prepare(TurnRequest {
            tenant: "t".into(),
            session: Some("s1".into()),
            request: ChatRequest {
                messages,
                ..Default::default()
            },
            decision,
            speculative,
            ..Default::default()
        })
        .await;
    let mut stream = rig.orchestrator.respond(prepared);
    let (mut text, mut notices) = (String::new(), Vec::new());
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(LlmEvent::Text(t)) => text.push_str(&t),
            Ok(LlmEvent::Action(n)) => notices.push(n),
            Ok(other) => panic!("server tool events must not reach the consumer: {other:?}"),
            Err(e) => return (text, notices, Some(e)),
        }
    }
    (text, notices, None)
}

fn requests(rig: &Rig) -> Vec<String> {
    rig.seen.lock().expect("log").clone()
}

#[tokio::test]
async fn a_read_tool_runs_at_once_and_its_answer_reaches_the_model() {
    let rig = rig(Duration::from_secs(60)).await;
    let (text, notices) = turn(&rig, &["Where is my order?"], None).await;
    assert!(text.starts_with("One moment."), "{text}");
    assert!(
        text.contains("shipped") && text.contains("Friday"),
        "{text}"
    );
    assert!(
        matches!(&notices[..], [ActionNotice::ToolRan { name, error: None }] if name == "lookup_order")
    );
    let reqs = requests(&rig);
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].starts_with("GET /orders/42 "), "{}", reqs[0]);
    assert!(
        !reqs[0].to_lowercase().contains("idempotency-key"),
        "reads carry no key"
    );
}

#[tokio::test]
async fn a_change_runs_only_after_yes() {
    let rig = rig(Duration::from_secs(60)).await;
    let (asked, notices) = turn(&rig, &["Please cancel my order"], None).await;
    assert!(
        asked.contains("please confirm: cancel order 42. Shall I go ahead?"),
        "{asked}"
    );
    let Some(ActionNotice::ConfirmationRequested(action)) = notices.first() else {
        panic!("no confirmation asked: {notices:?}");
    };
    assert!(requests(&rig).is_empty(), "nothing ran before the answer");

    let (done, notices) = turn(
        &rig,
        &["Please cancel my order", &asked, "Yes, go ahead."],
        None,
    )
    .await;
    assert!(done.contains("cancelled"), "{done}");
    assert!(
        matches!(&notices[..], [ActionNotice::Resolved { status, .. }] if status == "executed"),
        "{notices:?}"
    );
    let reqs = requests(&rig);
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].starts_with("POST /orders/42/cancel"));
    assert!(
        reqs[0]
            .to_lowercase()
            .contains(&format!("idempotency-key: {}", action.id)),
        "{}",
        reqs[0]
    );
    let stored = rig
        .actions
        .get("t", &action.id)
        .await
        .expect("store")
        .expect("stored");
    assert_eq!(stored.status, ActionStatus::Executed);
    assert!(stored.reported);

    // A second yes finds nothing open: it is an ordinary message.
    let (again, notices) = turn(&rig, &["yes"], None).await;
    assert_eq!(again, "Hello.");
    assert!(notices.is_empty());
    assert_eq!(requests(&rig).len(), 1, "never twice");
}

/// A call drafts its reply while the caller pauses; the draft must not act before the turn
/// is final (the caller may go on: "Yes, go ahead... no, wait"). It waits before the action,
/// goes on once the turn is confirmed, and never acts if it is not.
#[tokio::test]
async fn a_speculative_reply_waits_before_any_action() {
    let rig = rig(Duration::from_secs(60)).await;
    let quiet = Duration::from_millis(300);
    // Words alone: a draft answers in full.
    let (_gate, pending) = Speculation::pending();
    let (text, notices, error) = turn_as(&rig, &["Hi there"], None, pending).await;
    assert_eq!((text.as_str(), error.is_none()), ("Hello.", true));
    assert!(notices.is_empty());
    // A read tool: nothing runs while the turn is pending; then it does.
    let (gate, pending) = Speculation::pending();
    let confirm = async {
        tokio::time::sleep(quiet).await;
        let ran_before = requests(&rig).len();
        gate.send(true).expect("the draft waits");
        ran_before
    };
    let ((text, _, error), ran_before) = tokio::join!(
        turn_as(&rig, &["Where is my order?"], None, pending),
        confirm
    );
    assert_eq!(ran_before, 0, "ran before the turn was final");
    assert!(
        error.is_none() && text.contains("shipped"),
        "{text} {error:?}"
    );
    assert_eq!(requests(&rig).len(), 1);
    // A change, never confirmed: not even proposed.
    let ask = "Please cancel my order";
    let (gate, pending) = Speculation::pending();
    let dropped = tokio::time::timeout(quiet, turn_as(&rig, &[ask], None, pending)).await;
    assert!(dropped.is_err(), "a pending draft went past its action");
    drop(gate);
    let open = rig
        .actions
        .latest_unreported("t", "s1")
        .await
        .expect("store");
    assert!(open.is_none(), "a draft proposed {open:?}");

    // A pending change is not approved by a draft of the answer until that draft is taken.
    let (asked, notices) = turn(&rig, &[ask], None).await;
    let Some(ActionNotice::ConfirmationRequested(action)) = notices.first() else {
        panic!("no confirmation asked: {notices:?}");
    };
    let answer = [ask, asked.as_str(), "Yes, go ahead."];
    let (gate, pending) = Speculation::pending();
    let dropped = tokio::time::timeout(quiet, turn_as(&rig, &answer, None, pending)).await;
    assert!(dropped.is_err(), "a pending draft settled the action");
    drop(gate);
    let pending = rig.actions.get("t", &action.id).await.expect("store");
    assert_eq!(pending.map(|a| a.status), Some(ActionStatus::Pending));
    assert_eq!(requests(&rig).len(), 1, "nothing more ran");
    // The final turn settles it.
    let (done, _) = turn(&rig, &answer, None).await;
    assert!(done.contains("cancelled"), "{done}");
    assert_eq!(requests(&rig).len(), 2);
}

#[tokio::test]
async fn no_rejects_and_a_new_request_supersedes() {
    let rig = rig(Duration::from_secs(60)).await;
    let (asked, _) = turn(&rig, &["cancel order 42"], None).await;
    let (said, notices) = turn(&rig, &["cancel order 42", &asked, "No, don't."], None).await;
    assert!(said.contains("rejected"), "{said}");
    assert!(
        matches!(&notices[..], [ActionNotice::Resolved { status, .. }] if status == "rejected")
    );

    let (asked, _) = turn(&rig, &["cancel order 42"], None).await;
    let (said, notices) = turn(
        &rig,
        &[
            "cancel order 42",
            &asked,
            "Actually, what time do you open tomorrow?",
        ],
        None,
    )
    .await;
    assert_eq!(said, "Hello.");
    assert!(
        matches!(&notices[..], [ActionNotice::Resolved { status, .. }] if status == "superseded")
    );
    assert!(requests(&rig).is_empty(), "nothing ran");
}

#[tokio::test]
async fn an_expired_action_never_runs() {
    let rig = rig(Duration::from_millis(50)).await;
    let (asked, notices) = turn(&rig, &["cancel order 42"], None).await;
    let Some(ActionNotice::ConfirmationRequested(action)) = notices.first() else {
        panic!("no confirmation asked");
    };
    tokio::time::sleep(Duration::from_millis(80)).await;
    let (said, notices) = turn(&rig, &["cancel order 42", &asked, "yes"], None).await;
    assert!(said.contains("expired"), "{said}");
    assert!(matches!(&notices[..], [ActionNotice::Resolved { status, .. }] if status == "expired"));
    assert!(requests(&rig).is_empty());
    let stored = rig
        .actions
        .get("t", &action.id)
        .await
        .expect("store")
        .expect("stored");
    assert_eq!(stored.status, ActionStatus::Expired);
}

#[tokio::test]
async fn an_explicit_decision_answers_without_words() {
    let rig = rig(Duration::from_secs(60)).await;
    let (_, notices) = turn(&rig, &["cancel order 42"], None).await;
    let Some(ActionNotice::ConfirmationRequested(action)) = notices.first() else {
        panic!("no confirmation asked");
    };
    let (said, _) = turn(&rig, &["cancel order 42"], Some((action.id.clone(), true))).await;
    assert!(said.contains("cancelled"), "{said}");
    assert_eq!(requests(&rig).len(), 1);
}

#[tokio::test]
async fn the_metadata_address_is_refused() {
    let rig = rig(Duration::from_secs(60)).await;
    let (text, notices) = turn(&rig, &["read the metadata"], None).await;
    let v: Value = serde_json::from_str(
        text.trim_start_matches("One moment.The tool says ")
            .trim_end_matches('.'),
    )
    .expect("the model saw a JSON error");
    assert_eq!(
        v,
        json!({"error": "blocked", "message": "This tool's destination is not allowed."})
    );
    assert!(
        matches!(&notices[..], [ActionNotice::ToolRan { error: Some(e), .. }] if e == "blocked")
    );
}

/// Run one tool straight through the engine (no model), as an approved action would.
async fn run_tool(rig: &Rig, name: &str) -> switchboard_pipeline::tools::http::ToolOutput {
    let engine = rig.orchestrator.tools.clone().expect("engine");
    let persona = rig.orchestrator.personas.pick(None).clone();
    let tool = engine
        .tools_for("t", &persona)
        .into_iter()
        .find(|t| t.name == name)
        .expect("declared");
    let scope = switchboard_pipeline::tools::engine::ToolScope {
        tenant: "t".into(),
        ..Default::default()
    };
    let call = switchboard_pipeline::llm::ToolCall {
        id: "c1".into(),
        name: name.into(),
        arguments: "{}".into(),
    };
    engine.run(&scope, &tool, &call, Some("act_test")).await
}

#[tokio::test]
async fn failures_are_classified_and_retried_only_when_safe() {
    let rig = rig(Duration::from_secs(60)).await;
    let count = |path: &str| {
        requests(&rig)
            .iter()
            .filter(|h| h.contains(&format!(" {path} ")))
            .count()
    };

    let out = run_tool(&rig, "flaky").await;
    assert_eq!(
        (out.error, out.attempts),
        (None, 2),
        "a read is retried after a 503: {out:?}"
    );
    assert_eq!(count("/flaky"), 2);

    let out = run_tool(&rig, "down_write").await;
    assert_eq!(
        (out.error, out.attempts),
        (Some("server_error"), 1),
        "a write is not repeated"
    );
    assert_eq!(count("/down"), 1);
    let out = run_tool(&rig, "down_idempotent").await;
    assert_eq!(
        (out.error, out.attempts),
        (Some("server_error"), 3),
        "an idempotent write is"
    );
    assert_eq!(count("/down"), 4);
    assert!(
        requests(&rig)
            .iter()
            .filter(|h| h.contains(" /down "))
            .all(|h| h.to_lowercase().contains("idempotency-key: act_test"))
    );

    let out = run_tool(&rig, "missing").await;
    assert_eq!(
        (out.error, out.status, out.attempts),
        (Some("client_error"), Some(404), 1)
    );
    assert!(
        out.content.contains("no such order"),
        "the service's reason reaches the model: {}",
        out.content
    );

    let out = run_tool(&rig, "slow").await;
    assert_eq!(out.error, Some("timeout"));
    assert!(
        out.elapsed < Duration::from_millis(1500),
        "cut at the tool's deadline: {:?}",
        out.elapsed
    );
}
