//! The embedded LLM: a llama-architecture GGUF (SmolLM2-135M-Instruct) run on candle ops by
//! our own forward pass (`llama`: f32 weights for prompts, Q8_0 for decoding, KV caches that
//! keep the shared start of prompts; `sequences` keeps one per live conversation; `sampler`
//! picks each token) on one dedicated worker thread, so the gateway answers with no LLM
//! endpoint configured.
//!
//! Requests wait in a bounded queue (full: `Overloaded` at once). Tokens stream back through
//! a channel; dropping the stream stops generation before the next token. Background
//! requests (summaries) stop as soon as a live one is waiting. The prompt is the
//! model's ChatML template; when it does not fit the context, the oldest turns go first.

mod kernels;
mod llama;
mod sampler;
mod sequences;
mod tokenizer;
mod worker;

use std::path::PathBuf;

use tokio::sync::mpsc;

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("LLM model not usable: {0} (run `switchboard models fetch`)")]
    Model(String),
    #[error("the embedded LLM is overloaded: {0} requests already queued")]
    Overloaded(usize),
    #[error("generation failed: {0}")]
    Inference(String),
    #[error("the LLM worker stopped")]
    WorkerGone,
    #[error("background generation stopped for a live request")]
    Preempted,
}

#[derive(Debug, Clone)]
pub struct LocalLlmConfig {
    /// The GGUF file.
    pub model: PathBuf,
    /// Context window used (prompt + reply), in tokens.
    pub context_tokens: usize,
    /// Requests that may wait for the worker.
    pub queue: usize,
    /// Live conversations whose KV caches are kept (the least recently used goes first):
    /// ~46 KB per cached token for SmolLM2, so at most ~94 MB each at 2,048 tokens.
    pub sequences: usize,
}

impl LocalLlmConfig {
    pub fn new(model: PathBuf) -> Self {
        Self {
            model,
            context_tokens: 2048,
            queue: 16,
            sequences: 8,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub messages: Vec<(ChatRole, String)>,
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f32,
    /// Nucleus sampling mass (1.0 = off).
    pub top_p: f32,
    /// Penalty for repeating recent tokens (greedy decoding of small models loops without it).
    pub repeat_penalty: f32,
    pub seed: u64,
    /// Nobody waits on it: it gives way (`Preempted`) to any other request.
    pub background: bool,
    /// The conversation this request continues (a call, a chat session). Its KV cache is
    /// kept for it: the next request naming it continues there, even when the prompt's
    /// latest message changed. `None`: the cache is chosen by the prompt's start alone.
    pub conversation: Option<String>,
}

impl Default for GenerateRequest {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            max_tokens: 256,
            temperature: 0.3,
            top_p: 0.9,
            repeat_penalty: 1.15,
            seed: 299_792_458,
            background: false,
            conversation: None,
        }
    }
}

/// What a generation streams back.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmToken {
    Text(String),
    /// The last item: token counts.
    Done {
        prompt_tokens: usize,
        /// Prompt tokens whose keys and values were already cached (not computed again).
        cached_tokens: usize,
        output_tokens: usize,
    },
}

/// Tokens in order, ending with `Done` or one `Err`. Dropping it stops the generation.
#[derive(Debug)]
pub struct TokenStream {
    rx: mpsc::Receiver<Result<LlmToken, LlmError>>,
}

impl TokenStream {
    pub async fn next(&mut self) -> Option<Result<LlmToken, LlmError>> {
        self.rx.recv().await
    }

    pub fn next_blocking(&mut self) -> Option<Result<LlmToken, LlmError>> {
        self.rx.blocking_recv()
    }

    fn failed(err: LlmError) -> Self {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Err(err));
        Self { rx }
    }
}

pub use worker::LocalLlm;
