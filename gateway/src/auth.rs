//! API-key authentication: `Authorization: Bearer KEY`, or for browsers (which cannot set
//! headers on a WebSocket) the `openai-insecure-api-key.KEY` WebSocket subprotocol.

use axum::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::server::openai_error;

const SUBPROTOCOL_KEY_PREFIX: &str = "openai-insecure-api-key.";

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

/// Whether the request may pass. With no keys configured everything passes (the server
/// then listens on loopback only).
pub fn allowed(keys: &[String], headers: &HeaderMap) -> bool {
    if keys.is_empty() {
        return true;
    }
    presented_key(headers).is_some_and(|k| {
        keys.iter()
            .any(|key| constant_time_eq(key.as_bytes(), k.as_bytes()))
    })
}

/// `Ok` when the request may pass, else the 401 to answer (OpenAI's shape).
pub fn require(keys: &[String], headers: &HeaderMap) -> Result<(), Response> {
    if allowed(keys, headers) {
        return Ok(());
    }
    Err(openai_error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect or missing API key.",
    ))
}

/// Equality that takes the same time wherever the inputs differ (secrets, signatures).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_subprotocol_keys() {
        let keys = vec!["k1".to_owned()];
        let mut h = HeaderMap::new();
        assert!(!allowed(&keys, &h));
        h.insert(AUTHORIZATION, "Bearer k1".parse().unwrap());
        assert!(allowed(&keys, &h));
        h.insert(AUTHORIZATION, "Bearer k2".parse().unwrap());
        assert!(!allowed(&keys, &h));
        let mut h = HeaderMap::new();
        h.insert(
            SEC_WEBSOCKET_PROTOCOL,
            "realtime, openai-insecure-api-key.k1".parse().unwrap(),
        );
        assert!(allowed(&keys, &h));
        assert!(allowed(&[], &HeaderMap::new()));
    }
}
