//! What MCP tools cost a turn, and whether calls to one server wait for each other. Prints
//! Markdown rows for BENCHMARKS.md.
//!
//! The server is the tests' own (`tests/python/mcp_orders.py --http`: Python's threading HTTP
//! server, JSON-RPC by hand) on loopback, reached through the outbound guard.
//! 1. One `order_status` call through the hub (a JSON-RPC round trip over streamable HTTP).
//! 2. N turns at once, each calling `slow_lookup` (100 ms at the server) on that one server:
//!    wall time until every call has its answer. Calls sharing the server's session must
//!    not queue behind each other.
//! 3. One turn whose model asks for three `slow_lookup` calls at once, through the
//!    orchestrator with a model that answers at once: the round's reads run side by side.
//! 4. A server a Realtime client declares: connecting and listing its tools (what the first
//!    response that declares it waits for; later ones reuse it), and a turn whose model asks
//!    it for three `slow_lookup` calls at once.
//!
//! Run: `cargo bench -p switchboard-benches --bench mcp` (python3; no models needed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use switchboard_benches::{latency_row, latency_table, turn_text, turn_text_with};
use switchboard_e2e::mcp_server::HttpMcp;
use switchboard_pipeline::context::{ContextStage, EngineMetrics};
use switchboard_pipeline::llm::{ChatMessage, ChatRequest, LlmEvent, LlmProvider, LlmStream};
use switchboard_pipeline::orchestrator::Orchestrator;
use switchboard_pipeline::outbound::{OutboundClient, OutboundPolicy};
use switchboard_pipeline::persona::Personas;
use switchboard_pipeline::tools::client_mcp::{
    Approval, ClientMcpServer, ClientServer, ClientTools,
};
use switchboard_pipeline::tools::mcp::{McpHub, McpServerConfig, default_max_concurrent_calls};
use switchboard_pipeline::tools::{MemoryActions, SideEffect, ToolEngine, ToolEngineConfig};

const RUNS: usize = 300;
const ROUNDS: usize = 20;
/// How long each `slow_lookup` takes at the server.
const SLOW: Duration = Duration::from_millis(100);

