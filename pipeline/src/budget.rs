//! Token budgets: how many LLM tokens a tenant may spend in a period. The orchestrator asks
//! before a turn generates ([`TokenBudget::admit`]) and charges what the reply used once its
//! stream ends ([`metered`]), whichever channel the turn came from. Where the budget is kept
//! (Redis, this process) is the gateway's business.
//!
//! Charging after the fact means one reply may overdraw the budget; the next turns then wait
//! until it has refilled. That is the price of not guessing a reply's length in advance.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use crate::llm::{ChatMessage, ChatRequest, LlmEvent, LlmStream};

/// A tenant's allowance of LLM tokens.
pub trait TokenBudget: Send + Sync {
    /// `Err(retry_after)` while `tenant` has nothing left to spend.
    fn admit<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<(), Duration>>;
    /// Take `tokens` from `tenant`'s budget (may overdraw it).
    fn charge(&self, tenant: &str, tokens: u64);
}

/// Tokens a request's prompt is likely to take (about four characters a token), for a
/// provider that reports no usage.
pub fn estimate_prompt_tokens(request: &ChatRequest) -> u64 {
    let chars: usize = request
        .messages
        .iter()
        .map(|m| match m {
            ChatMessage::System(t) | ChatMessage::User(t) => t.len(),
            ChatMessage::Assistant { content, .. } => content.len(),
            ChatMessage::Tool { content, .. } => content.len(),
        })
        .sum();
    chars.div_ceil(4) as u64
}

/// What one reply has used so far; charged when the reply's stream is dropped, so a reply
/// cut short (barge-in, a client gone) still pays for what was generated.
struct Meter {
    budget: Arc<dyn TokenBudget>,
    tenant: String,
    /// Tokens the provider reported (every round of a tool loop reports its own).
    reported: u64,
    /// The estimate used when the provider reports nothing.
    estimated_prompt: u64,
    text_bytes: u64,
}

impl Drop for Meter {
    fn drop(&mut self) {
        let tokens = if self.reported > 0 {
            self.reported
        } else {
            self.estimated_prompt + self.text_bytes.div_ceil(4)
        };
        if tokens > 0 {
            self.budget.charge(&self.tenant, tokens);
        }
    }
}

/// `stream`, charging `tenant` for the tokens it reports (or, without usage, an estimate
/// from the prompt and the text) when it ends or is dropped.
pub fn metered(
    stream: LlmStream,
    budget: Arc<dyn TokenBudget>,
    tenant: String,
    estimated_prompt: u64,
) -> LlmStream {
    let mut meter = Meter {
        budget,
        tenant,
        reported: 0,
        estimated_prompt,
        text_bytes: 0,
    };
    Box::pin(stream.inspect(move |event| {
        // The whole meter moves into the closure (not just the fields it touches), so it is
        // dropped, and charges, with the stream.
        let meter = &mut meter;
        match event {
            Ok(LlmEvent::Usage(u)) => {
                meter.reported += u64::from(u.input_tokens) + u64::from(u.output_tokens);
            }
            Ok(LlmEvent::Text(t)) => meter.text_bytes += t.len() as u64,
            _ => {}
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::llm::{LlmError, Usage};

    #[derive(Default)]
    struct Ledger(Mutex<Vec<(String, u64)>>);

    impl TokenBudget for Ledger {
        fn admit<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), Duration>> {
            Box::pin(async { Ok(()) })
        }
        fn charge(&self, tenant: &str, tokens: u64) {
            self.0.lock().unwrap().push((tenant.to_owned(), tokens));
        }
    }

    fn events(list: Vec<Result<LlmEvent, LlmError>>) -> LlmStream {
        Box::pin(futures_util::stream::iter(list))
    }

    fn usage(input: u32, output: u32) -> Result<LlmEvent, LlmError> {
        Ok(LlmEvent::Usage(Usage {
            input_tokens: input,
            cached_input_tokens: 0,
            output_tokens: output,
        }))
    }

    #[tokio::test]
    async fn reported_usage_is_charged_once_per_reply_summing_tool_rounds() {
        let ledger = Arc::new(Ledger::default());
        let stream = events(vec![
            Ok(LlmEvent::Text("Let me look.".into())),
            usage(100, 5),
            Ok(LlmEvent::Text("Found it.".into())),
            usage(130, 4),
        ]);
        let all: Vec<_> = metered(stream, ledger.clone(), "acme".into(), 999)
            .collect()
            .await;
        assert_eq!(all.len(), 4, "events pass through unchanged");
        assert_eq!(*ledger.0.lock().unwrap(), [("acme".to_owned(), 239)]);
    }

    #[tokio::test]
    async fn without_usage_the_estimate_is_charged_even_when_the_reply_is_cut_short() {
        let ledger = Arc::new(Ledger::default());
        let stream = events(vec![
            Ok(LlmEvent::Text("12345678".into())),
            Ok(LlmEvent::Text("never read".into())),
        ]);
        let mut s = metered(stream, ledger.clone(), "acme".into(), 50);
        assert!(s.next().await.is_some());
        drop(s); // barge-in: the rest is never generated
        assert_eq!(*ledger.0.lock().unwrap(), [("acme".to_owned(), 52)]);
    }

    #[test]
    fn prompts_are_estimated_at_four_characters_a_token() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::System("x".repeat(40)),
                ChatMessage::User("y".repeat(21)),
            ],
            ..Default::default()
        };
        assert_eq!(estimate_prompt_tokens(&request), 16);
    }
}
