//! Ephemeral client secrets (`POST /v1/realtime/client_secrets`): a server holding an API
//! key mints a short-lived `ek_` secret that a browser presents once, for one WebRTC call, so
//! API keys never reach the browser. A secret carries the session configuration (and, our
//! extension, the end user) the call will start with; it is refused once expired or used.
//!
//! Secrets live in this process's memory and, with Redis (`SWITCHBOARD_REDIS_URL`), also in
//! Redis under the SHA-256 of the secret, so the call may reach any instance. With Redis,
//! redemption goes through Redis first (one script marks the secret used atomically, so it
//! works exactly once across instances); a secret Redis does not know (minted while it was
//! away) or a Redis that does not answer falls back to this instance's memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_channels::chat_request::is_identifier;
use switchboard_channels::realtime::RealtimeSession;
use switchboard_channels::realtime::transcription::SttModel;
use switchboard_pipeline::SessionConfig;

use crate::auth::Scope;
use crate::server::{AppState, invalid_request, openai_error};

pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
const MIN_TTL_SECS: u64 = 10;
const MAX_TTL_SECS: u64 = 7_200;
/// Secrets held at most (used and unused, until they expire).
const MAX_SECRETS: usize = 100_000;

/// What a redeemed secret grants its call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// The tenant of the key that minted it: the call is that tenant's.
    pub tenant: String,
    /// A `session` object to apply at the start of the call (already validated).
    pub session: Option<Value>,
    pub user: Option<String>,
}

#[derive(Debug)]
struct Entry {
    grant: Grant,
    expires: SystemTime,
    used: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Expired,
    Used,
}

impl Refusal {
    pub fn response(self) -> Response {
        let (code, message) = match self {
            Self::Unknown => ("invalid_api_key", "Unknown client secret."),
            Self::Expired => (
                "client_secret_expired",
                "This client secret has expired; mint a new one.",
            ),
            Self::Used => (
                "client_secret_used",
                "This client secret was already used for a call; mint one per call.",
            ),
        };
        openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            code,
            message,
        )
    }
}

/// Redeem a shared secret once: KEYS = the secret's record and its `used` marker; ARGV[1] =
/// how long to remember the use (ms). Returns {0, ''} unknown, {2, ''} used, {1, record}.
static REDEEM: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(REDEEM_LUA));
const REDEEM_LUA: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return {0, ''} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {1, v} end
return {2, ''}
";

/// The secrets this instance has minted (and, with Redis, every instance's).
#[derive(Debug, Clone, Default)]
pub struct ClientSecrets {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
    redis: Option<Arc<crate::redis_link::RedisLink>>,
}

/// A secret as stored in Redis.
#[derive(serde::Serialize, serde::Deserialize)]
struct Shared {
    grant: Grant,
    expires_at: u64,
}

