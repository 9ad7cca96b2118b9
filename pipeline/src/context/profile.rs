//! Profile: per-user attributes (name, language, tier, preferences) read on every turn from
//! wherever the gateway keeps them (the database), given to the model as short lines.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{
    ContextEngine, ContextItem, ContextPart, EngineError, EngineHealth, LookupCtx, PartKind,
};

/// Where profiles live. Attributes are (name, value) pairs; values are rendered as text.
pub trait ProfileSource: Send + Sync {
    fn attributes<'a>(
        &'a self,
        tenant: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, serde_json::Value)>, EngineError>>;
}

/// Attributes shown first, in this order; the rest follow alphabetically.
const FIRST: &[&str] = &["name", "language", "tier", "preferences"];

pub struct ProfileEngine {
    source: Arc<dyn ProfileSource>,
}

impl std::fmt::Debug for ProfileEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileEngine").finish_non_exhaustive()
    }
}

impl ProfileEngine {
    pub fn new(source: Arc<dyn ProfileSource>) -> Self {
        Self { source }
    }
}

fn render(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Profile attributes as prompt items, most important first.
pub fn profile_items(mut attributes: Vec<(String, serde_json::Value)>) -> Vec<ContextItem> {
    let rank = |k: &str| FIRST.iter().position(|f| *f == k).unwrap_or(FIRST.len());
    attributes.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
    let n = attributes.len() as f32;
    attributes
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .enumerate()
        .map(|(i, (k, v))| ContextItem {
            text: format!("{}: {}", k.replace('_', " "), render(&v)),
            source: format!("profile.{k}"),
            score: n - i as f32,
        })
        .collect()
}

impl ContextEngine for ProfileEngine {
    fn name(&self) -> &str {
        "profile"
    }

    fn kind(&self) -> PartKind {
        PartKind::Profile
    }

    fn health(&self) -> EngineHealth {
        EngineHealth::Ready
    }

    fn lookup<'a>(&'a self, ctx: &'a LookupCtx) -> BoxFuture<'a, Result<ContextPart, EngineError>> {
        Box::pin(async move {
            let items = match &ctx.user {
                Some(user) => profile_items(self.source.attributes(&ctx.tenant, user).await?),
                None => Vec::new(),
            };
            Ok(ContextPart {
                engine: self.name().to_owned(),
                kind: PartKind::Profile,
                items,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn important_attributes_come_first() {
        let items = profile_items(vec![
            ("favourite_colour".into(), json!("green")),
            ("tier".into(), json!("gold")),
            ("name".into(), json!("Ada")),
            ("preferences".into(), json!(["window seat", "vegetarian"])),
            ("gone".into(), json!(null)),
        ]);
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "name: Ada",
                "tier: gold",
                "preferences: window seat, vegetarian",
                "favourite colour: green"
            ]
        );
        assert!(items.windows(2).all(|w| w[0].score > w[1].score));
    }
}
