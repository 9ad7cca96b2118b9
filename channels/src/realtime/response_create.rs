//! `response.create`'s `response`: what one response may set for itself (instructions,
//! modalities, tools, sampling, metadata) and what it answers (`conversation`, `input`).

use serde_json::Value;
use switchboard_pipeline::call::{CallError, ResponseInput, ResponseOptions};
use switchboard_pipeline::conversation::Item;

use super::session::{parse_max_tokens, parse_realtime_tools, parse_tool_choice};

pub(super) fn parse_response(v: Option<&Value>) -> Result<ResponseOptions, CallError> {
    let mut opts = ResponseOptions::default();
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(opts);
    };
    if !v.is_object() {
        return Err(
            CallError::invalid("invalid_type", "'response' must be an object")
                .with_param("response"),
        );
    }
    if let Some(x) = v.get("instructions") {
        let s = x.as_str().ok_or_else(|| {
            CallError::invalid("invalid_type", "'response.instructions' must be a string")
                .with_param("response.instructions")
        })?;
        opts.instructions = Some(s.to_owned());
    }
    if let Some(x) = v.get("output_modalities").or_else(|| v.get("modalities")) {
        let list = x.as_array().ok_or_else(|| {
            CallError::invalid(
                "invalid_type",
                "'response.output_modalities' must be an array",
            )
            .with_param("response.output_modalities")
        })?;
        opts.audio_output = Some(list.iter().any(|m| m == "audio"));
    }
    if let Some(x) = v.get("tools") {
        // Functions for this response instead of the session's, and MCP servers beside its.
        let (functions, servers) = parse_realtime_tools(x, "response.tools")?;
        opts.tools = Some(functions);
        opts.mcp = servers;
    }
    if let Some(x) = v.get("tool_choice") {
        opts.tool_choice = Some(parse_tool_choice(x, "response.tool_choice")?);
    }
    if let Some(x) = v.get("temperature") {
        let t = x
            .as_f64()
            .filter(|t| (0.0..=2.0).contains(t))
            .ok_or_else(|| {
                CallError::invalid(
                    "invalid_value",
                    "'response.temperature' must be between 0 and 2",
                )
                .with_param("response.temperature")
            })?;
        opts.temperature = Some(t as f32);
    }
    if let Some(x) = v
        .get("max_output_tokens")
        .or_else(|| v.get("max_response_output_tokens"))
    {
        opts.max_output_tokens = parse_max_tokens(x, "response.max_output_tokens")?;
    }
    if let Some(x) = v.get("metadata").filter(|x| !x.is_null()) {
        opts.metadata = parse_metadata(x)?;
    }
    match v.get("conversation") {
        None | Some(Value::Null) => {}
        Some(c) if c == "auto" => {}
        Some(c) if c == "none" => opts.out_of_band = true,
        Some(_) => {
            return Err(CallError::invalid(
                "invalid_value",
                "'response.conversation' is 'auto' (the default conversation) or 'none' (out of band).",
            )
            .with_param("response.conversation"));
        }
    }
    if let Some(x) = v.get("input").filter(|x| !x.is_null()) {
        opts.input = Some(parse_input(x)?);
    }
    Ok(opts)
}

/// `response.metadata`: at most 16 pairs, keys up to 64 characters, string values up to 512
/// (OpenAI's limits).
fn parse_metadata(x: &Value) -> Result<Vec<(String, String)>, CallError> {
    let refuse = |message: String| {
        Err(CallError::invalid("invalid_value", message).with_param("response.metadata"))
    };
    let Value::Object(map) = x else {
        return refuse("'response.metadata' must be an object of strings".into());
    };
    if map.len() > 16 {
        return refuse(format!(
            "'response.metadata' has {} keys; at most 16",
            map.len()
        ));
    }
    let mut pairs = Vec::new();
    for (key, value) in map {
        let Some(value) = value.as_str() else {
            return refuse(format!("'response.metadata.{key}' must be a string"));
        };
        if key.chars().count() > 64 || value.chars().count() > 512 {
            return refuse(format!(
                "'response.metadata.{key}': keys are at most 64 characters, values 512"
            ));
        }
        pairs.push((key.clone(), value.to_owned()));
    }
    Ok(pairs)
}