fn redis_key(value: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sb:secret:{hex}")
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl ClientSecrets {
    /// Secrets shared through Redis too.
    pub fn shared(redis: Option<Arc<crate::redis_link::RedisLink>>) -> Self {
        Self {
            inner: Default::default(),
            redis,
        }
    }

    /// A new secret valid for `ttl`, written to Redis (when there is one) before it is
    /// handed out; `(value, expires_at)`.
    pub async fn mint(&self, grant: Grant, ttl: Duration) -> (String, u64) {
        let (value, expires_at) = self.mint_local(grant.clone(), ttl);
        if let Some(link) = &self.redis
            && let Some(mut conn) = link.connection().await
        {
            let record = serde_json::to_string(&Shared { grant, expires_at }).unwrap_or_default();
            // Kept past its expiry for a while, so a late use says "expired", not "unknown".
            let keep_ms = (ttl + Duration::from_secs(3600)).as_millis() as u64;
            let set: redis::RedisResult<()> = redis::cmd("SET")
                .arg(redis_key(&value))
                .arg(record)
                .arg("PX")
                .arg(keep_ms)
                .query_async(&mut conn)
                .await;
            match set {
                Ok(()) => link.succeeded(),
                Err(e) => link.failed("client_secret_mint", &e),
            }
        }
        (value, expires_at)
    }

    /// Use a secret for one call: through Redis when it knows the secret, else locally.
    pub async fn redeem(&self, value: &str) -> Result<Grant, Refusal> {
        if let Some(link) = &self.redis
            && let Some(mut conn) = link.connection().await
        {
            let key = redis_key(value);
            let answer: redis::RedisResult<(i64, String)> = REDEEM
                .key(&key)
                .key(format!("{key}:used"))
                .arg(3_600_000 + 1000 * MAX_TTL_SECS)
                .invoke_async(&mut conn)
                .await;
            match answer {
                Ok((1, record)) => {
                    link.succeeded();
                    // Also spent here, should this instance be asked while Redis is away.
                    if let Some(e) = self
                        .inner
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_mut(value)
                    {
                        e.used = true;
                    }
                    let shared: Shared =
                        serde_json::from_str(&record).map_err(|_| Refusal::Unknown)?;
                    if shared.expires_at <= unix(SystemTime::now()) {
                        return Err(Refusal::Expired);
                    }
                    return Ok(shared.grant);
                }
                Ok((2, _)) => {
                    link.succeeded();
                    return Err(Refusal::Used);
                }
                Ok(_) => link.succeeded(),
                Err(e) => link.failed("client_secret_redeem", &e),
            }
        }
        self.redeem_local(value)
    }

    fn mint_local(&self, grant: Grant, ttl: Duration) -> (String, u64) {
        let now = SystemTime::now();
        let value = format!("ek_{}", random_token());
        let expires = now + ttl;
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, e| e.expires > now);
        if map.len() >= MAX_SECRETS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            value.clone(),
            Entry {
                grant,
                expires,
                used: false,
            },
        );
        (value, unix(expires))
    }

    fn redeem_local(&self, value: &str) -> Result<Grant, Refusal> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_mut(value).ok_or(Refusal::Unknown)?;
        if entry.expires <= SystemTime::now() {
            return Err(Refusal::Expired);
        }
        if entry.used {
            return Err(Refusal::Used);
        }
        entry.used = true;
        Ok(entry.grant.clone())
    }
}

/// Whether a presented bearer token is a client secret rather than an API key.
pub fn is_client_secret(token: &str) -> bool {
    token.starts_with("ek_")
}

/// `POST /v1/realtime/client_secrets` (API key required).
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Realtime).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return invalid_request("The body must be a JSON object.", "body", "invalid_json");
            }
        }
    };
    match mint_from_body(&state.secrets, &principal.tenant, &body, state.stt_model()).await {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => e,
    }
}

