//! Which instance holds which live call, and control of any call from any instance.
//!
//! Every call (Realtime WebSocket, WebRTC, phone) is registered here while it lives. Locally
//! the registry holds the call's command sender and hang-up switch; with Redis
//! (`SWITCHBOARD_REDIS_URL`) it also writes `sb:call:{id}` (instance, tenant, channel, start)
//! and the tenant's live-call set `sb:tenant_calls:{tenant}`, both with a TTL that one
//! heartbeat per instance renews every [`HEARTBEAT`] (one script call for all its calls), so
//! a crashed instance's calls expire within [`TTL`]. A control action sent to any instance
//! is carried out locally, or published on `sb:control:{instance}` to the one holding the
//! call. Calls per tenant are capped (`SWITCHBOARD_MAX_CALLS_PER_TENANT`) across instances
//! through that set; with Redis down the cap is counted per instance.

pub mod control;
mod local;
mod shared;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry as Prom};
use switchboard_pipeline::call::Command;
use switchboard_pipeline::tools::builtin::CallControl;
use tokio::sync::{mpsc, oneshot};

pub use control::{ControlAction, ControlMessage, MessageRole};

use crate::redis_link::RedisLink;
use crate::store::now_ms;
use shared::{ADMIT, RENEW, call_key, control_channel, tenant_key};

/// How often an instance renews its calls in Redis.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a call's record outlives its last heartbeat.
pub const TTL: Duration = Duration::from_secs(30);

/// Carries out a transfer or hang-up through the phone provider (phone calls only).
pub type ProviderControl =
    Arc<dyn Fn(CallControl) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

struct LocalCall {
    tenant: String,
    channel: &'static str,
    started_ms: i64,
    commands: mpsc::Sender<Command>,
    /// The transport's own hang-up (WebRTC closes its peer); else the call is shut down.
    hangup: Option<oneshot::Sender<()>>,
    provider: Option<ProviderControl>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// No such call for this tenant (another tenant's call looks the same).
    NotFound,
    /// The call cannot do that (a transfer on a call that is not a phone call).
    Unsupported(&'static str),
    /// The call or its provider refused.
    Failed(String),
}

#[derive(Clone)]
pub struct RegistryMetrics {
    controls: IntCounterVec,
    heartbeat_seconds: Histogram,
}

impl RegistryMetrics {
    pub fn register(registry: &Prom) -> prometheus::Result<Self> {
        let controls = IntCounterVec::new(
            Opts::new(
                "switchboard_call_controls_total",
                "Control actions on live calls, by action and where the call was",
            ),
            &["action", "route"],
        )?;
        let heartbeat_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "switchboard_registry_heartbeat_seconds",
                "Time to renew all of this instance's calls in Redis",
            )
            .buckets(vec![0.0005, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3]),
        )?;
        registry.register(Box::new(controls.clone()))?;
        registry.register(Box::new(heartbeat_seconds.clone()))?;
        Ok(Self {
            controls,
            heartbeat_seconds,
        })
    }
}

pub struct Registry {
    instance: String,
    redis: Option<Arc<RedisLink>>,
    max_per_tenant: Option<usize>,
    local: Mutex<HashMap<String, LocalCall>>,
    /// Admitted calls per tenant on this instance (slots included).
    counts: Mutex<HashMap<String, usize>>,
    admit: redis::Script,
    renew: redis::Script,
    metrics: Option<RegistryMetrics>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// A tenant's admission to one more call, held until the call is registered (then by its
/// [`Registration`]); dropping it gives the place back.
pub struct TenantSlot {
    registry: Arc<Registry>,
    tenant: String,
    id: String,
    released: bool,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        if !self.released {
            self.registry
                .release(&self.tenant, None, Some(self.id.clone()));
        }
    }
}

/// A registered call; dropping it (when the call ends) removes it everywhere.
pub struct Registration {
    registry: Arc<Registry>,
    call_id: String,
    tenant: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry
            .release(&self.tenant, Some(self.call_id.clone()), None);
    }
}

/// A live call as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveCall {
    pub id: String,
    pub channel: String,
    pub instance: String,
    pub started_ms: i64,
}