/// `response.input`: the response's own context, items of its own and the conversation's by
/// reference (`item_reference`), in order.
fn parse_input(x: &Value) -> Result<Vec<ResponseInput>, CallError> {
    let refuse = |param: String, message: String| {
        CallError::invalid("invalid_value", message).with_param(&param)
    };
    let list = x.as_array().ok_or_else(|| {
        refuse(
            "response.input".into(),
            "'response.input' must be an array of items".into(),
        )
    })?;
    let entry = |(i, item): (usize, &Value)| {
        let param = format!("response.input[{i}]");
        if item.get("type").and_then(Value::as_str) == Some("item_reference") {
            return match item.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => Ok(ResponseInput::Reference(id.to_owned())),
                _ => Err(refuse(
                    param,
                    "An 'item_reference' needs the 'id' of a conversation item.".into(),
                )),
            };
        }
        serde_json::from_value::<Item>(item.clone())
            .map(ResponseInput::Item)
            .map_err(|e| refuse(param, format!("Invalid item: {e}")))
    };
    list.iter().enumerate().map(entry).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::client_events::{ClientEvent, parse};
    use proptest::prelude::*;

    #[test]
    fn response_tools_replace_the_sessions_functions() {
        let p = parse(r#"{"type":"response.create","response":{"tools":[{"type":"function","name":"weather"}]}}"#)
            .unwrap();
        let ClientEvent::ResponseCreate(opts) = p.event else {
            panic!("{:?}", p.event);
        };
        let names: Vec<_> = opts
            .tools
            .iter()
            .flatten()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["weather"]);
        let none = parse(r#"{"type":"response.create","response":{}}"#).unwrap();
        assert!(matches!(
            none.event,
            ClientEvent::ResponseCreate(ResponseOptions { tools: None, .. })
        ));
        let mcp = r#"{"type":"response.create","response":{"tools":[{"type":"mcp","server_label":"a","server_url":"http://h"}]}}"#;
        let ClientEvent::ResponseCreate(opts) = parse(mcp).unwrap().event else {
            panic!("a response.create");
        };
        assert_eq!(opts.tools, Some(Vec::new()), "no functions");
        assert_eq!(opts.mcp.len(), 1);
        assert_eq!(opts.mcp[0].label, "a");
        let bad = r#"{"type":"response.create","response":{"tools":[{"type":"mcp","server_label":"a"}]}}"#;
        let e = parse(bad).unwrap_err();
        assert!(
            e.param
                .as_deref()
                .is_some_and(|p| p.starts_with("response.tools[0]")),
            "{e:?}"
        );
    }

    #[test]
    fn out_of_band_responses_and_their_own_input_are_read() {
        let p = r#"{"type":"response.create","response":{"conversation":"none","input":[
            {"type":"item_reference","id":"item_1"},
            {"type":"message","role":"user","content":[{"type":"input_text","text":"Mood?"}]}]}}"#;
        let ClientEvent::ResponseCreate(opts) = parse(p).unwrap().event else {
            panic!("a response.create");
        };
        assert!(opts.out_of_band);
        let input = opts.input.unwrap();
        assert_eq!(input[0], ResponseInput::Reference("item_1".into()));
        assert!(matches!(&input[1], ResponseInput::Item(i) if i.id.is_empty()));
        let auto = r#"{"type":"response.create","response":{"conversation":"auto","input":null}}"#;
        let ClientEvent::ResponseCreate(opts) = parse(auto).unwrap().event else {
            panic!("a response.create");
        };
        assert!(!opts.out_of_band && opts.input.is_none());
        let empty = r#"{"type":"response.create","response":{"input":[]}}"#;
        let ClientEvent::ResponseCreate(opts) = parse(empty).unwrap().event else {
            panic!("a response.create");
        };
        assert_eq!(
            opts.input,
            Some(Vec::new()),
            "an empty context, not the conversation"
        );
        for (bad, param) in [
            (r#"{"conversation":"conv_1"}"#, "response.conversation"),
            (r#"{"conversation":3}"#, "response.conversation"),
            (r#"{"input":{"type":"item_reference"}}"#, "response.input"),
            (
                r#"{"input":[{"type":"item_reference"}]}"#,
                "response.input[0]",
            ),
            (
                r#"{"input":[{"type":"message","role":"user","content":[]},{"type":"bogus"}]}"#,
                "response.input[1]",
            ),
        ] {
            let event = format!(r#"{{"type":"response.create","response":{bad}}}"#);
            assert_eq!(
                parse(&event).unwrap_err().param.as_deref(),
                Some(param),
                "{bad}"
            );
        }
    }

    #[test]
    fn response_metadata_is_kept_within_openais_limits() {
        let ok =
            r#"{"type":"response.create","response":{"metadata":{"topic":"weather","n":"1"}}}"#;
        let ClientEvent::ResponseCreate(opts) = parse(ok).unwrap().event else {
            panic!("a response.create");
        };
        let mut pairs = opts.metadata;
        pairs.sort();
        assert_eq!(
            pairs,
            [("n".into(), "1".into()), ("topic".into(), "weather".into())]
        );
        let many: serde_json::Map<String, Value> = (0..17)
            .map(|i| (format!("k{i}"), Value::from("v")))
            .collect();
        let too_many =
            serde_json::json!({"type": "response.create", "response": {"metadata": many}});
        for bad in [
            r#"{"type":"response.create","response":{"metadata":{"n":1}}}"#.to_owned(),
            r#"{"type":"response.create","response":{"metadata":"x"}}"#.to_owned(),
            too_many.to_string(),
            format!(
                r#"{{"type":"response.create","response":{{"metadata":{{"k":"{}"}}}}}}"#,
                "v".repeat(513)
            ),
        ] {
            let e = parse(&bad).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("response.metadata"), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn input_is_read_in_order(
            entries in prop::collection::vec(prop_oneof![
                "[a-z0-9_]{1,24}".prop_map(Ok),
                "\\PC{0,40}".prop_map(Err),
            ], 0..24),
        ) {
            // Ok: a reference to that id; Err: a user message with that text.
            let input: Vec<Value> = entries.iter().map(|e| match e {
                Ok(id) => serde_json::json!({"type": "item_reference", "id": id}),
                Err(text) => serde_json::json!({"type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": text}]}),
            }).collect();
            let event = serde_json::json!({"type": "response.create",
                "response": {"conversation": "none", "input": input}});
            let ClientEvent::ResponseCreate(opts) = parse(&event.to_string()).unwrap().event else {
                panic!("a response.create");
            };
            let read = opts.input.unwrap();
            prop_assert_eq!(read.len(), entries.len());
            for (got, want) in read.iter().zip(&entries) {
                match (got, want) {
                    (ResponseInput::Reference(id), Ok(want)) => prop_assert_eq!(id, want),
                    (ResponseInput::Item(item), Err(want)) => {
                        let text = match &item.kind {
                            switchboard_pipeline::conversation::ItemKind::Message { content, .. } => content[0].text().to_owned(),
                            other => panic!("{other:?}"),
                        };
                        prop_assert_eq!(&text, want);
                    }
                    (got, want) => prop_assert!(false, "{:?} for {:?}", got, want),
                }
            }
        }

        #[test]
        fn response_metadata_is_kept_whole_or_refused_for_a_limit(
            pairs in prop::collection::btree_map("\\PC{0,70}", "\\PC{0,520}", 0..20),
        ) {
            let event = serde_json::json!({"type": "response.create", "response": {"metadata": pairs}});
            let over = pairs.len() > 16
                || pairs.iter().any(|(k, v)| k.chars().count() > 64 || v.chars().count() > 512);
            match parse(&event.to_string()) {
                Ok(p) => {
                    let ClientEvent::ResponseCreate(opts) = p.event else {
                        panic!("a response.create");
                    };
                    prop_assert!(!over);
                    let kept: std::collections::BTreeMap<String, String> =
                        opts.metadata.into_iter().collect();
                    prop_assert_eq!(kept, pairs);
                }
                Err(e) => {
                    prop_assert!(over, "refused within the limits: {:?}", e);
                    prop_assert_eq!(e.param.as_deref(), Some("response.metadata"));
                }
            }
        }
    }
}
