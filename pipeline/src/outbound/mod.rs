//! Outbound HTTP for tools and webhooks, behind the SSRF guard ([`policy`]).
//!
//! Each hop of a request is vetted before any byte is sent: the host is resolved once here,
//! every address is checked against the policy, and the connection goes to that vetted
//! address (the HTTP client is pinned to it, so a second DNS answer cannot point elsewhere:
//! no rebinding window). Redirects are followed by hand so each hop is resolved and checked
//! the same way, and credentials are dropped when a redirect leaves the host. Bodies are read
//! up to a byte limit and everything runs under one deadline.
//!
//! This module must not be bypassed: code that sends requests to URLs it did not write
//! itself goes through [`OutboundClient`].

pub mod policy;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderName, HeaderValue, PROXY_AUTHORIZATION};

pub use policy::{AddressClass, OutboundPolicy};

/// Redirects followed before giving up.
pub const DEFAULT_MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// The whole exchange, redirects included.
    pub timeout: Duration,
    /// Bytes of the body kept; the rest is not read.
    pub max_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body was longer than `max_bytes`.
    pub truncated: bool,
    pub content_type: Option<String>,
    /// Where the last hop went.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{host} is not an allowed destination ({class} address {addr})", class = .class.as_str())]
    Blocked {
        host: String,
        addr: IpAddr,
        class: AddressClass,
    },
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach {host}: {message}")]
    Network { host: String, message: String },
}

impl OutboundError {
    /// Short label for metrics, audit and the LLM.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "invalid_url",
            Self::Blocked { .. } => "blocked",
            Self::TooManyRedirects(_) => "too_many_redirects",
            Self::Timeout(_) => "timeout",
            Self::Network { .. } => "network",
        }
    }
}

/// Clients kept, each pinned to one vetted (host, address): reusing them keeps connections
/// alive between tool calls (building one costs ~2 ms: TLS roots, a fresh connection).
const PINNED_CLIENTS: usize = 64;

/// Sends requests only to destinations the policy admits.
#[derive(Debug, Clone)]
pub struct OutboundClient {
    policy: Arc<OutboundPolicy>,
    max_redirects: usize,
    pinned: Arc<std::sync::Mutex<std::collections::HashMap<(String, SocketAddr), reqwest::Client>>>,
}

impl OutboundClient {
    pub fn new(policy: OutboundPolicy) -> Self {
        crate::llm::install_crypto_provider();
        Self {
            policy: Arc::new(policy),
            max_redirects: DEFAULT_MAX_REDIRECTS,
            pinned: Arc::default(),
        }
    }

    /// A client that connects `host` only to `addr` (reqwest never resolves the name itself),
    /// follows no redirects and uses no proxy; one per (host, address), reused.
    fn pinned(&self, host: &str, addr: SocketAddr) -> Result<reqwest::Client, reqwest::Error> {
        let key = (host.to_owned(), addr);
        let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = pinned.get(&key) {
            return Ok(c.clone());
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .resolve(host, addr)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        if pinned.len() >= PINNED_CLIENTS {
            pinned.clear();
        }
        pinned.insert(key, client.clone());
        Ok(client)
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// Resolve, vet, connect, follow redirects (each hop vetted), read the body up to the
    /// limit; all within `req.timeout`.
    pub async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let timeout = req.timeout;
        tokio::time::timeout(timeout, self.send_hops(req))
            .await
            .unwrap_or(Err(OutboundError::Timeout(timeout)))
    }

    /// Parse a URL and vet every address its host resolves to; the first admitted one.
    pub async fn vet(&self, url: &str) -> Result<(Url, SocketAddr), OutboundError> {
        let invalid = |reason: &str| OutboundError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("only http and https are allowed"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid("credentials in the URL are not allowed"));
        }
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| invalid("no port"))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid("no host"))?
            .to_owned();
        let addrs: Vec<SocketAddr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| OutboundError::Network {
                    host: host.clone(),
                    message: format!("name lookup failed: {e}"),
                })?
                .collect(),
            None => return Err(invalid("no host")),
        };
        let mut refused = None;
        for addr in addrs {
            match self.policy.check(addr) {
                Ok(()) => return Ok((parsed, addr)),
                Err(class) => {
                    refused.get_or_insert((addr.ip(), class));
                }
            }
        }
        let (addr, class) = refused.ok_or_else(|| OutboundError::Network {
            host: host.clone(),
            message: "the name has no addresses".into(),
        })?;
        Err(OutboundError::Blocked { host, addr, class })
    }

    async fn send_hops(&self, req: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let OutboundRequest {
            mut method,
            mut url,
            mut headers,
            mut body,
            timeout: _,
            max_bytes,
        } = req;
        for _hop in 0..=self.max_redirects {
            let (parsed, addr) = self.vet(&url).await?;
            let host = parsed.host_str().unwrap_or_default().to_owned();
            let network = |e: reqwest::Error| OutboundError::Network {
                host: host.clone(),
                message: e.to_string(),
            };
            let client = self.pinned(&host, addr).map_err(network)?;
            let mut rb = client.request(method.clone(), parsed.clone());
            for (k, v) in &headers {
                let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(v),
                ) else {
                    return Err(OutboundError::InvalidUrl {
                        url: url.clone(),
                        reason: format!("header {k:?} is not valid"),
                    });
                };
                rb = rb.header(k, v);
            }
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let mut resp = rb.send().await.map_err(network)?;
            let status = resp.status();
            if status.is_redirection()
                && let Some(next) = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| parsed.join(l).ok())
            {
                {
                    if status.as_u16() == 303
                        || (matches!(status.as_u16(), 301 | 302) && method == reqwest::Method::POST)
                    {
                        method = reqwest::Method::GET;
                        body = None;
                    }
                    if next.host_str() != parsed.host_str() {
                        let secret = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION];
                        headers.retain(|(k, _)| {
                            !secret.iter().any(|s| s.as_str().eq_ignore_ascii_case(k))
                        });
                    }
                    url = next.to_string();
                    continue;
                }
            }
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut out = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = resp.chunk().await.map_err(network)? {
                let room = max_bytes.saturating_sub(out.len());
                if chunk.len() > room {
                    out.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                out.extend_from_slice(&chunk);
            }
            return Ok(OutboundResponse {
                status: status.as_u16(),
                body: out,
                truncated,
                content_type,
                url: parsed.to_string(),
            });
        }
        Err(OutboundError::TooManyRedirects(self.max_redirects))
    }
}