impl Registry {
    pub fn new(
        redis: Option<Arc<RedisLink>>,
        max_per_tenant: Option<usize>,
        metrics: Option<RegistryMetrics>,
    ) -> Arc<Self> {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "gw".into());
        let instance = format!("{host}-{:08x}", rand::random::<u32>());
        Arc::new(Self {
            instance,
            redis,
            max_per_tenant,
            local: Mutex::new(HashMap::new()),
            counts: Mutex::new(HashMap::new()),
            admit: redis::Script::new(ADMIT),
            renew: redis::Script::new(RENEW),
            metrics,
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// A place for one more call of `tenant`, or `Err(max)` when it has `max` already
    /// (across instances when Redis answers, on this one otherwise).
    pub async fn admit(self: &Arc<Self>, tenant: &str) -> Result<TenantSlot, usize> {
        let id = format!("slot_{:016x}", rand::random::<u64>());
        if let Some(max) = self.max_per_tenant {
            {
                let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
                let n = counts.entry(tenant.to_owned()).or_default();
                if *n >= max {
                    return Err(max);
                }
                *n += 1;
            }
            let slot = TenantSlot {
                registry: Arc::clone(self),
                tenant: tenant.to_owned(),
                id: id.clone(),
                released: false,
            };
            if let Some(link) = &self.redis
                && let Some(mut conn) = link.connection().await
            {
                let admitted: redis::RedisResult<i64> = self
                    .admit
                    .key(tenant_key(tenant))
                    .arg(&id)
                    .arg(TTL.as_millis() as i64)
                    .arg(max)
                    .invoke_async(&mut conn)
                    .await;
                match admitted {
                    Ok(1) => link.succeeded(),
                    Ok(_) => {
                        link.succeeded();
                        return Err(max);
                    }
                    Err(e) => link.failed("call_admit", &e),
                }
            }
            return Ok(slot);
        }
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant.to_owned())
            .and_modify(|n| *n += 1)
            .or_insert(1);
        Ok(TenantSlot {
            registry: Arc::clone(self),
            tenant: tenant.to_owned(),
            id,
            released: false,
        })
    }

    /// Record a started call (its slot becomes the call).
    pub fn register(
        self: &Arc<Self>,
        mut slot: TenantSlot,
        call_id: &str,
        channel: &'static str,
        commands: mpsc::Sender<Command>,
        hangup: Option<oneshot::Sender<()>>,
        provider: Option<ProviderControl>,
    ) -> Registration {
        slot.released = true;
        let tenant = slot.tenant.clone();
        let started_ms = now_ms();
        self.local.lock().unwrap_or_else(|p| p.into_inner()).insert(
            call_id.to_owned(),
            LocalCall {
                tenant: tenant.clone(),
                channel,
                started_ms,
                commands,
                hangup,
                provider,
            },
        );
        if self.redis.is_some() {
            let (me, id, slot_id) = (Arc::clone(self), call_id.to_owned(), slot.id.clone());
            let entry = (id, tenant.clone(), channel.to_owned(), started_ms, slot_id);
            tokio::spawn(async move { me.renew(&[entry]).await });
        }
        Registration {
            registry: Arc::clone(self),
            call_id: call_id.to_owned(),
            tenant,
        }
    }

    /// Forget a call or a slot, here and (in the background) in Redis.
    fn release(self: &Arc<Self>, tenant: &str, call_id: Option<String>, slot: Option<String>) {
        if let Some(id) = &call_id {
            self.local
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
        {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = counts.get_mut(tenant) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(tenant);
                }
            }
        }
        let Some(link) = self.redis.clone() else {
            return;
        };
        let set = tenant_key(tenant);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let Some(mut conn) = link.connection().await else {
                return;
            };
            let mut pipe = redis::pipe();
            for member in call_id.iter().chain(slot.iter()) {
                pipe.zrem(&set, member).ignore();
            }
            if let Some(id) = &call_id {
                pipe.del(call_key(id)).ignore();
            }
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => link.succeeded(),
                Err(e) => link.failed("call_release", &e),
            }
        });
    }

    fn count(&self, action: &ControlAction, route: &str) {
        if let Some(m) = &self.metrics {
            let name = match action {
                ControlAction::Hangup => "hangup",
                ControlAction::Message { .. } => "message",
                ControlAction::Transfer { .. } => "transfer",
                ControlAction::Respond => "respond",
            };
            m.controls.with_label_values(&[name, route]).inc();
        }
    }

    /// Carry out `action` on `tenant`'s call, wherever it is.
    pub async fn control(
        &self,
        tenant: &str,
        call_id: &str,
        action: ControlAction,
    ) -> Result<&'static str, ControlError> {
        match self.act_locally(tenant, call_id, &action).await {
            Err(ControlError::NotFound) => {}
            done => {
                self.count(&action, "local");
                return done.map(|()| "local");
            }
        }
        let link = self.redis.as_ref().ok_or(ControlError::NotFound)?;
        let mut conn = link.connection().await.ok_or(ControlError::NotFound)?;
        let record: redis::RedisResult<HashMap<String, String>> = redis::cmd("HGETALL")
            .arg(call_key(call_id))
            .query_async(&mut conn)
            .await;
        let record = match record {
            Ok(r) => {
                link.succeeded();
                r
            }
            Err(e) => {
                link.failed("control_lookup", &e);
                return Err(ControlError::NotFound);
            }
        };
        let (Some(instance), Some(owner)) = (record.get("instance"), record.get("tenant")) else {
            return Err(ControlError::NotFound);
        };
        if owner != tenant || instance == &self.instance {
            return Err(ControlError::NotFound);
        }
        let message = ControlMessage {
            call_id: call_id.to_owned(),
            tenant: tenant.to_owned(),
            action: action.clone(),
        };
        let text =
            serde_json::to_string(&message).map_err(|e| ControlError::Failed(e.to_string()))?;
        let receivers: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(control_channel(instance))
            .arg(text)
            .query_async(&mut conn)
            .await;
        match receivers {
            // Nobody listens: the instance is gone and its record will expire.
            Ok(0) => Err(ControlError::NotFound),
            Ok(_) => {
                self.count(&action, "remote");
                Ok("remote")
            }
            Err(e) => {
                link.failed("control_publish", &e);
                Err(ControlError::Failed(
                    "the call's instance cannot be reached".into(),
                ))
            }
        }
    }

    /// `tenant`'s live calls: across instances from Redis when it answers, else this one's.
    pub async fn list(&self, tenant: &str) -> Vec<LiveCall> {
        if let Some(link) = &self.redis
            && let Some(mut conn) = link.connection().await
        {
            let now = now_ms();
            let ids: redis::RedisResult<Vec<String>> = redis::cmd("ZRANGEBYSCORE")
                .arg(tenant_key(tenant))
                .arg(now)
                .arg("+inf")
                .query_async(&mut conn)
                .await;
            match ids {
                Ok(ids) => {
                    link.succeeded();
                    let ids: Vec<String> = ids
                        .into_iter()
                        .filter(|i| !i.starts_with("slot_"))
                        .collect();
                    // Every record in one round trip.
                    let mut pipe = redis::pipe();
                    for id in &ids {
                        pipe.hgetall(call_key(id));
                    }
                    let records: Vec<HashMap<String, String>> = if ids.is_empty() {
                        Vec::new()
                    } else {
                        pipe.query_async(&mut conn).await.unwrap_or_default()
                    };
                    let mut out = Vec::new();
                    for (id, r) in ids.into_iter().zip(records) {
                        if r.get("tenant").map(String::as_str) == Some(tenant) {
                            out.push(LiveCall {
                                id,
                                channel: r.get("channel").cloned().unwrap_or_default(),
                                instance: r.get("instance").cloned().unwrap_or_default(),
                                started_ms: r
                                    .get("started_ms")
                                    .and_then(|s| s.parse().ok())
                                    .unwrap_or(0),
                            });
                        }
                    }
                    return out;
                }
                Err(e) => link.failed("call_list", &e),
            }
        }
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<LiveCall> = local
            .iter()
            .filter(|(_, c)| c.tenant == tenant)
            .map(|(id, c)| LiveCall {
                id: id.clone(),
                channel: c.channel.to_owned(),
                instance: self.instance.clone(),
                started_ms: c.started_ms,
            })
            .collect();
        out.sort_by_key(|c| c.started_ms);
        out
    }
}
