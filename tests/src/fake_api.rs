//! A stand-in for an external HTTP API (Slack's Web API, Telegram's Bot API) in tests: it
//! records every request (path, headers, JSON body) and answers `{"ok": true}`, or what a
//! test set for that path (`respond`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub headers: HashMap<String, String>,
    /// The body as JSON (`Null` when it is not JSON) and as sent.
    pub body: Value,
    pub raw: Vec<u8>,
}

type Canned = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;
/// How many of the next requests get a 500.
type Failing = Arc<std::sync::atomic::AtomicUsize>;
type Shared = (Arc<Mutex<Vec<Call>>>, Canned, Failing);

pub struct FakeApi {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    canned: Canned,
    failing: Failing,
}

impl FakeApi {
    pub fn start() -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let canned: Canned = Arc::default();
        let failing: Failing = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let state = (
            Arc::clone(&calls),
            Arc::clone(&canned),
            Arc::clone(&failing),
        );
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                async fn any(
                    State((calls, canned, failing)): State<Shared>,
                    uri: Uri,
                    headers: HeaderMap,
                    raw: axum::body::Bytes,
                ) -> axum::response::Response {
                    use axum::response::IntoResponse;
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    calls.lock().expect("calls").push(Call {
                        path: uri.path().to_owned(),
                        headers,
                        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                        raw: raw.to_vec(),
                    });
                    use std::sync::atomic::Ordering;
                    if failing
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            "failing on purpose",
                        )
                            .into_response();
                    }
                    if let Some((ct, bytes)) = canned.lock().expect("canned").get(uri.path()) {
                        return (
                            [(axum::http::header::CONTENT_TYPE, ct.clone())],
                            bytes.clone(),
                        )
                            .into_response();
                    }
                    axum::Json(json!({"ok": true, "result": {}})).into_response()
                }
                let app = axum::Router::new().fallback(any).with_state(state);
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(listener, app).await;
            });
        });
        Self {
            addr,
            calls,
            canned,
            failing,
        }
    }

    /// Answer the next `n` requests with a 500 (they are still recorded).
    pub fn fail_next(&self, n: usize) {
        self.failing.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Answer requests to `path` with this body from now on.
    pub fn respond(&self, path: &str, content_type: &str, body: Vec<u8>) {
        self.canned
            .lock()
            .expect("canned")
            .insert(path.to_owned(), (content_type.to_owned(), body));
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    /// Wait until `n` calls have arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let calls = self.calls();
            if calls.len() >= n {
                return calls;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("expected {n} API calls, got {:?}", self.calls());
    }
}
