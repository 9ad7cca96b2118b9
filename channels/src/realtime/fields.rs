//! The fields of a Realtime session, one parser each: types and ranges checked, every
//! refusal naming the field's path as `param`. [`super::session`] puts them together.

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_pipeline::call::CallError;
use switchboard_pipeline::llm::{ToolChoice, ToolSpec};
use switchboard_pipeline::tools::client_mcp::{ClientMcpServer, MAX_SERVERS};
use switchboard_pipeline::{Eagerness, NoiseReduction, TurnDetection};

use super::mcp_tools::parse_mcp_tool;
use crate::audio_format::AudioFormat;

pub type Invalid = CallError;

pub fn invalid(param: &str, message: impl Into<String>) -> Invalid {
    CallError::invalid("invalid_value", message).with_param(param)
}

pub(super) fn get_f32(
    v: &Value,
    param: &str,
    range: std::ops::RangeInclusive<f32>,
) -> Result<f32, Invalid> {
    let x = v
        .as_f64()
        .ok_or_else(|| invalid(param, format!("{param} must be a number")))? as f32;
    if !range.contains(&x) {
        return Err(invalid(
            param,
            format!(
                "{param} must be between {} and {}, got {x}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(x)
}

pub(super) fn get_u32(v: &Value, param: &str, max: u32) -> Result<u32, Invalid> {
    v.as_u64()
        .filter(|&x| x <= max as u64)
        .map(|x| x as u32)
        .ok_or_else(|| {
            invalid(
                param,
                format!("{param} must be an integer between 0 and {max}"),
            )
        })
}

pub(super) fn get_bool(v: &Value, param: &str) -> Result<bool, Invalid> {
    v.as_bool()
        .ok_or_else(|| invalid(param, format!("{param} must be true or false")))
}

pub(super) fn get_str<'a>(v: &'a Value, param: &str) -> Result<&'a str, Invalid> {
    v.as_str()
        .ok_or_else(|| invalid(param, format!("{param} must be a string")))
}

/// What `session.include` may ask for: the input transcripts' token log probabilities.
pub const INCLUDE_LOGPROBS: &str = "item.input_audio_transcription.logprobs";

/// `session.include`: a list of extra fields, or null for none. Whether the transcripts'
/// log probabilities are asked for; anything else is refused, so a typo is not silently
/// ignored.
pub(super) fn parse_include(v: &Value, param: &str) -> Result<bool, Invalid> {
    let items = match v {
        Value::Null => return Ok(false),
        Value::Array(items) => items,
        _ => return Err(invalid(param, format!("{param} must be a list of strings"))),
    };
    let mut logprobs = false;
    for item in items {
        match get_str(item, param)? {
            INCLUDE_LOGPROBS => logprobs = true,
            other => {
                return Err(invalid(
                    param,
                    format!("unknown {param} value '{other}': only '{INCLUDE_LOGPROBS}'"),
                ));
            }
        }
    }
    Ok(logprobs)
}

/// `{"type": "audio/pcm", "rate": 24000}` (GA) or `"pcm16"` / `"g711_ulaw"` (beta).
pub fn parse_format(v: &Value, param: &str) -> Result<AudioFormat, Invalid> {
    let (kind, rate) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(m) => (
            m.get("type").and_then(Value::as_str).unwrap_or("audio/pcm"),
            m.get("rate"),
        ),
        _ => {
            return Err(invalid(
                param,
                format!("{param} must be an audio format object"),
            ));
        }
    };
    match kind {
        "audio/pcm" | "pcm16" => {
            let rate = match rate {
                None | Some(Value::Null) => 24_000,
                Some(r) => get_u32(r, &format!("{param}.rate"), 48_000)?,
            };
            if !(8_000..=48_000).contains(&rate) {
                return Err(invalid(
                    &format!("{param}.rate"),
                    "rate must be between 8000 and 48000",
                ));
            }
            Ok(AudioFormat::Pcm16 { rate })
        }
        "audio/pcmu" | "g711_ulaw" => Ok(AudioFormat::Pcmu),
        "audio/pcma" | "g711_alaw" => Ok(AudioFormat::Pcma),
        other => Err(invalid(
            param,
            format!("unsupported audio format '{other}': use audio/pcm, audio/pcmu or audio/pcma"),
        )),
    }
}

pub fn format_json(f: AudioFormat) -> Value {
    match f {
        AudioFormat::Pcm16 { rate } => json!({"type": "audio/pcm", "rate": rate}),
        AudioFormat::Pcmu => json!({"type": "audio/pcmu"}),
        AudioFormat::Pcma => json!({"type": "audio/pcma"}),
    }
}

/// `{"type": "near_field" | "far_field"}`, or `null` (off).
pub(super) fn parse_noise_reduction(
    v: &Value,
    param: &str,
) -> Result<Option<NoiseReduction>, Invalid> {
    let kind = match v {
        Value::Null => return Ok(None),
        Value::Object(m) => m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("near_field"),
        _ => return Err(invalid(param, format!("{param} must be an object or null"))),
    };
    match kind {
        "near_field" => Ok(Some(NoiseReduction::NearField)),
        "far_field" => Ok(Some(NoiseReduction::FarField)),
        other => Err(invalid(
            &format!("{param}.type"),
            format!("unknown noise reduction '{other}': near_field or far_field"),
        )),
    }
}

pub(super) fn parse_turn_detection(
    v: &Value,
    base: Option<TurnDetection>,
    param: &str,
) -> Result<Option<TurnDetection>, Invalid> {
    let Value::Object(m) = v else {
        return if v.is_null() {
            Ok(None)
        } else {
            Err(invalid(param, format!("{param} must be an object or null")))
        };
    };
    let mut td = base.unwrap_or_default();
    let p = |k: &str| format!("{param}.{k}");
    // Without a type an update keeps the kind in effect.
    let semantic = match m.get("type") {
        None => td.eagerness.is_some(),
        Some(t) => match t.as_str() {
            Some("server_vad") => false,
            Some("semantic_vad") => true,
            _ => {
                return Err(invalid(
                    &p("type"),
                    format!("unsupported turn detection {t}: server_vad or semantic_vad"),
                ));
            }
        },
    };
    td.eagerness = match (semantic, m.get("eagerness")) {
        (false, None) => None,
        (false, Some(_)) => {
            return Err(invalid(
                &p("eagerness"),
                "eagerness is for semantic_vad turn detection only",
            ));
        }
        (true, None) => Some(td.eagerness.unwrap_or(Eagerness::Auto)),
        (true, Some(x)) => Some(Eagerness::deserialize(x).map_err(|_| {
            invalid(
                &p("eagerness"),
                format!("unknown eagerness {x}: low, medium, high or auto"),
            )
        })?),
    };
    if let Some(x) = m.get("threshold") {
        td.threshold = get_f32(x, &p("threshold"), 0.0..=1.0)?;
    }
    if let Some(x) = m.get("prefix_padding_ms") {
        td.prefix_padding_ms = get_u32(x, &p("prefix_padding_ms"), 10_000)?;
    }
    if let Some(x) = m.get("silence_duration_ms") {
        td.silence_duration_ms = get_u32(x, &p("silence_duration_ms"), 10_000)?;
    }
    if let Some(x) = m.get("create_response") {
        td.create_response = get_bool(x, &p("create_response"))?;
    }
    if let Some(x) = m.get("interrupt_response") {
        td.interrupt_response = get_bool(x, &p("interrupt_response"))?;
    }
    if let Some(x) = m.get("idle_timeout_ms") {
        let param = p("idle_timeout_ms");
        td.idle_timeout_ms = match x {
            Value::Null => None,
            _ => Some(
                x.as_u64()
                    .filter(|ms| (1_000..=600_000).contains(ms))
                    .ok_or_else(|| {
                        invalid(
                            &param,
                            format!("{param} must be null or an integer from 1000 to 600000"),
                        )
                    })? as u32,
            ),
        };
    }
    // Our extension: how long speech must last before it interrupts the agent.
    if let Some(x) = m.get("min_interrupt_ms") {
        td.min_interrupt_ms = get_u32(x, &p("min_interrupt_ms"), 5_000)?;
    }
    // Our extension: how long a pause starts transcription before the turn is confirmed.
    if let Some(x) = m.get("early_transcription_ms") {
        td.early_transcription_ms = get_u32(x, &p("early_transcription_ms"), 10_000)?;
    }
    Ok(Some(td))
}

/// A chat request's `tools`: functions only (a remote MCP server is declared in a Realtime
/// session).
pub fn parse_tools(v: &Value, param: &str) -> Result<Vec<ToolSpec>, Invalid> {
    parse_tool_list(v, param, false).map(|(functions, _)| functions)
}

/// A Realtime session's or response's `tools`: functions the client runs, and remote MCP
/// servers the gateway calls (`mcp_tools.rs`).
pub fn parse_realtime_tools(
    v: &Value,
    param: &str,
) -> Result<(Vec<ToolSpec>, Vec<ClientMcpServer>), Invalid> {
    parse_tool_list(v, param, true)
}

fn parse_tool_list(
    v: &Value,
    param: &str,
    mcp_allowed: bool,
) -> Result<(Vec<ToolSpec>, Vec<ClientMcpServer>), Invalid> {
    let Value::Array(items) = v else {
        return Err(invalid(param, format!("{param} must be an array")));
    };
    let (mut functions, mut servers) = (Vec::new(), Vec::<ClientMcpServer>::new());
    for (i, t) in items.iter().enumerate() {
        let p = format!("{param}[{i}]");
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
        match kind {
            "function" => functions.push(parse_function(t, &p)?),
            "mcp" if mcp_allowed => {
                let server = parse_mcp_tool(t, &p)?;
                if servers.len() == MAX_SERVERS {
                    return Err(invalid(
                        &p,
                        format!("a session declares at most {MAX_SERVERS} MCP servers"),
                    ));
                }
                if servers.iter().any(|s| s.label == server.label) {
                    return Err(invalid(
                        &format!("{p}.server_label"),
                        format!("server_label '{}' is given twice", server.label),
                    ));
                }
                servers.push(server);
            }
            "mcp" => {
                return Err(invalid(
                    &format!("{p}.type"),
                    "unsupported tool type 'mcp' here: 'function'. A remote MCP server is \
                     declared in a Realtime session's or response's tools; the gateway's own \
                     servers are the operator's (persona file, [mcp.NAME])",
                ));
            }
            other => {
                let supported = if mcp_allowed {
                    "'function' or 'mcp'"
                } else {
                    "'function'"
                };
                return Err(invalid(
                    &format!("{p}.type"),
                    format!("unsupported tool type '{other}': {supported}"),
                ));
            }
        }
    }
    Ok((functions, servers))
}

fn parse_function(t: &Value, p: &str) -> Result<ToolSpec, Invalid> {
    // GA puts the fields on the tool; the chat shape nests them under "function".
    let f = t.get("function").unwrap_or(t);
    let name = get_str(f.get("name").unwrap_or(&Value::Null), &format!("{p}.name"))?;
    if name.is_empty() || name.len() > 64 {
        return Err(invalid(
            &format!("{p}.name"),
            "tool names are 1 to 64 characters",
        ));
    }
    Ok(ToolSpec {
        name: name.to_owned(),
        description: f
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        parameters: f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
}

pub fn parse_tool_choice(v: &Value, param: &str) -> Result<ToolChoice, Invalid> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid(param, format!("unknown tool_choice '{other}'"))),
        },
        Value::Object(m) => {
            let name = m
                .get("name")
                .or_else(|| m.get("function").and_then(|f| f.get("name")));
            Ok(ToolChoice::Function(
                get_str(name.unwrap_or(&Value::Null), &format!("{param}.name"))?.to_owned(),
            ))
        }
        _ => Err(invalid(
            param,
            format!("{param} must be a string or an object"),
        )),
    }
}

