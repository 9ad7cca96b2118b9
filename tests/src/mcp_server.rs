//! The tests' own MCP server (`tests/python/mcp_orders.py`), for the e2e tests and the
//! benchmarks: its script, and its streamable-HTTP flavour run as a child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

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