/// Validate a request body and mint: the response body, or the 400 to answer.
pub async fn mint_from_body(
    secrets: &ClientSecrets,
    tenant: &str,
    body: &Value,
    stt: Option<SttModel<'_>>,
) -> Result<Value, Response> {
    let ttl = match body.pointer("/expires_after/seconds") {
        None => DEFAULT_TTL,
        Some(v) => match v.as_u64() {
            Some(s) if (MIN_TTL_SECS..=MAX_TTL_SECS).contains(&s) => Duration::from_secs(s),
            _ => {
                return Err(invalid_request(
                    format!(
                        "expires_after.seconds must be an integer from {MIN_TTL_SECS} to {MAX_TTL_SECS}."
                    ),
                    "expires_after.seconds",
                    "invalid_value",
                ));
            }
        },
    };
    if let Some(anchor) = body.pointer("/expires_after/anchor")
        && anchor != "created_at"
    {
        return Err(invalid_request(
            "expires_after.anchor must be 'created_at'.",
            "expires_after.anchor",
            "invalid_value",
        ));
    }
    let session = body.get("session").cloned();
    // Check the session now, so a bad one is the minting server's 400, not the browser's.
    let mut preview = RealtimeSession::new(
        "sess_preview".into(),
        "switchboard-realtime".into(),
        SessionConfig::default(),
    );
    if let Some(stt) = stt {
        preview = preview.transcribed_by(stt.name, stt.multilingual);
    }
    let preview = match &session {
        Some(s) => preview.apply(s).map_err(|e| {
            invalid_request(e.message, e.param.as_deref().unwrap_or("session"), e.code)
        })?,
        None => preview,
    };
    let user = match body.get("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) if is_identifier(u.trim()) => Some(u.trim().to_owned()),
        Some(_) => {
            return Err(invalid_request(
                "user must be 1 to 200 characters with no control characters.",
                "user",
                "invalid_value",
            ));
        }
    };
    let (value, expires_at) = secrets
        .mint(
            Grant {
                tenant: tenant.to_owned(),
                session,
                user,
            },
            ttl,
        )
        .await;
    let mut shown = preview.to_json();
    if let Some(m) = shown.as_object_mut() {
        m.remove("id");
    }
    Ok(json!({"value": value, "expires_at": expires_at, "session": shown}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(user: Option<&str>) -> Grant {
        Grant {
            tenant: "t".into(),
            session: None,
            user: user.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn a_secret_works_once_then_is_refused() {
        let s = ClientSecrets::default();
        let (v, _) = s.mint(grant(Some("u1")), DEFAULT_TTL).await;
        assert!(is_client_secret(&v) && v.len() == 51);
        assert_eq!(s.redeem(&v).await.unwrap().user.as_deref(), Some("u1"));
        assert_eq!(s.redeem(&v).await, Err(Refusal::Used));
        assert_eq!(s.redeem("ek_nope").await, Err(Refusal::Unknown));
    }

    #[tokio::test]
    async fn an_expired_secret_is_refused() {
        let s = ClientSecrets::default();
        let (v, _) = s.mint(grant(None), Duration::ZERO).await;
        assert_eq!(s.redeem(&v).await, Err(Refusal::Expired));
    }

    /// Two instances sharing the machine's Redis (as in CI): a secret minted on one is
    /// redeemed on the other, once; with Redis unreachable each instance still serves its own.
    #[tokio::test]
    async fn secrets_are_shared_through_redis_and_used_once() {
        let registry = prometheus::Registry::new();
        let metrics = crate::redis_link::RedisMetrics::register(&registry).unwrap();
        let link = |url: &str| {
            Some(Arc::new(
                crate::redis_link::RedisLink::new(url, metrics.clone()).unwrap(),
            ))
        };
        let a = ClientSecrets::shared(link("redis://127.0.0.1:6379"));
        let b = ClientSecrets::shared(link("redis://127.0.0.1:6379"));
        let (v, _) = a.mint(grant(Some("u2")), DEFAULT_TTL).await;
        assert_eq!(b.redeem(&v).await.unwrap().user.as_deref(), Some("u2"));
        assert_eq!(a.redeem(&v).await, Err(Refusal::Used));
        assert_eq!(b.redeem(&v).await, Err(Refusal::Used));
        let (old, _) = a.mint(grant(None), Duration::ZERO).await;
        assert_eq!(b.redeem(&old).await, Err(Refusal::Expired));
        assert_eq!(b.redeem("ek_unknown").await, Err(Refusal::Unknown));

        let down = ClientSecrets::shared(link("redis://127.0.0.1:1"));
        let (v, _) = down.mint(grant(None), DEFAULT_TTL).await;
        assert!(down.redeem(&v).await.is_ok());
        assert_eq!(down.redeem(&v).await, Err(Refusal::Used));
    }

    #[tokio::test]
    async fn bodies_are_checked_before_minting() {
        let s = ClientSecrets::default();
        let ok = mint_from_body(
            &s,
            "t",
            &json!({"expires_after": {"anchor": "created_at", "seconds": 60},
                "session": {"type": "realtime", "instructions": "Be brief."}}),
            None,
        )
        .await
        .unwrap();
        assert_eq!(ok["session"]["instructions"], "Be brief.");
        for bad in [
            json!({"expires_after": {"seconds": 5}}),
            json!({"expires_after": {"anchor": "now", "seconds": 60}}),
            json!({"session": {"instructions": 7}}),
            json!({"user": "bell\u{7}"}),
            json!({"user": 42}),
        ] {
            let r = mint_from_body(&s, "t", &bad, None).await.unwrap_err();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
