//! OpenAPI 3.x documents (JSON or YAML) into proposed tools: one per operation, with its
//! path, query and JSON body parameters merged into one argument schema, and a side-effect
//! level inferred from the method (GET/HEAD read; POST/PUT/PATCH write; DELETE dangerous),
//! raised to dangerous when the description speaks of deleting, cancelling or paying.
//!
//! Nothing here makes a tool live: proposals are reviewed and approved elsewhere. Documents
//! come from outside, so parsing is bounded (size, operations, `$ref` depth) and never
//! panics.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::confirm::is_tool_name;
use super::{HttpSpec, SideEffect, ToolDef};

/// Largest document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 2 * 1024 * 1024;
/// Operations turned into proposals at most.
pub const MAX_OPERATIONS: usize = 200;
const MAX_REF_DEPTH: usize = 8;
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head"];
/// Words that make a write dangerous.
const DANGEROUS_WORDS: &[&str] = &[
    "delete",
    "remove",
    "cancel",
    "refund",
    "charge",
    "pay",
    "payment",
    "transfer",
    "destroy",
    "terminate",
    "revoke",
    "purge",
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpenApiError {
    #[error("the document is larger than {} MB", MAX_DOCUMENT_BYTES / (1024 * 1024))]
    TooLarge,
    #[error("the document is neither JSON nor YAML: {0}")]
    Syntax(String),
    #[error("not an OpenAPI 3 document: {0}")]
    NotOpenApi(String),
    #[error("no base URL: the document has no absolute `servers` URL; give one")]
    NoBaseUrl,
}

/// One proposed tool and why it got its side-effect level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolProposal {
    pub tool: ToolDef,
    /// `GET /orders/{id}`.
    pub operation: String,
    pub effect_reason: String,
}

/// Parse a document and propose its tools. `base_url` overrides (or supplies) the server.
pub fn propose(document: &str, base_url: Option<&str>) -> Result<Vec<ToolProposal>, OpenApiError> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(OpenApiError::TooLarge);
    }
    let doc: Value = match serde_json::from_str(document) {
        Ok(v) => v,
        Err(json_err) => serde_yaml_ng::from_str(document).map_err(|yaml_err| {
            OpenApiError::Syntax(if document.trim_start().starts_with('{') {
                json_err.to_string()
            } else {
                yaml_err.to_string()
            })
        })?,
    };
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !version.starts_with("3.") {
        return Err(OpenApiError::NotOpenApi(
            "`openapi` must be 3.x (Swagger 2 is not supported)".into(),
        ));
    }
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| OpenApiError::NotOpenApi("no `paths` object".into()))?;
    let server = base_url
        .map(str::to_owned)
        .or_else(|| {
            doc.pointer("/servers/0/url")
                .and_then(Value::as_str)
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .map(str::to_owned)
        })
        .ok_or(OpenApiError::NoBaseUrl)?;
    let server = server.trim_end_matches('/');
    let mut out = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        let shared = item.get("parameters").cloned().unwrap_or(Value::Null);
        for method in METHODS {
            let Some(op) = item.get(*method).and_then(Value::as_object) else {
                continue;
            };
            if out.len() >= MAX_OPERATIONS {
                return Ok(out);
            }
            let Some(p) = operation(&doc, server, path, method, op, &shared) else {
                continue;
            };
            if names.insert(p.tool.name.clone()) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Follow a local `$ref` (`#/components/...`) up to a depth.
fn deref<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..MAX_REF_DEPTH {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with("#/") => match doc.pointer(&r[1..]) {
                Some(target) => v = target,
                None => return &Value::Null,
            },
            Some(_) => return &Value::Null,
            None => return v,
        }
    }
    &Value::Null
}

