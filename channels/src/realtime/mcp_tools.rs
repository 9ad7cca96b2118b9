//! `session.tools` entries of type `mcp`: a remote MCP server the client asks the gateway to
//! call (`switchboard_pipeline::tools::client_mcp`), parsed from and rendered back to the
//! shape of OpenAI's Realtime API. Headers and the authorization token are never rendered.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use switchboard_pipeline::tools::client_mcp::{Approval, ClientMcpServer};
use switchboard_pipeline::tools::mcp::header_map;

use super::fields::{Invalid, invalid};

/// One `{"type": "mcp", ...}` entry at `p` (`session.tools[i]`).
pub fn parse_mcp_tool(t: &Value, p: &str) -> Result<ClientMcpServer, Invalid> {
    let field = |name: &str| format!("{p}.{name}");
    if t.get("connector_id").is_some_and(|c| !c.is_null()) {
        return Err(invalid(
            &field("connector_id"),
            "connectors are OpenAI's own services; give the server_url of an MCP server",
        ));
    }
    let label = required_str(t, "server_label", p)?;
    let label_ok = (1..=64).contains(&label.len())
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !label_ok {
        return Err(invalid(
            &field("server_label"),
            "server_label is 1 to 64 letters, digits, '_' or '-'",
        ));
    }
    let url = required_str(t, "server_url", p)?;
    let url_ok = url::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !url_ok {
        return Err(invalid(
            &field("server_url"),
            format!("server_url must be an http(s) URL, got {url:?}"),
        ));
    }
    let mut headers = BTreeMap::new();
    match t.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let Some(v) = v.as_str() else {
                    return Err(invalid(
                        &field("headers"),
                        format!("the value of header {k:?} must be a string"),
                    ));
                };
                headers.insert(k.clone(), v.to_owned());
            }
        }
        Some(_) => return Err(invalid(&field("headers"), "headers must be an object")),
    }
    match t.get("authorization") {
        None | Some(Value::Null) => {}
        Some(Value::String(token)) => {
            if headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("authorization"))
            {
                return Err(invalid(
                    &field("authorization"),
                    "give the token either as authorization or as an Authorization header",
                ));
            }
            headers.insert("Authorization".into(), format!("Bearer {token}"));
        }
        Some(_) => {
            return Err(invalid(
                &field("authorization"),
                "authorization must be a string",
            ));
        }
    }
    header_map(&headers).map_err(|e| invalid(&field("headers"), e))?;
    Ok(ClientMcpServer {
        label: label.to_owned(),
        url: url.to_owned(),
        headers,
        allowed_tools: parse_allowed(t.get("allowed_tools"), &field("allowed_tools"))?,
        approval: parse_approval(t.get("require_approval"), &field("require_approval"))?,
    })
}

fn required_str<'a>(t: &'a Value, name: &str, p: &str) -> Result<&'a str, Invalid> {
    t.get(name).and_then(Value::as_str).ok_or_else(|| {
        invalid(
            &format!("{p}.{name}"),
            format!("an mcp tool needs {name} (a string)"),
        )
    })
}

/// A list of tool names at `param`.
fn names(v: &Value, param: &str) -> Result<Vec<String>, Invalid> {
    let list = v
        .as_array()
        .ok_or_else(|| invalid(param, format!("{param} must be an array of tool names")))?;
    list.iter()
        .map(|n| {
            n.as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid(param, format!("{param} must hold strings")))
        })
        .collect()
}

/// `allowed_tools`: a list of names, or `{"tool_names": [...]}`.
fn parse_allowed(v: Option<&Value>, param: &str) -> Result<Option<Vec<String>>, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(list @ Value::Array(_)) => names(list, param).map(Some),
        Some(Value::Object(m)) => {
            if m.get("read_only").and_then(Value::as_bool) == Some(true) {
                return Err(invalid(
                    &format!("{param}.read_only"),
                    "read_only filtering is not supported; list the tools in tool_names",
                ));
            }
            match m.get("tool_names") {
                None | Some(Value::Null) => Ok(None),
                Some(list) => names(list, &format!("{param}.tool_names")).map(Some),
            }
        }
        Some(_) => Err(invalid(
            param,
            format!("{param} must be an array of tool names or {{\"tool_names\": [...]}}"),
        )),
    }
}

/// `require_approval`: `"always"`, `"never"`, or `{"always": {"tool_names": [...]},
/// "never": {"tool_names": [...]}}`.
fn parse_approval(v: Option<&Value>, param: &str) -> Result<Approval, Invalid> {
    let listed = |m: &Map<String, Value>, key: &str| -> Result<Vec<String>, Invalid> {
        match m.get(key).and_then(|k| k.get("tool_names")) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(list) => names(list, &format!("{param}.{key}.tool_names")),
        }
    };
    match v {
        None | Some(Value::Null) => Ok(Approval::Always),
        Some(Value::String(s)) if s == "always" => Ok(Approval::Always),
        Some(Value::String(s)) if s == "never" => Ok(Approval::Never),
        Some(Value::Object(m)) => Ok(Approval::Filter {
            always: listed(m, "always")?,
            never: listed(m, "never")?,
        }),
        Some(_) => Err(invalid(
            param,
            format!("{param} must be \"always\", \"never\" or an object of tool_names lists"),
        )),
    }
}