pub(super) fn parse_modalities(v: &Value, param: &str) -> Result<bool, Invalid> {
    let list = v
        .as_array()
        .ok_or_else(|| invalid(param, format!("{param} must be an array")))?;
    let mut audio = false;
    for m in list {
        match m.as_str() {
            Some("audio") => audio = true,
            Some("text") => {}
            _ => return Err(invalid(param, "modalities are \"text\" and \"audio\"")),
        }
    }
    Ok(audio)
}

/// `max_output_tokens`: an integer or "inf".
pub fn parse_max_tokens(v: &Value, param: &str) -> Result<Option<u32>, Invalid> {
    match v {
        Value::String(s) if s == "inf" => Ok(None),
        _ => get_u32(v, param, 1_000_000).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_functions_and_other_types_say_what_is_supported() {
        let tools = parse_tools(
            &json!([
                {"type": "function", "name": "lookup", "parameters": {"type": "object"}},
                {"type": "function", "function": {"name": "book", "description": "Books."}}
            ]),
            "session.tools",
        )
        .unwrap();
        let names: Vec<_> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["lookup", "book"]);
        assert_eq!(tools[1].description, "Books.");
        let mcp = json!([{"type": "mcp", "server_label": "shop", "server_url": "https://x"}]);
        let err = parse_tools(&mcp, "tools").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tools[0].type"));
        assert!(err.message.contains("Realtime session"), "{}", err.message);
        let (functions, servers) = parse_realtime_tools(&mcp, "session.tools").unwrap();
        assert!(functions.is_empty());
        assert_eq!(servers[0].label, "shop");
        let many: Vec<Value> = (0..=MAX_SERVERS)
            .map(|i| json!({"type": "mcp", "server_label": format!("s{i}"), "server_url": "https://x"}))
            .collect();
        let err = parse_realtime_tools(&Value::from(many), "session.tools").unwrap_err();
        let last = format!("session.tools[{MAX_SERVERS}]");
        assert_eq!(err.param.as_deref(), Some(last.as_str()));
        let twice = json!([mcp[0], mcp[0]]);
        let err = parse_realtime_tools(&twice, "session.tools").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("session.tools[1].server_label"));
        let err = parse_tools(&json!([{"type": "web_search"}]), "tools").unwrap_err();
        assert!(err.message.contains("'web_search'"), "{}", err.message);
        let err = parse_realtime_tools(&json!([{"type": "web_search"}]), "tools").unwrap_err();
        assert!(err.message.contains("'mcp'"), "{}", err.message);
        let err = parse_tools(&json!([{"type": "function", "name": ""}]), "tools").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tools[0].name"));
    }

    #[test]
    fn idle_timeout_is_null_or_a_second_to_ten_minutes() {
        let parse = |v: Value| parse_turn_detection(&v, None, "td");
        let td = parse(json!({"idle_timeout_ms": 5_000})).unwrap().unwrap();
        assert_eq!(td.idle_timeout_ms, Some(5_000));
        let kept = parse_turn_detection(&json!({"threshold": 0.6}), Some(td), "td").unwrap();
        assert_eq!(
            kept.unwrap().idle_timeout_ms,
            Some(5_000),
            "kept when not named"
        );
        let off = parse_turn_detection(&json!({"idle_timeout_ms": null}), Some(td), "td");
        assert_eq!(off.unwrap().unwrap().idle_timeout_ms, None);
        let semantic = parse(json!({"type": "semantic_vad", "idle_timeout_ms": 1_000}));
        assert_eq!(semantic.unwrap().unwrap().idle_timeout_ms, Some(1_000));
        for bad in [
            json!(999),
            json!(600_001),
            json!(-1),
            json!("5000"),
            json!(1.5),
        ] {
            let err = parse(json!({"idle_timeout_ms": bad})).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("td.idle_timeout_ms"), "{bad}");
        }
    }
}
