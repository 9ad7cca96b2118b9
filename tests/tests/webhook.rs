//! The generic webhook channel end to end: signed messages in, signed answers out to a real
//! HTTP receiver that fails at first (retries with backoff), duplicates not answered twice,
//! and an accepted message answered by the next process after a restart.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::scripted_llm::{Behaviour, Script, ScriptedLlm};
use switchboard_e2e::webrtc_client::post_sdp;

const SECRET: &str = "webhook-s3cret";

/// HMAC-SHA256 signature computed by Python's hmac (independent of the gateway's code).
fn sign(ts: i64, body: &str) -> String {
    switchboard_e2e::signing::switchboard(SECRET, ts, body)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[derive(Default)]
struct Received {
    /// (status answered, signature valid, body)
    calls: Vec<(u16, bool, Value)>,
    fail_first: usize,
}

/// A callback receiver on its own thread: answers 500 to the first `fail_first` calls.
fn receiver(fail_first: usize) -> (SocketAddr, Arc<Mutex<Received>>) {
    let shared = Arc::new(Mutex::new(Received {
        fail_first,
        ..Default::default()
    }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::clone(&shared);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            async fn hook(
                State(s): State<Arc<Mutex<Received>>>,
                headers: HeaderMap,
                body: String,
            ) -> StatusCode {
                let ts: i64 = headers["x-switchboard-timestamp"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let valid = headers["x-switchboard-signature"].to_str().unwrap() == sign(ts, &body);
                let mut r = s.lock().unwrap();
                let status = if r.calls.len() < r.fail_first {
                    500
                } else {
                    200
                };
                r.calls
                    .push((status, valid, serde_json::from_str(&body).unwrap()));
                StatusCode::from_u16(status).unwrap()
            }
            let app = axum::Router::new()
                .route("/hook", axum::routing::post(hook))
                .with_state(state);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (addr, shared)
}

async fn send(gw: &Gateway, body: &Value, ts: i64, signature: Option<String>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.to_string();
    let sig = signature.unwrap_or_else(|| sign(ts, &body));
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let req = format!(
        "POST /v1/webhooks/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
         X-Switchboard-Timestamp: {ts}\r\nX-Switchboard-Signature: {sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn wait_for_delivery(r: &Arc<Mutex<Received>>, id: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((_, _, b)) = r
            .lock()
            .unwrap()
            .calls
            .iter()
            .find(|(s, _, b)| *s == 200 && b["in_reply_to"] == id)
        {
            return b.clone();
        }
        assert!(Instant::now() < deadline, "no delivery of a reply to {id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn messages_are_answered_once_signed_and_retried_until_delivered() {
    let llm = ScriptedLlm::start(Script {
        reply: "Your order ships tomorrow.".into(),
        ..Script::default()
    });
    let (hook, received) = receiver(2);
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_WEBHOOK_SECRET", SECRET),
            (
                "SWITCHBOARD_WEBHOOK_CALLBACK_URL",
                &format!("http://{hook}/hook"),
            ),
            // The receiver is on loopback, which the outbound guard refuses unless listed.
            ("SWITCHBOARD_OUTBOUND_ALLOW", &hook.to_string()),
        ],
    );
    let msg = json!({"id": "m1", "conversation": "conv-1", "user": "ada", "text": "When does my order ship?"});
    runtime().block_on(async {
        let (status, body) = send(&gw, &msg, now(), Some("v1=00".into())).await;
        assert_eq!(status, 401, "{body}");
        let (status, _) = send(&gw, &msg, now() - 600, None).await;
        assert_eq!(status, 401, "a stale timestamp is a replay");
        let (status, body) = send(&gw, &msg, now(), None).await;
        assert_eq!(status, 202, "{body}");
        let (status, body) = send(&gw, &msg, now(), None).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"duplicate\":true"), "{body}");
        // Callbacks to internal addresses are refused when the message arrives.
        for url in ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:1/hook", "http://localhost:1/", "file:///etc/passwd"] {
            let probe = json!({"id": "m-ssrf", "conversation": "conv-x", "text": "hi", "callback_url": url});
            let (status, body) = send(&gw, &probe, now(), None).await;
            assert_eq!(status, 400, "{url}: {body}");
            assert!(body.contains("\"param\":\"callback_url\""), "{body}");
        }
        let bad = post_sdp(
            gw.addr,
            "/v1/webhooks/messages",
            None,
            "application/json",
            "{}",
        )
        .await;
        assert_eq!(bad.status, 401);
    });
    let reply = wait_for_delivery(&received, "m1", Duration::from_secs(20));
    assert_eq!(reply["text"], "Your order ships tomorrow.");
    assert_eq!(reply["conversation"], "conv-1");
    let calls = received.lock().unwrap().calls.clone();
    assert_eq!(calls.len(), 3, "two failures, then delivered: {calls:?}");
    assert!(
        calls.iter().all(|(_, valid, _)| *valid),
        "every callback is signed"
    );
    // Answered once, though sent twice.
    std::thread::sleep(Duration::from_millis(500));
    let asked = llm.requests().len();
    assert_eq!(asked, 1, "the duplicate was not answered again");
    // Stored as a session of its own.
    let (_, body) = switchboard_e2e::gateway::http_get(gw.addr, "/v1/sessions/conv-1").unwrap();
    let session: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(session["channel"], "webhook", "{session}");
}

#[test]
fn an_accepted_message_survives_a_restart() {
    let stalled = ScriptedLlm::start(Script {
        behaviour: Behaviour::Stall,
        ..Script::default()
    });
    let (hook, received) = receiver(0);
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let callback = format!("http://{hook}/hook");
    let allow = hook.to_string();
    let env = [
        ("SWITCHBOARD_WEBHOOK_SECRET", SECRET),
        ("SWITCHBOARD_WEBHOOK_CALLBACK_URL", callback.as_str()),
        ("SWITCHBOARD_DATA_DIR", data_dir.as_str()),
        ("SWITCHBOARD_OUTBOUND_ALLOW", &allow),
    ];
    let first = Gateway::start(&[stalled.base_url()], &env);
    let msg = json!({"id": "m2", "conversation": "conv-2", "text": "Are you open on Sunday?"});
    runtime().block_on(async {
        let (status, body) = send(&first, &msg, now(), None).await;
        assert_eq!(status, 202, "{body}");
    });
    // The process dies while the LLM is still thinking.
    std::thread::sleep(Duration::from_millis(300));
    drop(first);
    assert!(received.lock().unwrap().calls.is_empty());
    let llm = ScriptedLlm::start(Script {
        reply: "Yes, from ten to four.".into(),
        ..Script::default()
    });
    let _second = Gateway::start(&[llm.base_url()], &env);
    let reply = wait_for_delivery(&received, "m2", Duration::from_secs(20));
    assert_eq!(reply["text"], "Yes, from ten to four.");
}

/// Two gateways share one PostgreSQL database (issue 9's shape): each message, whichever
/// instance accepted it, is answered and delivered exactly once.
#[test]
fn two_instances_on_one_database_answer_each_message_once() {
    let db = switchboard_e2e::gateway::TestDatabase::new("inbox");
    // A slow first token, so both workers would be busy with the same rows without leases.
    let llm = ScriptedLlm::start(Script {
        reply: "Noted.".into(),
        first_token_ms: 300,
        ..Script::default()
    });
    let (hook, received) = receiver(0);
    let callback = format!("http://{hook}/hook");
    let allow = hook.to_string();
    let env = [
        ("SWITCHBOARD_WEBHOOK_SECRET", SECRET),
        ("SWITCHBOARD_WEBHOOK_CALLBACK_URL", callback.as_str()),
        ("SWITCHBOARD_OUTBOUND_ALLOW", allow.as_str()),
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
    ];
    let a = Gateway::start(&[llm.base_url()], &env);
    let b = Gateway::start(&[llm.base_url()], &env);
    let ids: Vec<String> = (0..6).map(|i| format!("mi{i}")).collect();
    runtime().block_on(async {
        for (i, id) in ids.iter().enumerate() {
            let gw = if i % 2 == 0 { &a } else { &b };
            let msg = json!({"id": id, "conversation": format!("conv-{id}"), "text": "Hello?"});
            let (status, body) = send(gw, &msg, now(), None).await;
            assert_eq!(status, 202, "{body}");
        }
    });
    for id in &ids {
        wait_for_delivery(&received, id, Duration::from_secs(30));
    }
    // Time for a second worker's duplicate to show up, if there were one.
    std::thread::sleep(Duration::from_millis(1500));
    let calls = received.lock().unwrap().calls.clone();
    for id in &ids {
        let n = calls
            .iter()
            .filter(|(_, _, b)| b["in_reply_to"] == id.as_str())
            .count();
        assert_eq!(n, 1, "{id} delivered {n} times");
    }
    assert_eq!(
        llm.requests().len(),
        ids.len(),
        "each message answered once"
    );
}
