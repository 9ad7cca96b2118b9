//! Memory: per-user facts and conversation summaries, written after a turn (off the hot
//! path) and retrieved by relevance to what the user just said (cosine similarity of MiniLM
//! embeddings, stored with each memory).
//!
//! Facts are the user's own first-person statements ("my name is Ada", "I'm vegetarian",
//! "I live in Porto"), taken from their messages as they were said. Questions and requests
//! are not facts.

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use switchboard_models::embed::{TextEmbedder, dot};

use super::{
    ContextEngine, ContextItem, ContextPart, EngineError, EngineHealth, LookupCtx, PartKind,
};

/// A stored memory as the engine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryItem {
    pub text: String,
    /// `fact` or `summary`.
    pub kind: String,
    /// Unit-length embedding of `text` (empty: never embedded, ranked last).
    pub embedding: Vec<f32>,
}

/// Where memories live.
pub trait MemorySource: Send + Sync {
    fn memories<'a>(
        &'a self,
        tenant: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<MemoryItem>, EngineError>>;
}

/// Memories a turn gets at most.
pub const DEFAULT_MEMORY_K: usize = 4;
/// Below this cosine similarity a memory is unrelated to the question.
const MIN_SIMILARITY: f32 = 0.15;

/// The embedding model, once loaded (it loads in the background at start-up).
pub type SharedEmbedder = Arc<OnceLock<Arc<dyn TextEmbedder>>>;

pub struct MemoryEngine {
    source: Arc<dyn MemorySource>,
    embedder: SharedEmbedder,
    top_k: usize,
}

impl std::fmt::Debug for MemoryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryEngine")
            .field("top_k", &self.top_k)
            .finish_non_exhaustive()
    }
}

impl MemoryEngine {
    pub fn new(source: Arc<dyn MemorySource>, embedder: SharedEmbedder, top_k: usize) -> Self {
        Self {
            source,
            embedder,
            top_k,
        }
    }
}

/// The `k` memories most similar to `query` (a unit vector), best first.
pub fn rank(memories: Vec<MemoryItem>, query: &[f32], k: usize) -> Vec<ContextItem> {
    let mut scored: Vec<(f32, MemoryItem)> = memories
        .into_iter()
        .filter(|m| m.embedding.len() == query.len())
        .map(|m| (dot(&m.embedding, query), m))
        .filter(|(s, _)| *s >= MIN_SIMILARITY)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(k)
        .map(|(score, m)| ContextItem {
            text: m.text,
            source: m.kind,
            score,
        })
        .collect()
}

impl ContextEngine for MemoryEngine {
    fn name(&self) -> &str {
        "memory"
    }

    fn kind(&self) -> PartKind {
        PartKind::Memory
    }

    fn health(&self) -> EngineHealth {
        match self.embedder.get() {
            Some(_) => EngineHealth::Ready,
            None => EngineHealth::Unavailable("the embedding model is still loading".into()),
        }
    }

    fn lookup<'a>(&'a self, ctx: &'a LookupCtx) -> BoxFuture<'a, Result<ContextPart, EngineError>> {
        Box::pin(async move {
            let mut part = ContextPart {
                engine: self.name().to_owned(),
                kind: PartKind::Memory,
                items: Vec::new(),
            };
            let Some(user) = &ctx.user else {
                return Ok(part);
            };
            let memories = self.source.memories(&ctx.tenant, user).await?;
            if memories.is_empty() || ctx.query.trim().is_empty() {
                return Ok(part);
            }
            let embedder = self
                .embedder
                .get()
                .ok_or_else(|| EngineError("the embedding model is still loading".into()))?;
            let query = ctx.query_embedding(embedder.as_ref()).await?;
            part.items = rank(memories, query, self.top_k);
            Ok(part)
        })
    }
}

