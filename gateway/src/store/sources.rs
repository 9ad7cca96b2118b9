//! The database as the source of the profile and memory context engines.

use futures_util::future::BoxFuture;
use switchboard_pipeline::context::EngineError;
use switchboard_pipeline::context::memory::{MemoryItem, MemorySource};
use switchboard_pipeline::context::profile::ProfileSource;
use switchboard_pipeline::context::summary::{OlderTurns, SummarySource};

use super::Store;

fn engine_err(e: super::StoreError) -> EngineError {
    EngineError(e.to_string())
}

impl ProfileSource for Store {
    fn attributes<'a>(
        &'a self,
        tenant: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, serde_json::Value)>, EngineError>> {
        Box::pin(async move {
            let profile = self.get_profile(tenant, user).await.map_err(engine_err)?;
            Ok(profile
                .map(|p| p.attributes.into_iter().collect())
                .unwrap_or_default())
        })
    }
}

impl MemorySource for Store {
    fn memories<'a>(
        &'a self,
        tenant: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<MemoryItem>, EngineError>> {
        Box::pin(async move {
            let memories = self.memories(tenant, user).await.map_err(engine_err)?;
            Ok(memories
                .into_iter()
                .map(|m| MemoryItem {
                    text: m.text,
                    kind: m.kind,
                    embedding: m.embedding,
                })
                .collect())
        })
    }
}

impl SummarySource for Store {
    fn older_turns<'a>(
        &'a self,
        tenant: &'a str,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Option<OlderTurns>, EngineError>> {
        Box::pin(async move {
            let summary = self
                .session_summary(tenant, session)
                .await
                .map_err(engine_err)?;
            Ok(summary.map(|(text, covers)| OlderTurns { text, covers }))
        })
    }
}