/// Asks for the slow lookup it names (as the model is offered it) three times at once, then
/// repeats the last answer: no model time at all.
struct ThreeLookups(&'static str);

impl LlmProvider for ThreeLookups {
    fn name(&self) -> &str {
        "three-lookups"
    }
    fn stream(&self, request: ChatRequest) -> LlmStream {
        let events = match request.messages.last() {
            Some(ChatMessage::Tool { content, .. }) => vec![LlmEvent::Text(content.clone())],
            _ => (0..3)
                .flat_map(|index| {
                    [
                        LlmEvent::ToolCallStart {
                            index,
                            id: format!("c{index}"),
                            name: self.0.into(),
                        },
                        LlmEvent::ToolCallArguments {
                            index,
                            delta: json!({"seconds": SLOW.as_secs_f64()}).to_string(),
                        },
                    ]
                })
                .collect(),
        };
        Box::pin(futures_util::stream::iter(events.into_iter().map(Ok)))
    }
}

/// An orchestrator whose model asks for `tool` three times at once.
fn three_lookups(engine: &Arc<ToolEngine>, tool: &'static str) -> Orchestrator {
    Orchestrator::new(
        Arc::new(Personas::parse("").expect("personas")),
        ContextStage::new(Vec::new(), EngineMetrics::unregistered()),
        Arc::new(ThreeLookups(tool)),
        None,
    )
    .with_tools(Arc::clone(engine))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = HttpMcp::start(None, None);
    let allow = format!("127.0.0.1:{}", server.port);
    let config = McpServerConfig {
        command: None,
        args: Vec::new(),
        url: Some(format!("http://{allow}/mcp")),
        headers: BTreeMap::new(),
        effect: SideEffect::Read,
        effects: BTreeMap::new(),
        tools: None,
        timeout_ms: 10_000,
        max_concurrent_calls: default_max_concurrent_calls(),
    };
    let configs = BTreeMap::from([("shop".to_owned(), config)]);
    let policy = || OutboundPolicy::parse(&allow).expect("policy");
    let (hub, tools) = McpHub::connect(&configs, OutboundClient::new(policy())).await;
    let binding = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.mcp.clone())
            .unwrap_or_else(|| panic!("{name} listed"))
    };
    let (status, slow) = (binding("shop_order_status"), binding("shop_slow_lookup"));
    latency_table("Measure (loopback, Python MCP server)");

    let order: Map<String, Value> = [("order_id".to_owned(), json!("42"))].into_iter().collect();
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = hub.call(&status, &order, Duration::from_secs(5)).await;
        assert!(out.error.is_none(), "{out:?}");
        samples.push(t.elapsed());
    }
    latency_row(
        "MCP call over streamable HTTP (order_status)",
        &mut samples,
        2,
    );

    let wait: Map<String, Value> = [("seconds".to_owned(), json!(SLOW.as_secs_f64()))]
        .into_iter()
        .collect();
    for turns in [1, 8, 32] {
        let mut samples = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let calls = (0..turns).map(|_| hub.call(&slow, &wait, Duration::from_secs(30)));
            for out in futures_util::future::join_all(calls).await {
                assert!(out.error.is_none(), "{out:?}");
            }
            samples.push(t.elapsed());
        }
        latency_row(
            &format!(
                "{turns} turns at once, each a {} ms call to one MCP server: all answered",
                SLOW.as_millis()
            ),
            &mut samples,
            2,
        );
    }

    let engine = Arc::new(ToolEngine::new(ToolEngineConfig {
        tools: Default::default(),
        policy: policy(),
        action_ttl: Duration::from_secs(60),
        actions: Arc::new(MemoryActions::default()),
        audit: None,
        metrics: None,
        client_mcp: false,
        handoff: None,
    }));
    engine.attach_mcp(hub, tools.clone());
    let orchestrator = three_lookups(&engine, "shop_slow_lookup");
    let mut samples = Vec::new();
    for i in 0..ROUNDS {
        let t = Instant::now();
        let text = turn_text(&orchestrator, format!("s{i}"), "Look three things up").await;
        assert!(text.contains("slowly"), "{text}");
        samples.push(t.elapsed());
    }
    latency_row(
        &format!(
            "A turn with three {} ms MCP reads, model time excluded (orchestrator)",
            SLOW.as_millis()
        ),
        &mut samples,
        2,
    );
    client_declared(&engine, &allow).await;
    drop(server);
}

/// Rows 4: the same server declared by a client (`tools/client_mcp.rs`).
async fn client_declared(engine: &Arc<ToolEngine>, allow: &str) {
    let declared = ClientMcpServer {
        label: "orders".into(),
        url: format!("http://{allow}/mcp"),
        headers: BTreeMap::new(),
        allowed_tools: None,
        approval: Approval::Never,
    };
    let guard = || OutboundClient::new(OutboundPolicy::parse(allow).expect("policy"));
    let mut samples = Vec::new();
    let mut server = None;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let connected = ClientServer::connect(declared.clone(), guard()).await;
        samples.push(t.elapsed());
        server = Some(Arc::new(connected.expect("connects")));
    }
    latency_row(
        "Connecting a client-declared MCP server and listing its tools (a response's first declaration)",
        &mut samples,
        2,
    );
    let tools = ClientTools {
        servers: server.into_iter().collect(),
        reachable: Vec::new(),
    };
    let orchestrator = three_lookups(engine, "orders_slow_lookup");
    let mut samples = Vec::new();
    for i in 0..ROUNDS {
        let t = Instant::now();
        let text = turn_text_with(
            &orchestrator,
            format!("c{i}"),
            "Look three things up",
            tools.clone(),
        )
        .await;
        assert!(text.contains("slowly"), "{text}");
        samples.push(t.elapsed());
    }
    latency_row(
        &format!(
            "A turn with three {} ms calls to a client-declared MCP server, model time excluded",
            SLOW.as_millis()
        ),
        &mut samples,
        2,
    );
}
