//! The orchestrator's context stage and the gateway's own chat overhead. Prints Markdown rows
//! for BENCHMARKS.md.
//!
//! 1. Knowledge lookup on a 10k-chunk corpus (real MiniLM embeddings, tantivy BM25, fusion):
//!    p50/p95 of hybrid search (query embedding included), BM25 alone, dense alone, and the
//!    whole context stage with its deadline.
//! 2. Chat completion overhead: the same streamed completion from the scripted LLM directly
//!    and through the gateway (default persona, empty knowledge base), p50 of the difference.
//!
//! Run: `cargo bench -p switchboard-benches --bench context` (models fetched, `make build`).

use std::sync::Arc;
use std::time::Instant;

use switchboard_benches::{latency_row, latency_table, models_dir};
use switchboard_e2e::gateway::{Gateway, http_post_json};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_models::embed::{MiniLm, TextEmbedder};
use switchboard_models::provision::catalog::MINILM_DIR;
use switchboard_pipeline::context::knowledge::{
    DEFAULT_TOP_K, KnowledgeEngine, KnowledgeIndex, SearchMode,
};
use switchboard_pipeline::context::{
    ContextEngine, ContextPlan, ContextStage, EngineMetrics, LookupCtx,
};

const CHUNKS: usize = 10_000;
const QUERIES: usize = 200;
const CHAT_RUNS: usize = 100;

const TOPICS: &[&str] = &[
    "returns",
    "refunds",
    "shipping",
    "delivery",
    "warranty",
    "repairs",
    "sizing",
    "payments",
    "gift cards",
    "accounts",
    "passwords",
    "stores",
    "pickup",
    "discounts",
    "loyalty points",
    "jackets",
    "boots",
    "tents",
    "backpacks",
    "sleeping bags",
];
const WORDS: &[&str] = &[
    "customer",
    "order",
    "parcel",
    "days",
    "receipt",
    "label",
    "store",
    "online",
    "policy",
    "item",
    "price",
    "member",
    "weather",
    "waterproof",
    "trail",
    "size",
    "colour",
    "fabric",
    "team",
    "support",
    "email",
    "phone",
    "week",
    "return",
    "exchange",
    "free",
    "express",
    "international",
    "card",
    "account",
    "season",
    "sale",
    "stock",
    "warehouse",
    "courier",
];

/// A deterministic pseudo-random corpus: 100 documents of 100 sections, one chunk each.
fn corpus() -> Vec<(String, String)> {
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) as usize % n
    };
    let docs = CHUNKS / 100;
    (0..docs)
        .map(|d| {
            let mut text = String::new();
            for s in 0..100 {
                let topic = TOPICS[next(TOPICS.len())];
                text.push_str(&format!("## {topic} note {d}-{s}\n"));
                for _ in 0..4 {
                    let words: Vec<&str> = (0..14).map(|_| WORDS[next(WORDS.len())]).collect();
                    text.push_str(&format!("About {topic}: {}. ", words.join(" ")));
                }
                text.push_str("\n\n");
            }
            (format!("doc-{d}.md"), text)
        })
        .collect()
}

async fn knowledge() {
    let embedder: Arc<dyn TextEmbedder> =
        Arc::new(MiniLm::load(&models_dir().join(MINILM_DIR), 1024).expect("MiniLM loads"));
    let index = KnowledgeIndex::open(None, embedder).expect("index");
    let started = Instant::now();
    for (id, text) in corpus() {
        index
            .add_document("bench", &id, &id, &text)
            .await
            .expect("indexed");
    }
    let chunks = index.chunk_count("bench");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "indexed {chunks} chunks in {secs:.0} s ({:.0} chunks/s, embeddings included)\n",
        chunks as f64 / secs
    );
    let queries: Vec<String> = (0..QUERIES)
        .map(|i| {
            format!(
                "how long do {} take for a {} {}?",
                TOPICS[i % TOPICS.len()],
                WORDS[(i * 7) % WORDS.len()],
                WORDS[(i * 13) % WORDS.len()]
            )
        })
        .collect();
    latency_table(&format!("knowledge, {chunks} chunks"));
    for (name, mode) in [
        (
            "hybrid search (query embedding + BM25 + dense + fusion)",
            SearchMode::Hybrid,
        ),
        ("BM25 only", SearchMode::Bm25),
        (
            "dense only (query embedding + exact scan)",
            SearchMode::Dense,
        ),
    ] {
        let mut samples = Vec::new();
        for q in &queries {
            let t = Instant::now();
            let hits = index.search("bench", q, 3, mode).await.expect("search");
            samples.push(t.elapsed());
            assert!(!hits.is_empty());
        }
        latency_row(name, &mut samples, 1);
    }
    let cell = Arc::new(std::sync::OnceLock::new());
    let _ = cell.set(index);
    let engines: Vec<Arc<dyn ContextEngine>> =
        vec![Arc::new(KnowledgeEngine::new(cell, DEFAULT_TOP_K))];
    let stage = ContextStage::new(engines, EngineMetrics::unregistered());
    let mut samples = Vec::new();
    let mut degraded = 0;
    for q in &queries {
        let ctx = LookupCtx {
            tenant: "bench".into(),
            query: q.clone(),
            ..LookupCtx::default()
        };
        let t = Instant::now();
        let out = stage.run(&ctx, &ContextPlan::default()).await;
        samples.push(t.elapsed());
        degraded += usize::from(out.degraded());
    }
    latency_row(
        &format!("context stage (knowledge engine, 500 ms deadline; {degraded} degraded)"),
        &mut samples,
        1,
    );
    println!();
}

fn chat_overhead() {
    let llm = ScriptedLlm::start(Script {
        first_token_ms: 0,
        token_ms: 0,
        ..Script::default()
    });
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let body = serde_json::json!({"model": "scripted", "stream": true,
        "messages": [{"role": "user", "content": "What is the weather like in Paris?"}]})
    .to_string();
    let timed = |addr, path: &str| {
        let mut samples = Vec::new();
        for _ in 0..CHAT_RUNS {
            let t = Instant::now();
            let (status, text) = http_post_json(addr, path, &body).expect("answered");
            samples.push(t.elapsed());
            assert_eq!(status, 200, "{text}");
            assert!(text.contains("[DONE]"), "{text}");
        }
        samples
    };
    // Warm both paths first.
    timed(llm.addr, "/v1/chat/completions");
    timed(gw.addr, "/v1/chat/completions");
    let mut direct = timed(llm.addr, "/v1/chat/completions");
    let mut through = timed(gw.addr, "/v1/chat/completions");
    latency_table("streamed chat completion");
    let (d50, d95) = latency_row("scripted LLM directly", &mut direct, 2);
    let (g50, g95) = latency_row("through the gateway", &mut through, 2);
    println!(
        "| gateway overhead | {:.2} ms | {:.2} ms | |",
        g50 - d50,
        g95 - d95
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let which = std::env::var("SWITCHBOARD_BENCH").unwrap_or_else(|_| "knowledge,chat".into());
    if which.contains("knowledge") {
        rt.block_on(knowledge());
    }
    if which.contains("chat") {
        chat_overhead();
    }
}
