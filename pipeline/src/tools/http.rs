//! HTTP tools: a tool call's arguments fill the request template, the request goes out
//! through the SSRF guard, and the answer (or a classified error) comes back trimmed for the
//! model. Retries with backoff happen only when repeating is safe: read tools, and writes
//! to services that honour `Idempotency-Key`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{HttpSpec, ToolDef};
use crate::outbound::{OutboundClient, OutboundError, OutboundRequest};

/// What a tool call produced, for the model, the audit log and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// The text the model sees: the service's answer, or a short error it can explain.
    pub content: String,
    /// `None` on success; else `timeout`, `client_error`, `server_error`, `network`,
    /// `blocked`, `invalid_arguments` or `not_configured`.
    pub error: Option<&'static str>,
    pub status: Option<u16>,
    pub attempts: u32,
    pub elapsed: Duration,
}

impl ToolOutput {
    fn failed(kind: &'static str, message: String, started: Instant) -> Self {
        Self {
            content: json!({"error": kind, "message": message}).to_string(),
            error: Some(kind),
            status: None,
            attempts: 0,
            elapsed: started.elapsed(),
        }
    }
}

/// Where the request goes and what it carries, before any I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedRequest {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Fill `{name}` placeholders with `fill(name)`; `used` collects the names.
fn fill(
    template: &str,
    used: &mut BTreeSet<String>,
    mut fill: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        let name = &after[..close];
        out.push_str(&fill(name)?);
        used.insert(name.to_owned());
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn argument<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    args.get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| format!("missing argument {name:?}"))
}

