//! The orchestrator's context stage: pluggable engines (knowledge, memory, profile) looked
//! up concurrently, each under its own deadline, and the prompt assembled from what came
//! back under a token budget.
//!
//! An engine is anything that implements [`ContextEngine`]; the gateway builds the set from
//! its configuration. A late or failing engine contributes nothing and is reported in the
//! turn's [`ContextOutcome::degrade_reasons`]; it never fails the turn.

pub mod knowledge;
pub mod memory;
pub mod profile;
mod prompt;
mod stage;
pub mod summary;

use futures_util::future::BoxFuture;
use switchboard_models::embed::TextEmbedder;

pub use prompt::{
    Assembled, PromptInputs, USER_WORDS_HEADING, approx_tokens, assemble, split_user_message,
};
pub use stage::{ContextOutcome, ContextPlan, ContextStage, DegradeReason, EngineMetrics};

/// Byte offset of `needle` (ASCII) in `hay`, ignoring ASCII case; always a char boundary.
pub(crate) fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    (0..=h.len().checked_sub(n.len())?).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// What a lookup is about.
#[derive(Debug, Clone, Default)]
pub struct LookupCtx {
    pub tenant: String,
    /// The end user, when the channel knows them (memory and profile need one).
    pub user: Option<String>,
    pub session: Option<String>,
    /// The user's latest words.
    pub query: String,
    /// The query's embedding, computed by the first engine that needs it and shared with
    /// the others (knowledge and memory both rank by it).
    pub query_vector: tokio::sync::OnceCell<Vec<f32>>,
}

impl LookupCtx {
    /// The query's unit-length embedding, computed once per turn however many engines ask.
    pub async fn query_embedding(
        &self,
        embedder: &dyn TextEmbedder,
    ) -> Result<&[f32], EngineError> {
        self.query_vector
            .get_or_try_init(|| async {
                embedder
                    .embed(vec![self.query.clone()])
                    .await
                    .map_err(|e| EngineError(e.to_string()))?
                    .pop()
                    .ok_or_else(|| EngineError("the embedder returned no vector".into()))
            })
            .await
            .map(Vec::as_slice)
    }
}

/// Which prompt section an engine's items go to, in the order they are given room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartKind {
    Profile,
    Memory,
    Knowledge,
}

impl PartKind {
    pub fn heading(self) -> &'static str {
        match self {
            Self::Profile => "About the user",
            Self::Memory => "What you remember from earlier conversations",
            Self::Knowledge => "Reference material (answer from it when it is relevant)",
        }
    }
}

/// One fact, passage or attribute an engine found.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextItem {
    pub text: String,
    /// Where it came from (document title, memory id, attribute name).
    pub source: String,
    /// Higher is more relevant; only comparable within one engine.
    pub score: f32,
}

/// An engine's answer to one lookup, most relevant item first.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextPart {
    pub engine: String,
    pub kind: PartKind,
    pub items: Vec<ContextItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineHealth {
    Ready,
    /// Not usable now (model missing, store down): lookups are skipped and reported.
    Unavailable(String),
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

/// A context source. Lookups must be cancel-safe: the stage drops them at their deadline.
pub trait ContextEngine: Send + Sync {
    /// Stable name, used in personas, metrics and degrade reasons.
    fn name(&self) -> &str;
    fn kind(&self) -> PartKind;
    fn health(&self) -> EngineHealth;
    fn lookup<'a>(&'a self, ctx: &'a LookupCtx) -> BoxFuture<'a, Result<ContextPart, EngineError>>;
}