/// How `session.created|updated` shows a declared server.
pub fn mcp_tool_json(s: &ClientMcpServer) -> Value {
    let approval = match &s.approval {
        Approval::Always => json!("always"),
        Approval::Never => json!("never"),
        Approval::Filter { always, never } => json!({
            "always": {"tool_names": always},
            "never": {"tool_names": never},
        }),
    };
    json!({
        "type": "mcp",
        "server_label": s.label,
        "server_url": s.url,
        "allowed_tools": s.allowed_tools,
        "require_approval": approval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(v: Value) -> Result<ClientMcpServer, Invalid> {
        parse_mcp_tool(&v, "session.tools[0]")
    }

    #[test]
    fn a_full_declaration_and_its_rendering() {
        let s = parse(json!({"type": "mcp", "server_label": "shop", "server_url": "https://mcp.example.com/mcp",
            "authorization": "tok", "headers": {"X-Team": "blue"},
            "allowed_tools": {"tool_names": ["order_status"]},
            "require_approval": {"never": {"tool_names": ["order_status"]}}}))
        .unwrap();
        assert_eq!(s.label, "shop");
        assert_eq!(s.headers["Authorization"], "Bearer tok");
        assert_eq!(s.headers["X-Team"], "blue");
        assert_eq!(s.allowed_tools, Some(vec!["order_status".to_owned()]));
        assert!(!s.approval.needed("order_status") && s.approval.needed("refund"));
        let shown = mcp_tool_json(&s).to_string();
        assert!(
            !shown.contains("tok") && !shown.contains("blue"),
            "secrets stay out: {shown}"
        );
        assert!(
            shown.contains("\"never\":{\"tool_names\":[\"order_status\"]}"),
            "{shown}"
        );
    }

    #[test]
    fn defaults_follow_openai() {
        let s =
            parse(json!({"type": "mcp", "server_label": "a", "server_url": "http://h/x"})).unwrap();
        assert_eq!(
            s.approval,
            Approval::Always,
            "approval is asked unless waived"
        );
        assert_eq!(s.allowed_tools, None);
        let never = parse(
            json!({"server_label": "a", "server_url": "http://h", "require_approval": "never",
            "allowed_tools": ["x"]}),
        )
        .unwrap();
        assert_eq!(never.approval, Approval::Never);
        assert_eq!(never.allowed_tools, Some(vec!["x".to_owned()]));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({"server_url": "http://h"}), "server_label"),
            (
                json!({"server_label": "a b", "server_url": "http://h"}),
                "server_label",
            ),
            (json!({"server_label": "a"}), "server_url"),
            (
                json!({"server_label": "a", "server_url": "ftp://h"}),
                "server_url",
            ),
            (
                json!({"server_label": "a", "server_url": "http://h", "connector_id": "connector_gmail"}),
                "connector_id",
            ),
            (
                json!({"server_label": "a", "server_url": "http://h", "headers": {"Accept": "x"}}),
                "headers",
            ),
            (
                json!({"server_label": "a", "server_url": "http://h", "headers": {"X": 1}}),
                "headers",
            ),
            (
                json!({"server_label": "a", "server_url": "http://h", "headers": {"X": "a\nb"}}),
                "headers",
            ),
            (
                json!({"server_label": "a", "server_url": "http://h", "authorization": "t", "headers": {"authorization": "u"}}),
                "authorization",
            ),
            (
                json!({"server_label": "a", "server_url": "http://h", "allowed_tools": "x"}),
                "allowed_tools",
            ),
            (
                json!({"server_label": "a", "server_url": "http://h", "allowed_tools": {"read_only": true}}),
                "allowed_tools.read_only",
            ),
            (
                json!({"server_label": "a", "server_url": "http://h", "require_approval": "sometimes"}),
                "require_approval",
            ),
            (
                json!({"server_label": "a", "server_url": "http://h", "require_approval": {"never": {"tool_names": [1]}}}),
                "require_approval.never.tool_names",
            ),
        ];
        for (v, field) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert_eq!(
                e.param.as_deref(),
                Some(format!("session.tools[0].{field}").as_str()),
                "{v}"
            );
            assert!(
                !e.message.contains("a\nb"),
                "header values stay out of errors"
            );
        }
    }

    proptest! {
        #[test]
        fn any_json_is_parsed_or_refused_with_a_param(v in proptest_json()) {
            if let Err(e) = parse(v) {
                prop_assert!(e.param.is_some_and(|p| p.starts_with("session.tools[0]")));
            }
        }
    }

    fn proptest_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            "[a-z:/.]{0,12}".prop_map(Value::from),
            Just(json!("https://mcp.example.com")),
        ];
        let keys = prop::sample::select(vec![
            "server_label",
            "server_url",
            "headers",
            "authorization",
            "allowed_tools",
            "require_approval",
            "tool_names",
            "never",
            "always",
            "read_only",
            "connector_id",
        ]);
        leaf.prop_recursive(3, 24, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }
}