/// First-person statements that are worth remembering.
const FACT_OPENINGS: &[&str] = &[
    "my ",
    "i am ",
    "i'm ",
    "im ",
    "i live",
    "i work",
    "i prefer",
    "i like",
    "i love",
    "i hate",
    "i don't",
    "i do not",
    "i can't",
    "i cannot",
    "i have ",
    "i've ",
    "i own",
    "i speak",
    "i was born",
    "call me ",
    "we are ",
    "we're ",
    "our ",
];
/// Openings that make a sentence a request, not a fact ("I'd like to book...").
const NOT_FACTS: &[&str] = &[
    "i'd like",
    "i would like",
    "i want to know",
    "i wonder",
    "i need to know",
];

/// The user's sentences that state facts about themselves, trimmed, in order.
pub fn extract_facts(user_text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = user_text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let end = matches!(b, b'.' | b'!' | b'?' | b'\n') || i + 1 == bytes.len();
        if !end {
            continue;
        }
        let sentence = user_text[start..=i].trim();
        start = i + 1;
        if sentence.ends_with('?') || sentence.len() < 6 || sentence.len() > 300 {
            continue;
        }
        let lower = sentence.to_lowercase();
        let lower = lower.trim_start_matches(|c: char| !c.is_alphanumeric());
        let lower = ["and ", "also ", "well ", "so ", "oh ", "by the way "]
            .iter()
            .fold(lower, |s, p| s.strip_prefix(p).unwrap_or(s));
        let lower = lower.trim_start_matches(|c: char| !c.is_alphanumeric());
        if NOT_FACTS.iter().any(|p| lower.starts_with(p)) {
            continue;
        }
        if FACT_OPENINGS.iter().any(|p| lower.starts_with(p)) {
            out.push(sentence.trim_end_matches(['.', '!', '\n']).to_owned());
        }
    }
    out
}

/// The name a user gives ("my name is Ada", "call me Ada", "I'm Ada Lovelace" is not taken:
/// too often "I'm fine"), for the profile.
pub fn extract_name(user_text: &str) -> Option<String> {
    for marker in ["my name is ", "call me ", "my name's "] {
        if let Some(at) = super::find_ci(user_text, marker) {
            let rest = &user_text[at + marker.len()..];
            let name: Vec<&str> = rest
                .split(|c: char| !(c.is_alphabetic() || c == '-' || c == '\''))
                .filter(|w| !w.is_empty())
                .take(2)
                .take_while(|w| w.chars().next().is_some_and(char::is_uppercase))
                .collect();
            if !name.is_empty() {
                return Some(name.join(" "));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn facts_are_first_person_statements() {
        let text = "Hi there. My name is Ada and I'm vegetarian! I live in Porto. \
                    Can you book a table? I'd like a window seat. Also I have two kids.";
        assert_eq!(
            extract_facts(text),
            [
                "My name is Ada and I'm vegetarian",
                "I live in Porto",
                "Also I have two kids"
            ]
        );
        assert!(extract_facts("What is my order status?").is_empty());
    }

    #[test]
    fn names_are_taken_only_when_given() {
        assert_eq!(
            extract_name("Hello, my name is Ada Lovelace."),
            Some("Ada Lovelace".into())
        );
        assert_eq!(extract_name("please call me Bob"), Some("Bob".into()));
        assert_eq!(extract_name("my name is not important"), None);
        assert_eq!(extract_name("I'm fine thanks"), None);
    }

    #[test]
    fn ranking_keeps_related_memories_only() {
        let m = |text: &str, v: Vec<f32>| MemoryItem {
            text: text.into(),
            kind: "fact".into(),
            embedding: v,
        };
        let items = rank(
            vec![
                m("likes tea", vec![0.0, 1.0]),
                m("vegetarian", vec![1.0, 0.0]),
                m("half", vec![0.6, 0.8]),
                m("old, unembedded", vec![]),
            ],
            &[1.0, 0.0],
            2,
        );
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, ["vegetarian", "half"]);
    }

    proptest! {
        #[test]
        fn extraction_never_panics(s in "\\PC{0,300}") {
            for f in extract_facts(&s) {
                prop_assert!(!f.is_empty());
            }
            let _ = extract_name(&s);
        }
    }
}
