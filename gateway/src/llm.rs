//! Building the LLM provider chain from the command line and environment.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use switchboard_models::llm::LocalLlm;
use switchboard_pipeline::llm::{
    EmbeddedLlm, FallbackChain, LlmProvider, OpenAiCompatible, OpenAiConfig,
};
use switchboard_pipeline::metrics::CallMetrics;

use crate::cli::LlmArgs;

const OPENAI_API: &str = "https://api.openai.com/v1";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The configured providers as one.
pub struct LlmChain {
    pub provider: Arc<dyn LlmProvider>,
    /// The embedded model is among them (so readiness waits for it to load).
    pub uses_embedded: bool,
    /// Model ids for `/v1/models`.
    pub model_names: Vec<String>,
}

/// The primary provider, then the fallbacks, then the embedded model (unless off), as one
/// provider. `embedded` is where the embedded model will be once loaded.
pub fn providers(
    args: &LlmArgs,
    metrics: &CallMetrics,
    embedded: &Arc<OnceLock<LocalLlm>>,
) -> LlmChain {
    let primary_key = args.llm_api_key.clone().or_else(|| env("OPENAI_API_KEY"));
    let base_url = args.llm_base_url.clone().or_else(|| env("OPENAI_BASE_URL"));
    let endpoint_configured = base_url.is_some() || primary_key.is_some();
    let primary_key = primary_key.unwrap_or_default();
    let fallback_key = args
        .llm_fallback_api_key
        .clone()
        .unwrap_or_else(|| primary_key.clone());
    let mut chain: Vec<Arc<dyn LlmProvider>> = Vec::new();
    let mut model_names = vec!["switchboard-realtime".to_owned()];
    if endpoint_configured || args.llm_embedded == "off" {
        chain.push(Arc::new(OpenAiCompatible::new(OpenAiConfig {
            base_url: base_url.unwrap_or_else(|| OPENAI_API.into()),
            api_key: primary_key,
            model: args.llm_model.clone(),
        })));
        model_names.push(args.llm_model.clone());
    }
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
    let embedded_wanted = args.llm_embedded == "on";
    if embedded_wanted {
        chain.push(Arc::new(EmbeddedLlm::new(Arc::clone(embedded))));
        model_names.push("smollm2-135m-instruct".to_owned());
    }
    let chain = FallbackChain::new(
        chain,
        Duration::from_millis(args.llm_first_token_timeout_ms),
    )
    .with_switch_counter(metrics.llm_fallbacks_total.clone());
    tracing::info!(providers = chain.name(), "LLM providers");
    LlmChain {
        provider: Arc::new(chain),
        uses_embedded: embedded_wanted,
        model_names,
    }
}
