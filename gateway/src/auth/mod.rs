//! Who is calling: every request resolves to a [`Principal`] — a tenant and what it may do —
//! or is refused in OpenAI's error shape.
//!
//! Credentials come as `Authorization: Bearer TOKEN` or, for browsers (which cannot set
//! headers on a WebSocket), the `openai-insecure-api-key.TOKEN` subprotocol:
//! - operator keys (`SWITCHBOARD_API_KEYS`): the default tenant, every scope, and the right
//!   to manage tenants and any tenant's keys;
//! - stored keys (`sb_...`, made with the admin API or `switchboard keys create`): their
//!   tenant and scopes, until revoked or expired;
//! - JWTs from an identity provider (`verifier.rs`): HS256 or RS256, the tenant from a claim,
//!   scopes from `scope`/`scp` (names we do not know are ignored).
//!
//! With no operator key, no JWT configuration and no usable stored key the gateway is in
//! open mode (it then
//! listens on loopback only): a request without a valid key is the default tenant with
//! every scope. Stored keys are looked up by id and cached for [`KEY_CACHE_TTL`], so a key
//! revoked on another instance stops working within that time (on this one at once).

pub mod jwt;
pub mod keys;
pub mod verifier;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use switchboard_channels::signing::constant_time_eq;

pub use keys::{Scope, Scopes};

use crate::limits::{Limiter, Rule, too_many};
use crate::server::openai_error;
use crate::store::keys::StoredKey;
use crate::store::{DEFAULT_TENANT, Store, now_ms};

const SUBPROTOCOL_KEY_PREFIX: &str = "openai-insecure-api-key.";

/// How long a looked-up key (or the absence of one) is trusted before asking the database.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
const MAX_CACHED_KEYS: usize = 10_000;

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    /// The stored key used, if one was.
    pub key_id: Option<String>,
    pub scopes: Scopes,
    /// An operator key: may manage tenants and every tenant's keys.
    pub operator: bool,
}

impl Principal {
    fn operator() -> Self {
        Self {
            tenant: DEFAULT_TENANT.into(),
            key_id: None,
            scopes: Scopes::all(),
            operator: true,
        }
    }

    /// Open mode: the default tenant, every scope, no operator rights.
    fn anonymous() -> Self {
        Self {
            tenant: DEFAULT_TENANT.into(),
            key_id: None,
            scopes: Scopes::all(),
            operator: false,
        }
    }
}

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Invalid,
    Expired,
    Revoked,
    /// Checking needed the database and it did not answer.
    Unavailable,
}

impl Refusal {
    pub fn response(&self) -> Response {
        let (status, kind, code, message) = match self {
            Refusal::Missing | Refusal::Invalid => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                "Incorrect or missing API key.",
            ),
            Refusal::Expired => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                "This API key has expired.",
            ),
            Refusal::Revoked => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                "This API key has been revoked.",
            ),
            Refusal::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "auth_unavailable",
                "API keys cannot be checked right now; try again shortly.",
            ),
        };
        openai_error(status, kind, code, message)
    }
}

/// The 403 for a principal that lacks the scope a route needs.
pub fn missing_scope(scope: Scope) -> Response {
    openai_error(
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        "insufficient_scope",
        &format!("This API key lacks the '{}' scope.", scope.name()),
    )
}

struct Cached {
    at: Instant,
    key: Option<StoredKey>,
}

pub struct Auth {
    operator_keys: Vec<String>,
    store: Store,
    /// Per-key and per-tenant limits, checked once a request is authenticated.
    limiter: Option<Arc<Limiter>>,
    jwt: Option<verifier::JwtVerifier>,
    keys: Mutex<HashMap<String, Cached>>,
    /// Whether a usable stored key exists, and when that was last asked.
    stored_keys: Mutex<Option<(Instant, bool)>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("operator_keys", &self.operator_keys.len())
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub fn new(operator_keys: Vec<String>, store: Store, limiter: Option<Arc<Limiter>>) -> Self {
        Self {
            operator_keys,
            store,
            limiter,
            jwt: None,
            keys: Mutex::new(HashMap::new()),
            stored_keys: Mutex::new(None),
        }
    }

    /// Accept JWTs too.
    pub fn with_jwt(mut self, verifier: Option<verifier::JwtVerifier>) -> Self {
        self.jwt = verifier;
        self
    }

    pub fn has_operator_keys(&self) -> bool {
        !self.operator_keys.is_empty()
    }

