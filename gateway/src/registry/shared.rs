//! The Redis half of the registry: the scripts, the heartbeat, and the subscriber that
//! receives control messages for this instance's calls.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;

use super::{HEARTBEAT, Registry, TTL, control};
use crate::redis_link::RedisLink;

/// Admission: the tenant's set is cleaned of expired members, then the slot is added if
/// the tenant has fewer than ARGV[3]. KEYS[1] = tenant set; ARGV = slot, ttl ms, max.
pub(super) const ADMIT: &str = include_str!("admit.lua");

/// Renew (or re-create, after a Redis restart) calls: ARGV[1] = ttl ms, ARGV[2] = this
/// instance; per call KEYS = its record and its tenant's set, ARGV = id, tenant, channel,
/// start, and a slot to drop from the set ('' for none).
pub(super) const RENEW: &str = include_str!("renew.lua");

pub(super) fn call_key(id: &str) -> String {
    format!("sb:call:{id}")
}

pub(super) fn tenant_key(tenant: &str) -> String {
    format!("sb:tenant_calls:{tenant}")
}

pub(super) fn control_channel(instance: &str) -> String {
    format!("sb:control:{instance}")
}

impl Registry {
    /// Renew calls in Redis: `(id, tenant, channel, started_ms, slot to drop)`.
    pub(super) async fn renew(&self, calls: &[(String, String, String, i64, String)]) {
        let Some(link) = &self.redis else { return };
        if calls.is_empty() {
            return;
        }
        let Some(mut conn) = link.connection().await else {
            return;
        };
        let mut inv = self.renew.prepare_invoke();
        inv.arg(TTL.as_millis() as i64).arg(&self.instance);
        for (id, tenant, channel, started, slot) in calls {
            inv.key(call_key(id)).key(tenant_key(tenant));
            inv.arg(id).arg(tenant).arg(channel).arg(started).arg(slot);
        }
        match inv.invoke_async::<i64>(&mut conn).await {
            Ok(_) => link.succeeded(),
            Err(e) => link.failed("call_heartbeat", &e),
        }
    }

    /// One heartbeat: every local call renewed in one script call.
    pub async fn heartbeat(&self) {
        let calls: Vec<_> = self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, c)| {
                (
                    id.clone(),
                    c.tenant.clone(),
                    c.channel.to_owned(),
                    c.started_ms,
                    String::new(),
                )
            })
            .collect();
        let started = Instant::now();
        self.renew(&calls).await;
        if let Some(m) = &self.metrics {
            m.heartbeat_seconds.observe(started.elapsed().as_secs_f64());
        }
    }

    /// Heartbeats and the control subscriber, for as long as the process runs.
    pub fn spawn_tasks(self: &Arc<Self>) {
        let Some(link) = self.redis.clone() else {
            return;
        };
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.heartbeat().await;
            }
        });
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.subscribe(&link).await {
                    link.failed("control_subscribe", &e);
                }
                tokio::time::sleep(crate::redis_link::RETRY_AFTER).await;
            }
        });
    }

    /// Receive control messages for this instance's calls until the connection drops.
    async fn subscribe(&self, link: &RedisLink) -> redis::RedisResult<()> {
        let mut pubsub = link.client().get_async_pubsub().await?;
        pubsub.subscribe(control_channel(&self.instance)).await?;
        // Calls registered while Redis was away are written back now.
        self.heartbeat().await;
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let Ok(text) = msg.get_payload::<String>() else {
                continue;
            };
            match control::parse_message_from_peer(&text) {
                Some(m) => {
                    if let Err(e) = self.act_locally(&m.tenant, &m.call_id, &m.action).await {
                        tracing::warn!(call = %m.call_id, error = ?e, "control from a peer failed");
                    }
                }
                None => tracing::warn!("unreadable control message ignored"),
            }
        }
        Ok(())
    }
}
