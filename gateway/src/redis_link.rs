//! The gateway's one Redis connection (`SWITCHBOARD_REDIS_URL`), shared by the rate limiter.
//!
//! Redis is an accelerator for many instances, never a dependency of a single call: every
//! user of this link has a local fallback. A failed command marks the link down for
//! [`RETRY_AFTER`], so while Redis is away requests pay no timeouts, only local counting;
//! the next command after that tries again, and the link is up again once one succeeds.
//! `switchboard_redis_up` and `switchboard_redis_errors_total{op}` show which it is.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long a failure keeps the link marked down before Redis is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// A command (or a connection attempt) slower than this counts as a failure.
const TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct RedisMetrics {
    pub up: IntGauge,
    pub errors: IntCounterVec,
}

impl RedisMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let up = IntGauge::new(
            "switchboard_redis_up",
            "1 while Redis answers (0: limits are counted locally)",
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "switchboard_redis_errors_total",
                "Redis commands that failed or timed out, by operation",
            ),
            &["op"],
        )?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        Ok(Self { up, errors })
    }
}

pub struct RedisLink {
    client: redis::Client,
    /// The connection once made (a clone per command: it multiplexes).
    ready: std::sync::RwLock<Option<ConnectionManager>>,
    /// Held while connecting, so one task connects and the others wait for it.
    connecting: tokio::sync::Mutex<()>,
    down_until: Mutex<Option<Instant>>,
    metrics: RedisMetrics,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink").finish_non_exhaustive()
    }
}

impl RedisLink {
    /// A link to `url` (`redis://host:port/db`); nothing is connected until first use, so a
    /// gateway starts whether or not Redis is up.
    pub fn new(url: &str, metrics: RedisMetrics) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("SWITCHBOARD_REDIS_URL: {e}"))?;
        Ok(Self {
            client,
            ready: std::sync::RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            down_until: Mutex::new(None),
            metrics,
        })
    }

    /// The client, for connections of their own (pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    fn is_down(&self) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| Instant::now() < t)
    }

    /// A connection to use now, or `None` while the link is marked down (or connecting
    /// fails, which marks it down).
    pub async fn connection(&self) -> Option<ConnectionManager> {
        if self.is_down() {
            return None;
        }
        let current = || self.ready.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(m) = current() {
            return Some(m);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(m) = current() {
            return Some(m);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(RETRY_AFTER);
        match ConnectionManager::new_with_config(self.client.clone(), config).await {
            Ok(m) => {
                *self.ready.write().unwrap_or_else(|p| p.into_inner()) = Some(m.clone());
                Some(m)
            }
            Err(e) => {
                self.failed("connect", &e);
                None
            }
        }
    }

    /// A command failed: count it and use local state for a while.
    pub fn failed(&self, op: &str, e: &redis::RedisError) {
        let first = !self.is_down();
        *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + RETRY_AFTER);
        self.metrics.errors.with_label_values(&[op]).inc();
        self.metrics.up.set(0);
        if first {
            tracing::warn!(op, error = %e, "Redis unavailable: counting locally until it returns");
        }
    }

    /// A command succeeded.
    pub fn succeeded(&self) {
        let was_down = self
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some();
        if was_down {
            tracing::info!("Redis is back: limits are shared again");
        }
        self.metrics.up.set(1);
    }
}