    /// Whether anonymous requests pass: no operator key and no usable stored key.
    pub async fn open(&self) -> bool {
        if self.has_operator_keys() || self.jwt.is_some() {
            return false;
        }
        let cached = *self.stored_keys.lock().unwrap_or_else(|p| p.into_inner());
        let any = match cached {
            Some((at, any)) if at.elapsed() < KEY_CACHE_TTL => any,
            // A database that does not answer keeps the last answer (closed if never known).
            _ => {
                let any = self
                    .store
                    .has_usable_keys()
                    .await
                    .unwrap_or_else(|_| cached.is_none_or(|(_, any)| any));
                *self.stored_keys.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), any));
                any
            }
        };
        !any
    }

    /// The principal a token stands for.
    pub async fn token(&self, token: &str) -> Result<Principal, Refusal> {
        if self
            .operator_keys
            .iter()
            .any(|k| constant_time_eq(k.as_bytes(), token.as_bytes()))
        {
            return Ok(Principal::operator());
        }
        if keys::looks_like_key(token) {
            let (id, hash) = keys::parse(token).ok_or(Refusal::Invalid)?;
            let key = self.stored(&id).await?.ok_or(Refusal::Invalid)?;
            if !constant_time_eq(key.secret_sha256.as_bytes(), hash.as_bytes()) {
                return Err(Refusal::Invalid);
            }
            if key.revoked_at.is_some() {
                return Err(Refusal::Revoked);
            }
            if !key.usable_at(now_ms()) {
                return Err(Refusal::Expired);
            }
            return Ok(Principal {
                tenant: key.tenant.clone(),
                key_id: Some(key.id.clone()),
                scopes: Scopes::parse(&key.scopes).unwrap_or_default(),
                operator: false,
            });
        }
        if let Some(verifier) = &self.jwt
            && jwt::looks_like_jwt(token)
        {
            return match verifier.verify(token).await {
                Ok(grant) => Ok(Principal {
                    tenant: grant.tenant.clone(),
                    // The key rate limit applies per user (`sub`); a token without one
                    // shares its tenant's bucket.
                    key_id: Some(match &grant.subject {
                        Some(sub) => format!("jwt:{}:{sub}", grant.tenant),
                        None => format!("jwt:{}", grant.tenant),
                    }),
                    scopes: Scopes::parse_known(&grant.scopes),
                    operator: false,
                }),
                Err(jwt::JwtError::Expired) => Err(Refusal::Expired),
                Err(e) => {
                    tracing::debug!(error = %e, "JWT refused");
                    Err(Refusal::Invalid)
                }
            };
        }
        if self.open().await {
            return Ok(Principal::anonymous());
        }
        Err(Refusal::Invalid)
    }

    /// The principal of a request (its bearer token, or anonymous in open mode).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Refusal> {
        match presented_key(headers) {
            Some(token) => self.token(&token).await,
            None if self.open().await => Ok(Principal::anonymous()),
            None => Err(Refusal::Missing),
        }
    }

    /// The principal, if it has `scope` and is within its key's and tenant's rate limits;
    /// else the 401/403/429 to answer.
    pub async fn require(&self, headers: &HeaderMap, scope: Scope) -> Result<Principal, Response> {
        let p = self.authenticate(headers).await.map_err(|r| r.response())?;
        if !p.scopes.contains(scope) {
            return Err(missing_scope(scope));
        }
        if let Some(limiter) = &self.limiter {
            let key = match (&p.key_id, p.operator) {
                (Some(id), _) => id.as_str(),
                (None, true) => "operator",
                (None, false) => "anonymous",
            };
            // Both at once: one round trip to Redis, not two.
            let (by_key, by_tenant) = futures_util::join!(
                limiter.check(Rule::Key, key),
                limiter.check(Rule::Tenant, &p.tenant)
            );
            for (rule, verdict) in [(Rule::Key, by_key), (Rule::Tenant, by_tenant)] {
                if let Some(v) = verdict
                    && !v.allowed
                {
                    return Err(too_many(rule, &v));
                }
            }
        }
        Ok(p)
    }

    /// Forget a key at once (it was revoked here).
    pub fn forget(&self, id: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        *self.stored_keys.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A stored key by id, from the cache when it is fresh.
    async fn stored(&self, id: &str) -> Result<Option<StoredKey>, Refusal> {
        if let Some(c) = self.keys.lock().unwrap_or_else(|p| p.into_inner()).get(id)
            && c.at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(c.key.clone());
        }
        let key = self.store.key_by_id(id).await.map_err(|e| {
            tracing::warn!(error = %e, "API key lookup failed");
            Refusal::Unavailable
        })?;
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CACHED_KEYS {
            map.clear();
        }
        map.insert(
            id.to_owned(),
            Cached {
                at: Instant::now(),
                key: key.clone(),
            },
        );
        Ok(key)
    }
}

