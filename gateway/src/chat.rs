//! `POST /v1/chat/completions` and `GET /v1/models` in OpenAI's shape, served by the same
//! provider chain as calls (the embedded model when no endpoint is configured), so standard
//! OpenAI clients can talk to it. Streaming is SSE with `data: [DONE]` at the end.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_channels::chat_request::{self, ChatCompletionRequest};
use switchboard_pipeline::llm::{LlmEvent, ToolCall, Usage};

use crate::auth;
use crate::server::{AppState, invalid_request, openai_error};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(denied) = auth::require(&state.api_keys, &headers) {
        return denied;
    }
    let data: Vec<Value> = state
        .model_names
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "switchboard"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

pub async fn completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = auth::require(&state.api_keys, &headers) {
        return denied;
    }
    let ChatCompletionRequest {
        request,
        model,
        stream,
        include_usage,
    } = match chat_request::parse(&body) {
        Ok(r) => r,
        Err(e) => return invalid_request(e.message, &e.param, None),
    };
    let id = format!(
        "chatcmpl-{:x}",
        now().wrapping_mul(0x9E37_79B9) ^ std::process::id() as u64
    );
    let events = state.llm.stream(request);
    if stream {
        return stream_response(events, id, model, include_usage).into_response();
    }
    collect_response(events, id, model).await
}

fn usage_json(u: Usage) -> Value {
    json!({"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.input_tokens + u.output_tokens})
}

fn tool_calls_json(calls: &[ToolCall]) -> Value {
    calls.iter().map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})).collect()
}

async fn collect_response(
    mut events: switchboard_pipeline::llm::LlmStream,
    id: String,
    model: String,
) -> Response {
    let (mut text, mut calls, mut usage) =
        (String::new(), Vec::<ToolCall>::new(), Usage::default());
    while let Some(ev) = events.next().await {
        match ev {
            Ok(LlmEvent::Text(t)) => text.push_str(&t),
            Ok(LlmEvent::ToolCallStart { id, name, .. }) => calls.push(ToolCall {
                id,
                name,
                arguments: String::new(),
            }),
            Ok(LlmEvent::ToolCallArguments { index, delta }) => {
                let at = (index as usize).min(calls.len().saturating_sub(1));
                if let Some(c) = calls.get_mut(at) {
                    c.arguments.push_str(&delta);
                }
            }
            Ok(LlmEvent::Usage(u)) => usage = u,
            Err(e) => {
                tracing::warn!(error = %e, "chat completion failed");
                return openai_error(
                    StatusCode::BAD_GATEWAY,
                    "server_error",
                    "llm_unavailable",
                    "No LLM provider could answer; try again shortly.",
                );
            }
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    if !calls.is_empty() {
        message["tool_calls"] = tool_calls_json(&calls);
    }
    Json(json!({
        "id": id, "object": "chat.completion", "created": now(), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": usage_json(usage),
    }))
    .into_response()
}

fn stream_response(
    events: switchboard_pipeline::llm::LlmStream,
    id: String,
    model: String,
    include_usage: bool,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let created = now();
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    struct St<F> {
        events: switchboard_pipeline::llm::LlmStream,
        chunk: F,
        started: bool,
        tools: bool,
        usage: Usage,
        done: bool,
    }
    let init = St {
        events,
        chunk,
        started: false,
        tools: false,
        usage: Usage::default(),
        done: false,
    };
    let body = futures_util::stream::unfold(init, move |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let out: Vec<Value> = match st.events.next().await {
                Some(Ok(LlmEvent::Text(t))) => {
                    let mut delta = json!({"content": t});
                    if !st.started {
                        delta["role"] = json!("assistant");
                        st.started = true;
                    }
                    vec![(st.chunk)(delta, None)]
                }
                Some(Ok(LlmEvent::ToolCallStart { index, id, name })) => {
                    st.tools = true;
                    vec![(st.chunk)(json!({"role": "assistant", "tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}), None)]
                }
                Some(Ok(LlmEvent::ToolCallArguments { index, delta })) => {
                    vec![(st.chunk)(json!({"tool_calls": [{"index": index, "function": {"arguments": delta}}]}), None)]
                }
                Some(Ok(LlmEvent::Usage(u))) => {
                    st.usage = u;
                    continue;
                }
                Some(Err(e)) => {
                    // Mid-stream failure: an error event in OpenAI's shape, then the end.
                    tracing::warn!(error = %e, "chat completion stream failed");
                    st.done = true;
                    let err = json!({"error": {"message": "No LLM provider could answer; try again shortly.", "type": "server_error", "param": null, "code": "llm_unavailable"}});
                    return Some((futures_util::stream::iter(vec![Ok(Event::default().data(err.to_string()))]), st));
                }
                None => {
                    st.done = true;
                    let mut last = vec![(st.chunk)(json!({}), Some(if st.tools { "tool_calls" } else { "stop" }))];
                    if include_usage {
                        let mut u = (st.chunk)(json!({}), None);
                        u["choices"] = json!([]);
                        u["usage"] = usage_json(st.usage);
                        last.push(u);
                    }
                    let mut events: Vec<Result<Event, Infallible>> = last.into_iter().map(|v| Ok(Event::default().data(v.to_string()))).collect();
                    events.push(Ok(Event::default().data("[DONE]")));
                    return Some((futures_util::stream::iter(events), st));
                }
            };
            let events: Vec<Result<Event, Infallible>> = out.into_iter().map(|v| Ok(Event::default().data(v.to_string()))).collect();
            return Some((futures_util::stream::iter(events), st));
        }
    })
    .flatten();
    Sse::new(body)
}
