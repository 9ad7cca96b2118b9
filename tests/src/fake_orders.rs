//! A small order system for the tool tests: the stand-in for a shop's real API, run on its
//! own thread. Orders can be looked up and cancelled (once: `Idempotency-Key` replays get
//! the first answer); `/redirect?to=URL` answers 302 to anywhere (for the SSRF tests); its
//! own OpenAPI document is at `/openapi.json`. Every request is recorded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// One request the order system received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    /// Order id -> status.
    orders: Mutex<BTreeMap<String, String>>,
    /// Idempotency key -> the first answer.
    replies: Mutex<BTreeMap<String, Value>>,
}

pub struct FakeOrders {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

/// The OpenAPI 3 document the order system publishes.
pub const OPENAPI: &str = include_str!("fake_orders_openapi.json");

impl FakeOrders {
    pub fn start() -> Self {
        let shared = Arc::new(Shared::default());
        shared
            .orders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend([
                ("42".to_owned(), "shipped".to_owned()),
                ("7".to_owned(), "processing".to_owned()),
            ]);
        let app = Router::new()
            .route("/orders/{id}", get(lookup))
            .route("/orders/{id}/cancel", post(cancel))
            .route("/redirect", get(redirect))
            .route(
                "/openapi.json",
                get(|| async { ([("content-type", "application/json")], OPENAPI) }),
            )
            .with_state(Arc::clone(&shared));
        let addr = crate::serve_on_thread(app);
        Self { addr, shared }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn status_of(&self, id: &str) -> Option<String> {
        self.shared
            .orders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

fn record(shared: &Shared, method: &str, path: String, headers: &HeaderMap) {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    shared
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Seen {
            method: method.into(),
            path,
            idempotency_key: h("idempotency-key"),
            authorization: h("authorization"),
        });
}

async fn lookup(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    record(&s, "GET", format!("/orders/{id}"), &headers);
    let status = s
        .orders
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    match status {
        Some(status) => axum::Json(
            json!({"order_id": id, "status": status, "eta": "Friday", "items": ["blue kettle"]}),
        )
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no order {id}")})),
        )
            .into_response(),
    }
}

async fn cancel(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    record(&s, "POST", format!("/orders/{id}/cancel"), &headers);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(first) = key.as_ref().and_then(|k| {
        s.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(k)
            .cloned()
    }) {
        return axum::Json(first).into_response();
    }
    let mut orders = s.orders.lock().unwrap_or_else(|p| p.into_inner());
    let Some(status) = orders.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no order {id}")})),
        )
            .into_response();
    };
    *status = "cancelled".into();
    let reply = json!({"order_id": id, "status": "cancelled", "refund": "4 to 6 days"});
    if let Some(k) = key {
        s.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(k, reply.clone());
    }
    axum::Json(reply).into_response()
}

async fn redirect(
    State(s): State<Arc<Shared>>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let to = q.get("to").cloned().unwrap_or_default();
    record(&s, "GET", format!("/redirect?to={to}"), &headers);
    (StatusCode::FOUND, [("location", to)]).into_response()
}
