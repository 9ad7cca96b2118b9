//! The embedded model (`switchboard_models::llm::LocalLlm`) as a provider like any other.
//!
//! It loads in the background with the speech engines; until then it answers with an error,
//! which the fallback chain treats like any failing provider. It has no tool calling: tools
//! are not offered to it, and tool results in the history are shown to it as plain text.
//! A request without a `seed` samples with a fresh one, as OpenAI's models do (asked again,
//! a reply may differ); with one, the same request gives the same reply.

use std::sync::{Arc, OnceLock};

use switchboard_models::llm::{ChatRole, GenerateRequest, LlmToken, LocalLlm};

use super::{ChatMessage, ChatRequest, LlmError, LlmEvent, LlmProvider, LlmStream, Usage};

/// Replies in a call are short; this bounds a runaway generation.
const DEFAULT_MAX_TOKENS: u32 = 200;

pub struct EmbeddedLlm {
    model: Arc<OnceLock<LocalLlm>>,
    name: String,
}

impl std::fmt::Debug for EmbeddedLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLlm")
            .field("name", &self.name)
            .finish()
    }
}

impl EmbeddedLlm {
    /// A provider for the model that is (or will be) in `model`.
    pub fn new(model: Arc<OnceLock<LocalLlm>>) -> Self {
        Self {
            model,
            name: "embedded@local".into(),
        }
    }
}

/// The conversation in the model's roles.
pub fn to_turns(messages: &[ChatMessage]) -> Vec<(ChatRole, String)> {
    messages
        .iter()
        .filter_map(|m| match m {
            ChatMessage::System(t) => Some((ChatRole::System, t.clone())),
            ChatMessage::User(t) => Some((ChatRole::User, t.clone())),
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => {
                let calls: Vec<String> = tool_calls
                    .iter()
                    .map(|c| format!("(called {} with {})", c.name, c.arguments))
                    .collect();
                let text = [content.clone(), calls.join(" ")]
                    .join(" ")
                    .trim()
                    .to_owned();
                (!text.is_empty()).then_some((ChatRole::Assistant, text))
            }
            ChatMessage::Tool { content, .. } => {
                Some((ChatRole::User, format!("Tool result: {content}")))
            }
        })
        .collect()
}

impl LlmProvider for EmbeddedLlm {
    fn name(&self) -> &str {
        &self.name
    }

    fn stream(&self, request: ChatRequest) -> LlmStream {
        let name = self.name.clone();
        let fail = move |message: String| LlmError::Provider {
            provider: name.clone(),
            message,
        };
        let Some(model) = self.model.get() else {
            return Box::pin(futures_util::stream::iter([Err(fail(
                "the embedded model is still loading".into(),
            ))]));
        };
        let defaults = GenerateRequest::default();
        let tokens = model.generate(GenerateRequest {
            messages: to_turns(&request.messages),
            max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS) as usize,
            temperature: request.temperature.unwrap_or(defaults.temperature),
            top_p: request.top_p.unwrap_or(defaults.top_p),
            seed: request.seed.unwrap_or_else(crate::unique::fresh_u64),
            background: request.background,
            conversation: request.conversation,
            ..defaults
        });
        Box::pin(futures_util::stream::unfold(Some(tokens), move |state| {
            let fail = fail.clone();
            async move {
                let mut tokens = state?;
                let item = match tokens.next().await? {
                    Ok(LlmToken::Text(t)) => Ok(LlmEvent::Text(t)),
                    Ok(LlmToken::Done {
                        prompt_tokens,
                        cached_tokens,
                        output_tokens,
                    }) => Ok(LlmEvent::Usage(Usage {
                        input_tokens: prompt_tokens as u32,
                        cached_input_tokens: cached_tokens as u32,
                        output_tokens: output_tokens as u32,
                    })),
                    Err(e) => Err(fail(e.to_string())),
                };
                Some((item, Some(tokens)))
            }
        }))
    }
}
