//! Knowledge: a tenant's uploaded documents, chunked and indexed for hybrid retrieval, and
//! the context engine that looks them up for each turn.

mod analyzer;
mod chunk;
mod document;
mod index;

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;

pub use chunk::{Chunk, TARGET_CHARS, chunk};
pub use document::{DocError, DocKind, to_text};
pub use index::{DocumentInfo, Hit, IndexError, KnowledgeIndex, SearchMode};

use super::{
    ContextEngine, ContextItem, ContextPart, EngineError, EngineHealth, LookupCtx, PartKind,
};

/// Chunks a turn gets by default.
pub const DEFAULT_TOP_K: usize = 3;

/// The knowledge context engine. The index may arrive after the engine is built (the
/// embedding model loads in the background); until then lookups report `unavailable`.
#[derive(Debug, Clone)]
pub struct KnowledgeEngine {
    index: Arc<OnceLock<KnowledgeIndex>>,
    top_k: usize,
}

impl KnowledgeEngine {
    pub fn new(index: Arc<OnceLock<KnowledgeIndex>>, top_k: usize) -> Self {
        Self { index, top_k }
    }
}

impl ContextEngine for KnowledgeEngine {
    fn name(&self) -> &str {
        "knowledge"
    }

    fn kind(&self) -> PartKind {
        PartKind::Knowledge
    }

    fn health(&self) -> EngineHealth {
        match self.index.get() {
            Some(_) => EngineHealth::Ready,
            None => EngineHealth::Unavailable("the knowledge index is still loading".into()),
        }
    }

    fn lookup<'a>(&'a self, ctx: &'a LookupCtx) -> BoxFuture<'a, Result<ContextPart, EngineError>> {
        Box::pin(async move {
            let index = self
                .index
                .get()
                .ok_or_else(|| EngineError("the knowledge index is still loading".into()))?;
            let hits = if index.chunk_count(&ctx.tenant) == 0 || ctx.query.trim().is_empty() {
                Vec::new()
            } else {
                let query_vector = ctx.query_embedding(index.embedder().as_ref()).await?;
                index
                    .search_embedded(
                        &ctx.tenant,
                        &ctx.query,
                        query_vector,
                        self.top_k,
                        SearchMode::Hybrid,
                    )
                    .await
                    .map_err(|e| EngineError(e.to_string()))?
            };
            Ok(ContextPart {
                engine: self.name().to_owned(),
                kind: PartKind::Knowledge,
                items: hits
                    .into_iter()
                    .map(|h| ContextItem {
                        text: h.text,
                        source: h.doc_id,
                        score: h.score,
                    })
                    .collect(),
            })
        })
    }
}
