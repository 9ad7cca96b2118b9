//! A `switchboard serve` process for a test, on a free loopback port, killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::binary;

pub struct Gateway {
    pub addr: SocketAddr,
    child: Child,
    /// The gateway's data directory, removed when the test ends.
    _data: tempfile::TempDir,
    /// Where its log goes (none with `SWITCHBOARD_TEST_LOG`, which shows it as it comes):
    /// a failing test shows its end.
    log: Option<std::path::PathBuf>,
}

/// Lines of a gateway's log a failing test shows.
const LOG_TAIL: usize = 60;

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Minimal HTTP GET: status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_request(addr, "GET", path, None)
}

/// Minimal HTTP POST of a JSON body: status code and body (chunked bodies left as sent).
pub fn http_post_json(addr: SocketAddr, path: &str, body: &str) -> Option<(u16, String)> {
    http_request(addr, "POST", path, Some(body))
}

/// The payload of a chunked HTTP body (`Transfer-Encoding: chunked`), its framing removed.
/// Stops at the last chunk or where the body is cut off.
pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..line]);
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let start = line + 2;
        if size == 0 || body.len() < start + size {
            break;
        }
        out.extend_from_slice(&body[start..start + size]);
        body = &body[(start + size + 2).min(body.len())..];
    }
    out
}

fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    http(addr, method, path, &[], body).map(|r| (r.status, r.body))
}

/// An HTTP answer: status, the header block as sent (lower-cased names), body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl HttpReply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Minimal HTTP/1.1 request with extra headers and an optional JSON body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Option<HttpReply> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    Some(HttpReply {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    })
}

/// One chat completion in `session` (`(role, content)` messages): the response as JSON;
/// panics unless it is a 200.
pub fn chat_completion(
    gw: &Gateway,
    session: &str,
    messages: &[(&str, &str)],
) -> serde_json::Value {
    let messages: Vec<serde_json::Value> = messages
        .iter()
        .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
        .collect();
    let body = serde_json::json!({"model": "switchboard", "messages": messages, "metadata": {"session_id": session}});
    let (status, text) =
        http_post_json(gw.addr, "/v1/chat/completions", &body.to_string()).expect("chat answers");
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("a JSON completion")
}

/// The value of the first sample in a `/metrics` text whose line starts with `prefix` (a
/// name, or a name and the start of its labels: `name{op=`); `None` when there is none.
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The value of the first sample of `name` in a `/metrics` text (a name alone, or with its
/// labels as Prometheus prints them: `name{a="x",b="y"}`), histogram buckets left out; 0
/// when there is none.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| {
            l.starts_with(name) && l[name.len()..].starts_with([' ', '{']) && !l.contains("le=")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The reply text of a chat completion.
pub fn reply_text(completion: &serde_json::Value) -> String {
    completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

impl Gateway {
    /// Start with the LLM chain `llm_urls` (first = primary; none: the embedded model) and
    /// extra environment.
    pub fn start(llm_urls: &[String], env: &[(&str, &str)]) -> Self {
        let addr = free_port();
        let mut cmd = Command::new(binary());
        cmd.args(["serve", "--listen", &addr.to_string()]);
        for var in [
            "SWITCHBOARD_LLM_BASE_URL",
            "SWITCHBOARD_LLM_API_KEY",
            "SWITCHBOARD_LLM_FALLBACKS",
            "OPENAI_BASE_URL",
            "OPENAI_API_KEY",
        ] {
            cmd.env_remove(var);
        }
        if let Some((primary, fallbacks)) = llm_urls.split_first() {
            cmd.env("SWITCHBOARD_LLM_BASE_URL", primary)
                .env("SWITCHBOARD_LLM_MODEL", "scripted")
                .env("SWITCHBOARD_LLM_API_KEY", "test-llm-key")
                .env("SWITCHBOARD_LLM_FALLBACKS", fallbacks.join(","))
                // The scripted chain alone: the embedded model would answer when it fails.
                .env("SWITCHBOARD_LLM_EMBEDDED", "off");
        }
        // The test's keys only (before its `env`, which may set them).
        cmd.env_remove("SWITCHBOARD_API_KEYS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Each gateway its own durable state (the knowledge index locks its directory).
        let data = tempfile::tempdir().expect("temp data dir");
        if !env.iter().any(|(k, _)| *k == "SWITCHBOARD_DATA_DIR") {
            cmd.env("SWITCHBOARD_DATA_DIR", data.path());
        }
        let log = std::env::var_os("SWITCHBOARD_TEST_LOG")
            .is_none()
            .then(|| data.path().join("gateway.log"));
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("gateway log file")),
            None => Stdio::inherit(),
        };
        cmd.stdout(Stdio::null()).stderr(stderr);
        let child = cmd.spawn().expect("switchboard serve starts");
        let gw = Self {
            addr,
            child,
            _data: data,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some((200, _)) = http_get(addr, "/readyz") {
                return gw;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("gateway at {addr} not ready within 60 s");
    }

    /// The last `lines` lines of its log (empty when it goes to the test's own output).
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(text) = self.log.as_ref().and_then(|p| std::fs::read(p).ok()) else {
            return String::new();
        };
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// GET `path` with `key` as the bearer token (none: anonymous): status and body.
    pub fn get_with_key(&self, path: &str, key: Option<&str>) -> (u16, String) {
        let auth = key.map(|k| format!("Bearer {k}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        http(self.addr, "GET", path, &headers, None)
            .map(|r| (r.status, r.body))
            .unwrap_or((0, String::new()))
    }

    /// A new API key of `tenant` (which must exist), made over the admin API with an
    /// operator key; panics unless it is created.
    pub fn tenant_key(&self, operator_key: &str, tenant: &str) -> String {
        let auth = format!("Bearer {operator_key}");
        let body = serde_json::json!({"tenant": tenant, "name": "test"}).to_string();
        let r = http(
            self.addr,
            "POST",
            "/v1/admin/keys",
            &[("Authorization", &auth)],
            Some(&body),
        )
        .expect("the gateway answers");
        assert_eq!(r.status, 201, "{}", r.body);
        let made: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        made["key"].as_str().expect("a key").to_owned()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/realtime?model=switchboard", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM, as an orchestrator stopping the instance would.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
    }

    /// The exit status once the process has ended, waiting at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resident memory of the gateway process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }

    pub fn metrics(&self) -> String {
        http_get(self.addr, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test (this runs as it unwinds) shows what the gateway said last.
        if std::thread::panicking() && self.log.is_some() {
            eprintln!(
                "--- the gateway at {} logged, last {LOG_TAIL} lines ---\n{}\n---",
                self.addr,
                self.log_tail(LOG_TAIL)
            );
        }
    }
}

/// A PostgreSQL database of its own for one test (on the local server, trust auth), dropped
/// when this goes out of scope. The gateway creates it on first use.
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    pub fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("switchboard_{prefix}_{}_{nanos}", std::process::id());
        Self {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// A persona file in a directory of its own (removed when this is dropped), for
/// `SWITCHBOARD_PERSONAS`.
pub struct PersonaFile {
    _dir: tempfile::TempDir,
    pub path: String,
}

impl PersonaFile {
    pub fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("personas.toml");
        std::fs::write(&path, toml).expect("persona file written");
        Self {
            path: path.to_string_lossy().into_owned(),
            _dir: dir,
        }
    }
}