/// The key a request presents, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(key) = v.strip_prefix("Bearer ")
    {
        return Some(key.trim().to_owned());
    }
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            p.trim()
                .strip_prefix(SUBPROTOCOL_KEY_PREFIX)
                .map(str::to_owned)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(dir.path())).await.unwrap();
        (dir, store)
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        h
    }

    async fn stored_key(store: &Store, tenant: &str, scopes: &str, expires: Option<i64>) -> String {
        let k = keys::generate();
        store.create_tenant(tenant, tenant).await.unwrap();
        store
            .insert_key(&StoredKey {
                id: k.id.clone(),
                tenant: tenant.into(),
                name: "test".into(),
                secret_sha256: k.secret_sha256.clone(),
                scopes: scopes.into(),
                created_at: now_ms(),
                expires_at: expires,
                revoked_at: None,
            })
            .await
            .unwrap();
        k.key
    }

    #[tokio::test]
    async fn operator_keys_and_subprotocol_keys() {
        let (_d, store) = store().await;
        let auth = Auth::new(vec!["k1".into()], store, None);
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).await,
            Err(Refusal::Missing)
        );
        assert!(auth.authenticate(&bearer("k1")).await.unwrap().operator);
        assert_eq!(
            auth.authenticate(&bearer("k2")).await,
            Err(Refusal::Invalid)
        );
        let mut h = HeaderMap::new();
        h.insert(
            SEC_WEBSOCKET_PROTOCOL,
            "realtime, openai-insecure-api-key.k1".parse().unwrap(),
        );
        assert!(auth.authenticate(&h).await.is_ok());
    }

    #[tokio::test]
    async fn stored_keys_carry_tenant_and_scopes_until_revoked_or_expired() {
        let (_d, store) = store().await;
        let auth = Auth::new(vec!["op".into()], store.clone(), None);
        let key = stored_key(&store, "acme", "chat", None).await;
        let p = auth.authenticate(&bearer(&key)).await.unwrap();
        assert_eq!((p.tenant.as_str(), p.operator), ("acme", false));
        assert!(auth.require(&bearer(&key), Scope::Chat).await.is_ok());
        let denied = auth.require(&bearer(&key), Scope::Admin).await.unwrap_err();
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);

        let (id, _) = keys::parse(&key).unwrap();
        assert!(!store.revoke_key("other", &id).await.unwrap());
        assert!(store.revoke_key("acme", &id).await.unwrap());
        auth.forget(&id);
        assert_eq!(
            auth.authenticate(&bearer(&key)).await,
            Err(Refusal::Revoked)
        );

        let old = stored_key(&store, "acme", "chat", Some(now_ms() - 1)).await;
        assert_eq!(
            auth.authenticate(&bearer(&old)).await,
            Err(Refusal::Expired)
        );
        // A well-formed key nobody made.
        let stranger = keys::generate().key;
        assert_eq!(
            auth.authenticate(&bearer(&stranger)).await,
            Err(Refusal::Invalid)
        );
    }

    #[tokio::test]
    async fn open_mode_ends_when_the_first_key_exists() {
        let (_d, store) = store().await;
        let auth = Auth::new(Vec::new(), store.clone(), None);
        let anon = auth.authenticate(&HeaderMap::new()).await.unwrap();
        assert_eq!((anon.tenant.as_str(), anon.operator), ("default", false));
        // Any non-key token is ignored in open mode (SDKs always send one).
        assert!(auth.authenticate(&bearer("sk-anything")).await.is_ok());
        let key = stored_key(&store, "acme", "chat", None).await;
        auth.forget("");
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).await,
            Err(Refusal::Missing)
        );
        assert_eq!(
            auth.authenticate(&bearer(&key)).await.unwrap().tenant,
            "acme"
        );
    }

    #[tokio::test]
    async fn jwts_resolve_to_their_tenant_and_known_scopes() {
        let (dir, store) = store().await;
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, jwt::tests::JWKS).unwrap();
        let verifier = verifier::JwtVerifier::new(&verifier::JwtArgs {
            jwt_hs256_secret: Some("shared".into()),
            jwt_jwks: Some(jwks.display().to_string()),
            jwt_tenant_claim: "org".into(),
            ..Default::default()
        })
        .unwrap();
        let auth = Auth::new(Vec::new(), store, None).with_jwt(verifier);
        assert!(!auth.open().await, "a JWT configuration closes open mode");
        let exp = now_ms() / 1000 + 600;
        let claims = serde_json::json!({"org": "acme", "scope": "openid chat", "exp": exp});
        for token in [
            jwt::tests::hs256(&claims, b"shared"),
            jwt::tests::rs256(&claims, "test-1"),
        ] {
            let p = auth.authenticate(&bearer(&token)).await.unwrap();
            assert_eq!(p.tenant, "acme");
            assert_eq!(p.scopes.names(), ["chat"]);
            assert_eq!(
                auth.require(&bearer(&token), Scope::Admin)
                    .await
                    .unwrap_err()
                    .status(),
                StatusCode::FORBIDDEN
            );
        }
        let expired = serde_json::json!({"org": "acme", "exp": 1});
        assert_eq!(
            auth.authenticate(&bearer(&jwt::tests::hs256(&expired, b"shared")))
                .await,
            Err(Refusal::Expired)
        );
        // Another secret, or a token naming a tenant the wrong way: refused.
        for token in [
            jwt::tests::hs256(&claims, b"guess"),
            jwt::tests::hs256(
                &serde_json::json!({"tenant": "acme", "exp": exp}),
                b"shared",
            ),
        ] {
            assert_eq!(
                auth.authenticate(&bearer(&token)).await,
                Err(Refusal::Invalid)
            );
        }
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).await,
            Err(Refusal::Missing)
        );
    }
}
