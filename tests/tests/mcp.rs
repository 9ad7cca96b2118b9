//! MCP servers as tool sources end to end: a small MCP server written for the test
//! (`tests/python/mcp_orders.py`, JSON-RPC by hand) over stdio and over streamable HTTP,
//! its tools listed with the configured side-effect levels and called from a chat; a write
//! waits for "yes" like any other.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::gateway::{Gateway, chat_completion, http_get, reply_text};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

fn server_script() -> String {
    format!("{}/python/mcp_orders.py", env!("CARGO_MANIFEST_DIR"))
}

/// The HTTP flavour of the test server, killed on drop.
struct HttpMcp {
    child: Child,
    port: u16,
}

impl HttpMcp {
    fn start(log: &str) -> Self {
        let mut child = Command::new("python3")
            .args([server_script().as_str(), "--http"])
            .env("MCP_ORDERS_LOG", log)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the MCP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port = line.trim().parse().expect("the server prints its port");
        Self { child, port }
    }
}

impl Drop for HttpMcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chat_reply(gw: &Gateway, session: &str, messages: &[(&str, &str)]) -> String {
    reply_text(&chat_completion(gw, session, messages))
}

fn logged(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn mcp_tools_over_stdio_and_http_are_called_from_a_chat() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("calls.jsonl");
    let log_s = log.to_str().expect("utf-8").to_owned();
    let http = HttpMcp::start(&log_s);
    let personas = dir.path().join("personas.toml");
    std::fs::write(
        &personas,
        format!(
            r#"
[mcp.shop]
command = "python3"
args = ["{script}"]
effects = {{ order_status = "read" }}

[mcp.remote]
url = "http://127.0.0.1:{port}/mcp"
effects = {{ order_status = "read" }}
tools = ["order_status"]
"#,
            script = server_script(),
            port = http.port
        ),
    )
    .expect("persona file");
    let llm = ScriptedLlm::start(Script::default());
    let allow = format!("127.0.0.1:{}", http.port);
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_PERSONAS", personas.to_str().expect("utf-8")),
            ("SWITCHBOARD_OUTBOUND_ALLOW", &allow),
            ("MCP_ORDERS_LOG", &log_s),
        ],
    );

    // The servers connect in the background; their tools appear once listed.
    let mut effects = std::collections::BTreeMap::new();
    for _ in 0..100 {
        let (_, body) = http_get(gw.addr, "/v1/admin/tools").expect("answers");
        let v: Value = serde_json::from_str(&body).expect("json");
        effects = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["name"].as_str().unwrap_or_default().to_owned(),
                    t["effect"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if effects.len() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let expected: std::collections::BTreeMap<String, String> = [
        ("remote_order_status", "read"),
        ("shop_issue_coupon", "write"),
        ("shop_order_status", "read"),
        ("shop_wipe_orders", "dangerous"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(
        effects, expected,
        "configured levels; the destructive hint raises, nothing lowers"
    );

    // A read tool over stdio runs at once.
    llm.call_tool("status", "shop_order_status", json!({"order_id": "42"}));
    let said = chat_reply(
        &gw,
        "s-mcp-1",
        &[("user", "What is the status of order 42?")],
    );
    assert!(said.contains("shipped") && said.contains("DHL"), "{said}");

    // Over streamable HTTP too.
    llm.call_tool("remote", "remote_order_status", json!({"order_id": "7"}));
    let said = chat_reply(
        &gw,
        "s-mcp-2",
        &[("user", "Ask the remote shop about order 7.")],
    );
    assert!(said.contains("processing"), "{said}");

    // A tool error reaches the model as an error it can explain.
    llm.call_tool("status", "shop_order_status", json!({"order_id": "999"}));
    let said = chat_reply(
        &gw,
        "s-mcp-3",
        &[("user", "What is the status of order 999?")],
    );
    assert!(
        said.contains("tool_error") && said.contains("no order 999"),
        "{said}"
    );

    // A write waits for yes.
    llm.call_tool("coupon", "shop_issue_coupon", json!({"percent": 10}));
    let ask = [("user", "Can I get a coupon?")];
    let question = chat_reply(&gw, "s-mcp-4", &ask);
    assert!(question.contains("Shall I go ahead?"), "{question}");
    assert!(
        !logged(&log).iter().any(|c| c["tool"] == "issue_coupon"),
        "nothing ran before yes"
    );
    let said = chat_reply(
        &gw,
        "s-mcp-4",
        &[ask[0], ("assistant", &question), ("user", "yes please")],
    );
    assert!(said.contains("SAVE10"), "{said}");

    let calls = logged(&log);
    let tools: Vec<&str> = calls.iter().filter_map(|c| c["tool"].as_str()).collect();
    assert_eq!(
        tools,
        [
            "order_status",
            "order_status",
            "order_status",
            "issue_coupon"
        ],
        "{calls:?}"
    );
}
