//! A scripted OpenAI-compatible chat server: the stand-in for a paid LLM API in tests and
//! benchmarks. It streams a fixed reply word by word, calls a tool when asked about its
//! trigger word, answers tool results, and can be told to fail (HTTP 500) or stall. Every
//! request body is recorded so tests can check what the gateway sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Stream replies word by word.
    Answer,
    /// Answer 500 with an OpenAI error body.
    Fail,
    /// Accept the request and never send a byte.
    Stall,
}

#[derive(Debug, Clone)]
pub struct Script {
    pub behaviour: Behaviour,
    pub reply: String,
    /// Delay before the first token and between tokens.
    pub first_token_ms: u64,
    pub token_ms: u64,
    /// When the user's words in the last message contain this word and the tool is
    /// offered, call it.
    pub tool_trigger: Option<(String, String, String)>,
    /// How many calls of that tool the model makes at once (parallel tool calls).
    pub parallel_calls: u32,
    /// Words said before calling it ("Let me check."), if any.
    pub before_call: String,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            behaviour: Behaviour::Answer,
            reply: "Sure. The weather in Paris is mild today, with light clouds in the morning and sunshine later on. \
                    Take a light jacket if you go out this evening, because it gets cool after sunset."
                .into(),
            first_token_ms: 30,
            token_ms: 15,
            tool_trigger: None,
            parallel_calls: 1,
            before_call: String::new(),
        }
    }
}

struct Shared {
    script: Mutex<Script>,
    requests: Mutex<Vec<Value>>,
}

/// A running scripted server (on its own thread and runtime).
pub struct ScriptedLlm {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl ScriptedLlm {
    pub fn start(script: Script) -> Self {
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(Arc::clone(&shared));
        let addr = crate::serve_on_thread(app);
        Self { addr, shared }
    }

    /// A server that answers every request with `reply`.
    pub fn replying(reply: &str) -> Self {
        Self::start(Script {
            reply: reply.into(),
            ..Script::default()
        })
    }

    /// Base URL for `SWITCHBOARD_LLM_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// From now on, call `tool` with `args` when the user's message contains `word` (and
    /// answer briefly otherwise).
    pub fn call_tool(&self, word: &str, tool: &str, args: serde_json::Value) {
        self.set_script(Script {
            reply: "Okay.".into(),
            tool_trigger: Some((word.into(), tool.into(), args.to_string())),
            ..Script::default()
        });
    }

    /// As [`Self::call_tool`], `n` calls at once in one turn.
    pub fn call_tool_times(&self, n: u32, word: &str, tool: &str, args: serde_json::Value) {
        self.call_tool(word, tool, args);
        self.shared
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .parallel_calls = n;
    }

    pub fn set_script(&self, script: Script) {
        *self.shared.script.lock().unwrap_or_else(|p| p.into_inner()) = script;
    }

    /// Request bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn chunk(delta: Value, finish: Option<&str>) -> Bytes {
    let v = json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": "scripted",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    Bytes::from(format!("data: {v}\n\n"))
}

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(req.clone());
    let script = shared
        .script
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match script.behaviour {
        Behaviour::Fail => {
            let err = json!({"error": {"message": "scripted failure", "type": "server_error", "param": null, "code": null}});
            return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(err)).into_response();
        }
        Behaviour::Stall => {
            let pending = futures_util::stream::pending::<Result<Bytes, Infallible>>();
            return Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(pending))
                .unwrap_or_default();
        }
        Behaviour::Answer => {}
    }
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let offered = |name: &str| {
        req["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == name))
    };
    let mut chunks: Vec<Bytes> = Vec::new();
    // The user's own words: the gateway puts the turn's context items (memory, knowledge)
    // before them in the same message, under this heading (`USER_WORDS_HEADING`).
    let content = last["content"].as_str().unwrap_or_default();
    let words = content
        .rsplit("## The user's message\n")
        .next()
        .unwrap_or(content);
    let last_text = words.to_lowercase();
    match (&script.tool_trigger, last["role"].as_str()) {
        (Some((word, name, args)), Some("user"))
            if last_text.contains(word.as_str()) && offered(name) =>
        {
            if !script.before_call.is_empty() {
                words_into(&mut chunks, &script.before_call);
            }
            for index in 0..script.parallel_calls.max(1) {
                let id = format!("call_scripted_{}", index + 1);
                chunks.push(chunk(json!({"role": "assistant", "tool_calls": [{"index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}}]}), None));
                let mid = args.len() / 2;
                for part in [&args[..mid], &args[mid..]] {
                    chunks.push(chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": part}}]}),
                        None,
                    ));
                }
            }
            chunks.push(chunk(json!({}), Some("tool_calls")));
        }
        (_, Some("tool")) => {
            let text = format!(
                "The tool says {}.",
                last["content"].as_str().unwrap_or("nothing")
            );
            words_into(&mut chunks, &text);
            chunks.push(chunk(json!({}), Some("stop")));
        }
        _ => {
            words_into(&mut chunks, &script.reply);
            chunks.push(chunk(json!({}), Some("stop")));
        }
    }
    let usage = json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": "scripted",
                       "choices": [], "usage": {"prompt_tokens": messages.len() * 10, "completion_tokens": chunks.len(), "total_tokens": 0}});
    chunks.push(Bytes::from(format!("data: {usage}\n\n")));
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let (first, each) = (script.first_token_ms, script.token_ms);
    let stream = futures_util::stream::unfold(
        (chunks.into_iter(), true),
        move |(mut it, is_first)| async move {
            let next = it.next()?;
            tokio::time::sleep(Duration::from_millis(if is_first { first } else { each })).await;
            Some((Ok::<_, Infallible>(next), (it, false)))
        },
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

fn words_into(chunks: &mut Vec<Bytes>, text: &str) {
    for (i, word) in text.split(' ').enumerate() {
        let piece = if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        };
        chunks.push(chunk(json!({"content": piece}), None));
    }
}
