//! Any OpenAI-compatible `/chat/completions` endpoint, streamed through `async-openai`.
//!
//! Requests and stream chunks are our own small serde shapes sent through async-openai's
//! "bring your own types" calls: the wire format is the stable part, and this way tool calls,
//! usage and unknown fields from other vendors pass without a strict schema in between.
//! async-openai's retry layer is left out on purpose: a failing provider must hand over to the
//! next one in the fallback chain at once, not back off and retry for seconds.

use std::sync::{Arc, Once};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::middleware::ReqwestService;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ChatMessage, ChatRequest, LlmError, LlmEvent, LlmProvider, LlmStream, ToolChoice, Usage,
};

/// Where and what to ask.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// API base including the version path, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Bearer key; empty for endpoints that take none.
    pub api_key: String,
    /// Model name sent with every request.
    pub model: String,
}

#[derive(Clone)]
pub struct OpenAiCompatible {
    client: Arc<Client<OpenAIConfig>>,
    model: String,
    name: String,
}

impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("name", &self.name)
            .finish()
    }
}

pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl OpenAiCompatible {
    pub fn new(cfg: OpenAiConfig) -> Self {
        install_crypto_provider();
        let base = cfg.base_url.trim_end_matches('/').to_owned();
        let host = base
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or(&base)
            .to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let client = Client::with_config(
            OpenAIConfig::new()
                .with_api_base(base)
                .with_api_key(cfg.api_key),
        )
        .with_http_service(ReqwestService::new(http));
        Self {
            client: Arc::new(client),
            name: format!("{}@{host}", cfg.model),
            model: cfg.model,
        }
    }
}

impl LlmProvider for OpenAiCompatible {
    fn name(&self) -> &str {
        &self.name
    }

    fn stream(&self, request: ChatRequest) -> LlmStream {
        let body = request_body(request.model.as_deref().unwrap_or(&self.model), &request);
        let client = Arc::clone(&self.client);
        let provider = self.name.clone();
        let fail = move |message: String| LlmError::Provider {
            provider: provider.clone(),
            message,
        };
        Box::pin(
            futures_util::stream::once(async move {
                client
                    .chat()
                    .create_stream_byot::<Value, StreamChunk>(body)
                    .await
            })
            .flat_map(move |opened| {
                let fail = fail.clone();
                match opened {
                    Ok(chunks) => chunks
                        .flat_map(move |chunk| {
                            let events = match chunk {
                                Ok(chunk) => chunk.events().into_iter().map(Ok).collect(),
                                Err(e) => vec![Err(fail(e.to_string()))],
                            };
                            futures_util::stream::iter(events)
                        })
                        .boxed(),
                    Err(e) => futures_util::stream::iter([Err(fail(e.to_string()))]).boxed(),
                }
            }),
        )
    }
}

/// The JSON body of a streaming chat completion request.
pub(crate) fn request_body(model: &str, req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req.messages.iter().map(message_json).collect();
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !req.tools.is_empty() && req.tool_choice != ToolChoice::None {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        body["tool_choice"] = match &req.tool_choice {
            ToolChoice::Auto | ToolChoice::None => json!("auto"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
        };
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = req.max_tokens {
        body["max_tokens"] = json!(m);
    }
    if let Some(p) = req.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(s) = req.seed {
        body["seed"] = json!(s);
    }
    body
}

fn message_json(m: &ChatMessage) -> Value {
    match m {
        ChatMessage::System(text) => json!({"role": "system", "content": text}),
        ChatMessage::User(text) => json!({"role": "user", "content": text}),
        ChatMessage::Assistant {
            content,
            tool_calls,
        } => {
            let mut v = json!({"role": "assistant", "content": content});
            if !tool_calls.is_empty() {
                v["tool_calls"] = tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect();
            }
            v
        }
        ChatMessage::Tool { call_id, content } => {
            json!({"role": "tool", "tool_call_id": call_id, "content": content})
        }
    }
}

#[derive(Debug, Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallChunk>,
}

#[derive(Debug, Deserialize)]
struct ToolCallChunk {
    #[serde(default)]
    index: u32,
    id: Option<String>,
    function: Option<FunctionChunk>,
}

#[derive(Debug, Deserialize)]
struct FunctionChunk {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Debug, Deserialize)]
struct PromptTokensDetails {
    #[serde(default)]
    cached_tokens: u32,
}

impl StreamChunk {
    fn events(self) -> Vec<LlmEvent> {
        let mut out = Vec::new();
        for choice in self.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                out.push(LlmEvent::Text(text));
            }
            for call in choice.delta.tool_calls {
                let (name, args) = call
                    .function
                    .map(|f| (f.name, f.arguments))
                    .unwrap_or((None, None));
                if let Some(name) = name {
                    out.push(LlmEvent::ToolCallStart {
                        index: call.index,
                        id: call.id.unwrap_or_else(|| format!("call_{}", call.index)),
                        name,
                    });
                }
                if let Some(delta) = args.filter(|a| !a.is_empty()) {
                    out.push(LlmEvent::ToolCallArguments {
                        index: call.index,
                        delta,
                    });
                }
            }
        }
        if let Some(u) = self.usage {
            out.push(LlmEvent::Usage(Usage {
                input_tokens: u.prompt_tokens,
                cached_input_tokens: u.prompt_tokens_details.map_or(0, |d| d.cached_tokens),
                output_tokens: u.completion_tokens,
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ToolCall, ToolSpec};

    #[test]
    fn chunks_become_events() {
        let chunk: StreamChunk = serde_json::from_value(json!({
            "choices": [{"delta": {"content": "Hi", "tool_calls": [
                {"index": 0, "id": "c1", "function": {"name": "lookup", "arguments": "{\"a\""}}]}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2,
                      "prompt_tokens_details": {"cached_tokens": 4}}
        }))
        .unwrap();
        assert_eq!(
            chunk.events(),
            vec![
                LlmEvent::Text("Hi".into()),
                LlmEvent::ToolCallStart {
                    index: 0,
                    id: "c1".into(),
                    name: "lookup".into()
                },
                LlmEvent::ToolCallArguments {
                    index: 0,
                    delta: "{\"a\"".into()
                },
                LlmEvent::Usage(Usage {
                    input_tokens: 7,
                    cached_input_tokens: 4,
                    output_tokens: 2
                }),
            ]
        );
    }

    #[test]
    fn request_carries_tools_and_tool_results() {
        let req = ChatRequest {
            messages: vec![
                ChatMessage::System("be brief".into()),
                ChatMessage::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    }],
                },
                ChatMessage::Tool {
                    call_id: "c1".into(),
                    content: "42".into(),
                },
            ],
            tools: vec![ToolSpec {
                name: "f".into(),
                description: "d".into(),
                parameters: json!({"type": "object"}),
            }],
            ..ChatRequest::default()
        };
        let body = request_body("m", &req);
        assert_eq!(
            body["messages"][1]["tool_calls"][0]["function"]["name"],
            "f"
        );
        assert_eq!(body["messages"][2]["tool_call_id"], "c1");
        assert_eq!(body["tools"][0]["function"]["name"], "f");
        assert_eq!(body["tool_choice"], "auto");
        let none = ChatRequest {
            tool_choice: ToolChoice::None,
            ..req
        };
        assert!(request_body("m", &none).get("tools").is_none());
    }
}
