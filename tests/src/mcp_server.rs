//! The tests' own MCP server (`tests/python/mcp_orders.py`), for the e2e tests and the
//! benchmarks: its script, its streamable-HTTP flavour run as a child process, and that
//! flavour with its calls logged, for tests that check what the server was asked.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The server's script (stdio by default, `--http` for streamable HTTP).
pub fn script() -> String {
    format!("{}/python/mcp_orders.py", env!("CARGO_MANIFEST_DIR"))
}

/// The HTTP flavour on a free loopback port, killed on drop.
pub struct HttpMcp {
    child: Child,
    pub port: u16,
}

impl HttpMcp {
    /// Calls logged to `log` (if given). With `token`, requests without
    /// `Authorization: Bearer <token>` are refused.
    pub fn start(log: Option<&str>, token: Option<&str>) -> Self {
        let mut child = Command::new("python3")
            .args([script().as_str(), "--http"])
            .env("MCP_ORDERS_LOG", log.unwrap_or_default())
            .env("MCP_ORDERS_TOKEN", token.unwrap_or_default())
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

/// The HTTP flavour logging its calls to a scratch folder, for tests that look at what the
/// server was asked (each logged line: the call's `session`, JSON-RPC `id`, `tool`,
/// `arguments` and the calls `running` as it started; cancellations and the calls they
/// stopped).
pub struct LoggedMcp {
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    pub http: HttpMcp,
}

impl LoggedMcp {
    /// With `token`, requests without `Authorization: Bearer <token>` are refused.
    pub fn start(token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("calls.jsonl");
        let http = HttpMcp::start(Some(log.to_str().expect("utf-8")), token);
        Self { dir, log, http }
    }

    /// Its endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.http.port)
    }

    /// Its address, for `SWITCHBOARD_OUTBOUND_ALLOW`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.http.port)
    }

    /// Everything logged so far.
    pub fn logged(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The names of the tools called, in order.
    pub fn tools_called(&self) -> Vec<String> {
        self.logged()
            .iter()
            .filter_map(|c| c["tool"].as_str().map(str::to_owned))
            .collect()
    }

    /// The logged calls of `tool`.
    pub fn calls_of(&self, tool: &str) -> Vec<Value> {
        self.logged()
            .into_iter()
            .filter(|c| c["tool"] == tool)
            .collect()
    }

    /// The logged `slow_lookup` call asked to take `seconds`, once it has started (waits up
    /// to 10 s).
    pub fn started(&self, seconds: u64) -> Value {
        for _ in 0..100 {
            if let Some(c) = self
                .calls_of("slow_lookup")
                .into_iter()
                .find(|c| c["arguments"]["seconds"] == seconds)
            {
                return c;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no slow_lookup({seconds}) started: {:?}", self.logged());
    }

    /// Wait (up to 5 s) until the server has been told to cancel `call` (a logged call: its
    /// session and JSON-RPC id) and has stopped it; the reason it was given.
    pub fn cancelled(&self, call: &Value) -> String {
        for _ in 0..50 {
            let entries = self.logged();
            let reason = entries
                .iter()
                .find(|e| e["cancelled"] == call["id"] && e["session"] == call["session"]);
            let stopped = entries
                .iter()
                .any(|e| e["stopped"] == true && e["arguments"] == call["arguments"]);
            if let (Some(r), true) = (reason, stopped) {
                return r["reason"].as_str().unwrap_or_default().to_owned();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{call} was not cancelled at the server: {:?}",
            self.logged()
        );
    }
}