/// A schema with its `$ref`s resolved (depth-limited), for the model.
fn resolve_schema(doc: &Value, v: &Value, depth: usize) -> Value {
    if depth > MAX_REF_DEPTH {
        return json!({});
    }
    match deref(doc, v) {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with("x-"))
                .map(|(k, v)| (k.clone(), resolve_schema(doc, v, depth + 1)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| resolve_schema(doc, v, depth + 1))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `getOrder`, or `get_orders_order_id` when there is no operationId; `None` if unusable.
fn tool_name(op: &Map<String, Value>, method: &str, path: &str) -> Option<String> {
    let raw = op
        .get("operationId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{method}_{path}"));
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    let name: String = name.trim_matches('_').chars().take(64).collect();
    is_tool_name(&name).then_some(name)
}

fn operation(
    doc: &Value,
    server: &str,
    path: &str,
    method: &str,
    op: &Map<String, Value>,
    shared: &Value,
) -> Option<ToolProposal> {
    let name = tool_name(op, method, path)?;
    let text = |k: &str| {
        op.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let description = [text("summary"), text("description")]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(". ");
    let description = if description.is_empty() {
        format!("{} {path}", method.to_uppercase())
    } else {
        description
    };
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut query = Vec::new();
    let params = shared.as_array().into_iter().flatten().chain(
        op.get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    for p in params {
        let p = deref(doc, p);
        let (Some(pname), Some(location)) = (
            p.get("name").and_then(Value::as_str),
            p.get("in").and_then(Value::as_str),
        ) else {
            continue;
        };
        if !matches!(location, "path" | "query")
            || !pname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            continue;
        }
        let mut schema = p
            .get("schema")
            .map_or_else(|| json!({"type": "string"}), |s| resolve_schema(doc, s, 0));
        if let (Some(d), Value::Object(m)) =
            (p.get("description").and_then(Value::as_str), &mut schema)
        {
            m.insert("description".into(), json!(d));
        }
        properties.insert(pname.to_owned(), schema);
        if location == "path" || p.get("required").and_then(Value::as_bool) == Some(true) {
            required.push(json!(pname));
        }
        if location == "query" {
            query.push(format!("{pname}={{{pname}}}"));
        }
    }
    let body = op.get("requestBody").map(|b| deref(doc, b));
    if let Some(schema) = body.and_then(|b| b.pointer("/content/application~1json/schema")) {
        let schema = resolve_schema(doc, schema, 0);
        for (k, v) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            properties.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !required.contains(r) {
                required.push(r.clone());
            }
        }
    }
    let mut url = format!("{server}{path}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    let (effect, effect_reason) = effect_of(method, &description);
    let mut parameters = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        parameters["required"] = Value::Array(required);
    }
    let tool = ToolDef {
        name,
        description,
        parameters,
        effect,
        timeout_ms: super::DEFAULT_TIMEOUT_MS,
        confirm: None,
        idempotent: false,
        http: Some(HttpSpec {
            method: method.to_uppercase(),
            url,
            headers: Default::default(),
            body: None,
            max_response_chars: super::DEFAULT_MAX_RESPONSE_CHARS,
        }),
        mcp: None,
        builtin: None,
    };
    tool.validate().ok()?;
    Some(ToolProposal {
        operation: format!("{} {path}", method.to_uppercase()),
        tool,
        effect_reason,
    })
}

fn effect_of(method: &str, description: &str) -> (SideEffect, String) {
    let m = method.to_uppercase();
    match method {
        "get" | "head" => (SideEffect::Read, format!("{m} reads")),
        "delete" => (SideEffect::Dangerous, "DELETE removes data".into()),
        _ => {
            let lower = description.to_lowercase();
            let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
            match DANGEROUS_WORDS
                .iter()
                .find(|w| words.iter().any(|x| x.starts_with(*w)))
            {
                Some(w) => (
                    SideEffect::Dangerous,
                    format!("{m} changes data, and the description says \"{w}\""),
                ),
                None => (SideEffect::Write, format!("{m} changes data")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const YAML: &str = r##"
openapi: 3.0.3
info: {title: Shop, version: "1"}
servers: [{url: "https://shop.example.com/api/"}]
components:
  parameters:
    OrderId: {name: order_id, in: path, required: true, schema: {type: string}}
  schemas:
    Reason: {type: object, properties: {reason: {type: string}}, required: [reason]}
paths:
  /orders/{order_id}:
    parameters: [{$ref: "#/components/parameters/OrderId"}]
    get:
      operationId: getOrder
      summary: Look up an order
      parameters: [{name: expand, in: query, schema: {type: boolean}}]
    delete:
      summary: Delete an order
  /orders/{order_id}/cancel:
    post:
      operationId: cancel.order
      summary: Cancel an order
      parameters: [{$ref: "#/components/parameters/OrderId"}]
      requestBody: {content: {application/json: {schema: {$ref: "#/components/schemas/Reason"}}}}
  /coupons:
    post:
      operationId: issueCoupon
      summary: Issue a coupon
"##;

    #[test]
    fn proposes_one_tool_per_operation() {
        let p = propose(YAML, None).expect("proposes");
        let by: std::collections::BTreeMap<_, _> =
            p.iter().map(|p| (p.tool.name.as_str(), p)).collect();
        assert_eq!(by.len(), 4, "{:?}", by.keys());
        let get = &by["getOrder"].tool;
        assert_eq!(get.effect, SideEffect::Read);
        let http = get.http.as_ref().expect("an HTTP tool");
        assert_eq!(http.method, "GET");
        assert_eq!(
            http.url,
            "https://shop.example.com/api/orders/{order_id}?expand={expand}"
        );
        assert_eq!(get.parameters["required"], json!(["order_id"]));
        assert_eq!(get.parameters["properties"]["expand"]["type"], "boolean");
        let cancel = &by["cancel_order"].tool;
        assert_eq!(
            cancel.effect,
            SideEffect::Dangerous,
            "{}",
            by["cancel_order"].effect_reason
        );
        assert_eq!(cancel.parameters["required"], json!(["order_id", "reason"]));
        assert_eq!(by["issueCoupon"].tool.effect, SideEffect::Write);
        assert_eq!(
            by["delete_orders_order_id"].tool.effect,
            SideEffect::Dangerous
        );
        assert_eq!(
            by["delete_orders_order_id"].operation,
            "DELETE /orders/{order_id}"
        );
    }

    #[test]
    fn json_base_url_and_refusals() {
        let doc = r#"{"openapi": "3.1.0", "paths": {"/x": {"get": {"operationId": "x"}}}}"#;
        assert_eq!(propose(doc, None), Err(OpenApiError::NoBaseUrl));
        let p = propose(doc, Some("http://127.0.0.1:9/")).expect("with a base");
        assert_eq!(p[0].tool.target(), "GET http://127.0.0.1:9/x");
        assert!(matches!(
            propose(r#"{"swagger": "2.0"}"#, None),
            Err(OpenApiError::NotOpenApi(_))
        ));
        assert!(matches!(propose("{", None), Err(OpenApiError::Syntax(_))));
        assert!(matches!(
            propose("a: [", None),
            Err(OpenApiError::Syntax(_))
        ));
    }

    #[test]
    fn reference_cycles_end() {
        let doc = r##"{"openapi": "3.0.0", "servers": [{"url": "http://h"}],
            "components": {"schemas": {"A": {"$ref": "#/components/schemas/A"}}},
            "paths": {"/a": {"post": {"operationId": "a", "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}}}}"##;
        let p = propose(doc, None).expect("proposes");
        assert_eq!(p.len(), 1);
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = propose(&text, Some("http://h"));
        }

        #[test]
        fn every_proposal_is_a_valid_tool(path in "/[a-z{}_/]{0,20}", method in prop::sample::select(METHODS), id in "[ -~]{0,30}") {
            let doc = json!({"openapi": "3.0.0", "servers": [{"url": "http://h"}],
                "paths": {path.clone(): {method: {"operationId": id}}}});
            for p in propose(&doc.to_string(), None).expect("a well-formed document") {
                prop_assert!(p.tool.validate().is_ok());
                prop_assert_eq!(p.tool.effect.needs_confirmation(), method != "get" && method != "head");
            }
        }
    }
}