fn fill_body(
    template: &Value,
    args: &Map<String, Value>,
    used: &mut BTreeSet<String>,
) -> Result<Value, String> {
    Ok(match template {
        Value::String(s) => {
            let whole = s.strip_prefix('{').and_then(|r| r.strip_suffix('}'));
            match whole.filter(|n| !n.contains(['{', '}'])) {
                Some(name) => {
                    used.insert(name.to_owned());
                    argument(args, name)?.clone()
                }
                None => Value::String(fill(s, used, |n| argument(args, n).map(as_text))?),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| fill_body(v, args, used))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), fill_body(v, args, used)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// `${NAME}` from the environment; a missing variable is an error naming it (never its value).
fn fill_env(value: &str, env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(open) = rest.find("${") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find('}').ok_or("unclosed ${ in a header")?;
        let name = &after[..close];
        out.push_str(&env(name).ok_or_else(|| format!("environment variable {name} is not set"))?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Build the request for one call. `Err((kind, message))` when the arguments or the
/// environment do not fit the template.
pub fn render(
    spec: &HttpSpec,
    args: &Map<String, Value>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<RenderedRequest, (&'static str, String)> {
    let bad = |m: String| ("invalid_arguments", m);
    let method = reqwest::Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| ("not_configured", format!("method {:?}", spec.method)))?;
    let mut used = BTreeSet::new();
    let encoded = |n: &str| argument(args, n).map(|v| encode_component(&as_text(v)));
    let (path, query) = spec.url.split_once('?').unwrap_or((&spec.url, ""));
    let mut url = fill(path, &mut used, encoded).map_err(bad)?;
    // A query pair whose argument was not given is left out (optional parameters).
    let pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| fill(p, &mut used, encoded).ok())
        .collect();
    if !pairs.is_empty() {
        url.push('?');
        url.push_str(&pairs.join("&"));
    }
    let mut headers = Vec::new();
    for (k, v) in &spec.headers {
        headers.push((
            k.clone(),
            fill_env(v, env).map_err(|m| ("not_configured", m))?,
        ));
    }
    let body = match &spec.body {
        Some(t) => Some(fill_body(t, args, &mut used).map_err(bad)?),
        None if matches!(method.as_str(), "POST" | "PUT" | "PATCH") => {
            let rest: Map<String, Value> = args
                .iter()
                .filter(|(k, _)| !used.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Some(Value::Object(rest))
        }
        None => None,
    };
    Ok(RenderedRequest {
        method,
        url,
        headers,
        body,
    })
}

/// The answer as the model sees it: JSON compacted, cut at `max` characters.
pub fn trim_for_model(body: &[u8], max: usize, truncated: bool) -> String {
    let text = String::from_utf8_lossy(body);
    let compact = serde_json::from_str::<Value>(&text)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| text.trim().to_owned());
    if compact.chars().count() <= max && !truncated {
        return compact;
    }
    let cut: String = compact.chars().take(max).collect();
    format!("{cut}…[truncated]")
}

/// Run one call: render, send (retrying when safe), classify.
pub async fn call(
    client: &OutboundClient,
    tool: &ToolDef,
    args: &Map<String, Value>,
    idempotency_key: Option<&str>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> ToolOutput {
    let started = Instant::now();
    let Some(spec) = &tool.http else {
        return ToolOutput::failed("not_configured", "not an HTTP tool".into(), started);
    };
    let mut req = match render(spec, args, env) {
        Ok(r) => r,
        Err((kind, message)) => return ToolOutput::failed(kind, message, started),
    };
    if let Some(key) = idempotency_key {
        req.headers.push(("Idempotency-Key".into(), key.to_owned()));
    }
    if req.body.is_some() {
        req.headers
            .push(("Content-Type".into(), "application/json".into()));
    }
    let deadline = started + Duration::from_millis(tool.timeout_ms);
    let retry_safe = !tool.effect.needs_confirmation() || tool.idempotent;
    let max = spec.max_response_chars;
    let mut attempts = 0;
    let mut backoff = Duration::from_millis(100);
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = client
            .send(OutboundRequest {
                method: req.method.clone(),
                url: req.url.clone(),
                headers: req.headers.clone(),
                body: req.body.as_ref().map(|b| b.to_string().into_bytes()),
                timeout: remaining.max(Duration::from_millis(1)),
                // Enough to see the structure of a JSON answer before trimming it.
                max_bytes: (max * 4).max(4096),
            })
            .await;
        let (retryable, output) = classify(result, tool, max);
        let time_left = deadline.saturating_duration_since(Instant::now()) > backoff;
        if retryable && retry_safe && attempts < 3 && time_left {
            tracing::info!(tool = %tool.name, attempt = attempts, error = ?output.error, "retrying tool call");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            continue;
        }
        return ToolOutput {
            attempts,
            elapsed: started.elapsed(),
            ..output
        };
    }
}

/// `(worth retrying, output)`.
fn classify(
    result: Result<crate::outbound::OutboundResponse, OutboundError>,
    tool: &ToolDef,
    max: usize,
) -> (bool, ToolOutput) {
    let out = |content: String, error, status| ToolOutput {
        content,
        error,
        status,
        attempts: 0,
        elapsed: Duration::ZERO,
    };
    let fail = |kind: &'static str, message: String, status: Option<u16>| {
        let mut v = json!({"error": kind, "message": message});
        if let Some(s) = status {
            v["status"] = json!(s);
        }
        out(v.to_string(), Some(kind), status)
    };
    match result {
        Ok(r) if (200..300).contains(&r.status) => (
            false,
            out(
                trim_for_model(&r.body, max, r.truncated),
                None,
                Some(r.status),
            ),
        ),
        Ok(r) if r.status == 429 || r.status >= 500 => (
            true,
            fail(
                "server_error",
                format!(
                    "The service failed (HTTP {}); it may work again later.",
                    r.status
                ),
                Some(r.status),
            ),
        ),
        Ok(r) => (
            false,
            fail(
                "client_error",
                format!(
                    "The service refused the request (HTTP {}): {}",
                    r.status,
                    trim_for_model(&r.body, 300, r.truncated)
                ),
                Some(r.status),
            ),
        ),
        Err(OutboundError::Timeout(_)) => (
            false,
            fail(
                "timeout",
                format!("The service did not answer within {} ms.", tool.timeout_ms),
                None,
            ),
        ),
        Err(
            e @ (OutboundError::Blocked { .. }
            | OutboundError::InvalidUrl { .. }
            | OutboundError::TooManyRedirects(_)),
        ) => {
            tracing::warn!(tool = %tool.name, error = %e, "tool request refused by the outbound guard");
            (
                false,
                fail(
                    "blocked",
                    "This tool's destination is not allowed.".into(),
                    None,
                ),
            )
        }
        Err(e @ OutboundError::Network { .. }) => {
            tracing::warn!(tool = %tool.name, error = %e, "tool request failed");
            (
                true,
                fail("network", "Could not reach the service.".into(), None),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(method: &str, url: &str, body: Option<Value>) -> HttpSpec {
        HttpSpec {
            method: method.into(),
            url: url.into(),
            headers: [("Authorization".to_owned(), "Bearer ${TOKEN}".to_owned())].into(),
            body,
            max_response_chars: 100,
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_owned())
    }

    #[test]
    fn fills_url_headers_and_the_default_body() {
        let r = render(
            &spec("post", "http://h/orders/{id}/cancel?note={note}", None),
            &args(json!({"id": "A/1 2", "note": "x&y", "reason": "late", "n": 3})),
            &env,
        )
        .expect("renders");
        assert_eq!(r.method, reqwest::Method::POST);
        assert_eq!(r.url, "http://h/orders/A%2F1%202/cancel?note=x%26y");
        assert_eq!(
            r.headers,
            vec![("Authorization".into(), "Bearer s3cret".into())]
        );
        assert_eq!(r.body, Some(json!({"reason": "late", "n": 3})));
    }

    #[test]
    fn optional_query_arguments_are_left_out() {
        let s = spec(
            "GET",
            "http://h/orders?status={status}&limit={limit}&fixed=1",
            None,
        );
        let r = render(&s, &args(json!({"limit": 5})), &env).expect("renders");
        assert_eq!(r.url, "http://h/orders?limit=5&fixed=1");
        let r = render(&s, &args(json!({})), &env).expect("renders");
        assert_eq!(r.url, "http://h/orders?fixed=1");
    }

    #[test]
    fn body_templates_keep_json_types() {
        let r = render(
            &spec(
                "PUT",
                "http://h/x",
                Some(json!({"count": "{n}", "label": "order {id}", "tags": ["{id}"]})),
            ),
            &args(json!({"n": 3, "id": "A1"})),
            &env,
        )
        .expect("renders");
        assert_eq!(
            r.body,
            Some(json!({"count": 3, "label": "order A1", "tags": ["A1"]}))
        );
    }

    #[test]
    fn missing_arguments_and_secrets_are_named() {
        let e = render(&spec("GET", "http://h/{id}", None), &args(json!({})), &env);
        assert_eq!(
            e,
            Err(("invalid_arguments", "missing argument \"id\"".into()))
        );
        let mut s = spec("GET", "http://h/", None);
        s.headers.insert("X-Key".into(), "${NOPE}".into());
        let e = render(&s, &args(json!({})), &env).expect_err("missing env");
        assert_eq!(e.0, "not_configured");
        assert!(e.1.contains("NOPE"));
    }

    #[test]
    fn trims_for_the_model() {
        assert_eq!(trim_for_model(b"{ \"a\" : 1 }", 100, false), "{\"a\":1}");
        let long = "x".repeat(50);
        assert_eq!(
            trim_for_model(long.as_bytes(), 10, false),
            format!("{}…[truncated]", "x".repeat(10))
        );
        assert!(trim_for_model(b"short", 10, true).ends_with("[truncated]"));
    }

    proptest! {
        #[test]
        fn placeholders_never_escape_the_path(id in "\\PC{0,20}") {
            let r = render(&spec("GET", "http://h/orders/{id}", None), &args(json!({"id": id})), &env)
                .expect("renders");
            let path = r.url.strip_prefix("http://h/orders/").expect("prefix kept");
            prop_assert!(!path.contains(['/', '?', '#', ' ']));
        }

        #[test]
        fn rendering_never_panics(url in "\\PC{0,30}", body in "\\PC{0,30}") {
            let _ = render(&spec("GET", &url, Some(Value::String(body))), &args(json!({"a": 1})), &env);
        }
    }
}
