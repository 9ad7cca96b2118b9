//! Building the LLM provider chain from the command line and environment.

use std::sync::Arc;
use std::time::Duration;

use switchboard_pipeline::llm::{FallbackChain, LlmProvider, OpenAiCompatible, OpenAiConfig};
use switchboard_pipeline::metrics::CallMetrics;

use crate::cli::LlmArgs;

const OPENAI_API: &str = "https://api.openai.com/v1";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The primary provider, then the fallbacks, as one provider.
pub fn providers(args: &LlmArgs, metrics: &CallMetrics) -> Arc<dyn LlmProvider> {
    let primary_key = args
        .llm_api_key
        .clone()
        .or_else(|| env("OPENAI_API_KEY"))
        .unwrap_or_default();
    let primary = OpenAiConfig {
        base_url: args
            .llm_base_url
            .clone()
            .or_else(|| env("OPENAI_BASE_URL"))
            .unwrap_or_else(|| OPENAI_API.into()),
        api_key: primary_key.clone(),
        model: args.llm_model.clone(),
    };
    let fallback_key = args.llm_fallback_api_key.clone().unwrap_or(primary_key);
    let mut chain: Vec<Arc<dyn LlmProvider>> = vec![Arc::new(OpenAiCompatible::new(primary))];
    for spec in args.llm_fallbacks.iter().filter(|s| !s.trim().is_empty()) {
        let (base_url, model) = match spec.trim().split_once('#') {
            Some((url, model)) => (url.to_owned(), model.to_owned()),
            None => (spec.trim().to_owned(), args.llm_model.clone()),
        };
        chain.push(Arc::new(OpenAiCompatible::new(OpenAiConfig {
            base_url,
            api_key: fallback_key.clone(),
            model,
        })));
    }
    let chain = FallbackChain::new(
        chain,
        Duration::from_millis(args.llm_first_token_timeout_ms),
    )
    .with_switch_counter(metrics.llm_fallbacks_total.clone());
    tracing::info!(providers = chain.name(), "LLM providers");
    Arc::new(chain)
}
