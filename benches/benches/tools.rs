//! What server-side tools cost a turn. Prints Markdown rows for BENCHMARKS.md.
//!
//! 1. One GET to a local order system: a plain pooled reqwest client against the outbound
//!    guard (resolve, vet, a client pinned to the vetted address per hop, body limit).
//! 2. A read tool through the tool engine (render, guard, HTTP, classify, trim, audit off).
//! 3. A whole read-tool turn through the orchestrator with a model that answers at once:
//!    everything the gateway adds around the tool call (two model rounds, one tool run).
//! 4. Proposing tools from an OpenAPI document (the order system's own).
//!
//! Run: `cargo bench -p switchboard-benches --bench tools` (no models needed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_benches::{latency_row, latency_table, turn_text};
use switchboard_e2e::fake_orders::{FakeOrders, OPENAPI};
use switchboard_pipeline::context::{ContextStage, EngineMetrics};
use switchboard_pipeline::llm::{ChatMessage, ChatRequest, LlmEvent, LlmProvider, LlmStream};
use switchboard_pipeline::orchestrator::Orchestrator;
use switchboard_pipeline::outbound::{OutboundClient, OutboundPolicy, OutboundRequest};
use switchboard_pipeline::persona::Personas;
use switchboard_pipeline::tools::engine::ToolScope;
use switchboard_pipeline::tools::{MemoryActions, ToolEngine, ToolEngineConfig, openapi};

const RUNS: usize = 300;

/// Calls `lookup_order` for a user message, repeats a tool's answer: no model time at all.
struct InstantModel;

impl LlmProvider for InstantModel {
    fn name(&self) -> &str {
        "instant"
    }
    fn stream(&self, request: ChatRequest) -> LlmStream {
        let events = match request.messages.last() {
            Some(ChatMessage::Tool { content, .. }) => vec![LlmEvent::Text(content.clone())],
            _ => vec![
                LlmEvent::ToolCallStart {
                    index: 0,
                    id: "c1".into(),
                    name: "lookup_order".into(),
                },
                LlmEvent::ToolCallArguments {
                    index: 0,
                    delta: r#"{"order_id": "42"}"#.into(),
                },
            ],
        };
        Box::pin(futures_util::stream::iter(events.into_iter().map(Ok)))
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let orders = FakeOrders::start();
    let url = format!("{}/orders/42", orders.base_url());
    latency_table("Measure (loopback)");

    // First: it installs the process's TLS crypto provider, which reqwest needs.
    let guard =
        OutboundClient::new(OutboundPolicy::parse(&orders.addr.to_string()).expect("policy"));
    let plain = reqwest::Client::new();
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = plain.get(&url).send().await.expect("plain GET");
        let _ = r.bytes().await;
        samples.push(t.elapsed());
    }
    latency_row("GET, plain pooled reqwest client", &mut samples, 2);

    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        guard
            .send(OutboundRequest {
                method: reqwest::Method::GET,
                url: url.clone(),
                headers: Vec::new(),
                body: None,
                timeout: Duration::from_secs(5),
                max_bytes: 8192,
            })
            .await
            .expect("guarded GET");
        samples.push(t.elapsed());
    }
    latency_row("GET through the outbound guard", &mut samples, 2);

    let personas = Personas::parse(&format!(
        r#"
[tools.lookup_order]
description = "Look up an order"
effect = "read"
parameters = {{ type = "object", properties = {{ order_id = {{ type = "string" }} }}, required = ["order_id"] }}
http = {{ url = "{}/orders/{{order_id}}" }}
"#,
        orders.base_url()
    ))
    .expect("personas");
    let engine = Arc::new(ToolEngine::new(ToolEngineConfig {
        tools: personas.tools().clone(),
        policy: OutboundPolicy::parse(&orders.addr.to_string()).expect("policy"),
        action_ttl: Duration::from_secs(60),
        actions: Arc::new(MemoryActions::default()),
        audit: None,
        metrics: None,
        client_mcp: false,
        handoff: None,
    }));
    let tool = personas.tools()["lookup_order"].clone();
    let call = switchboard_pipeline::llm::ToolCall {
        id: "c1".into(),
        name: "lookup_order".into(),
        arguments: r#"{"order_id": "42"}"#.into(),
    };
    let scope = ToolScope::default();
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = engine.run(&scope, &tool, &call, None).await;
        assert!(out.error.is_none(), "{out:?}");
        samples.push(t.elapsed());
    }
    latency_row("Read tool run (engine)", &mut samples, 2);

    let orchestrator = Orchestrator::new(
        Arc::new(personas),
        ContextStage::new(Vec::new(), EngineMetrics::unregistered()),
        Arc::new(InstantModel),
        None,
    )
    .with_tools(Arc::clone(&engine));
    let mut samples = Vec::new();
    for i in 0..RUNS {
        let t = Instant::now();
        let text = turn_text(&orchestrator, format!("s{i}"), "Where is my order?").await;
        assert!(text.contains("shipped"), "{text}");
        samples.push(t.elapsed());
    }
    latency_row(
        "Read-tool turn, model time excluded (orchestrator)",
        &mut samples,
        2,
    );

    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let p = openapi::propose(OPENAPI, Some("http://orders.internal")).expect("proposes");
        assert_eq!(p.len(), 2);
        samples.push(t.elapsed());
    }
    latency_row("OpenAPI import, 2 operations (propose)", &mut samples, 2);
}
