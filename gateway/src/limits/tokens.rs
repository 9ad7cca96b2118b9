//! Token budgets per tenant (`--tokens-per-tenant 200000/1h`): LLM tokens, not requests.
//!
//! The same cell-rate bucket as the request limits, kept in microseconds (a budget of a
//! million tokens a minute is 60 µs a token) and charged after the fact: the orchestrator
//! looks before a turn (cost 0: refused only while the bucket is full) and charges what the
//! reply reported once it ends (`switchboard_pipeline::budget`). One long reply may overdraw
//! the budget; the tenant's next turns then wait until it has refilled. Shared through Redis
//! like the other limits, counted in this process without it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use switchboard_pipeline::budget::TokenBudget;

use super::{Limiter, Rate, Rule, Verdict};

/// [`step`] atomically in Redis with Redis's clock.
pub const SCRIPT: &str = include_str!("tokens.lua");

fn interval_us(rate: &Rate) -> i64 {
    (rate.period.as_micros() as i64 / rate.count as i64).max(1)
}

/// Look at (`cost` 0) or charge a bucket whose stored arrival time is `tat` (None: empty) at
/// `now` (µs). Returns the verdict's raw parts `(allowed, retry_after_us, used_us)` and the
/// arrival time to store (None: leave as is).
pub fn step(rate: &Rate, tat: Option<i64>, now: i64, cost: u64) -> ((bool, i64, i64), Option<i64>) {
    let (interval, period) = (interval_us(rate), rate.period.as_micros() as i64);
    let mut tat = tat.unwrap_or(now).max(now);
    let store = (cost > 0).then(|| {
        tat = tat.saturating_add((cost as i64).saturating_mul(interval));
        tat
    });
    let used = tat - now;
    if used >= period {
        ((false, used - period + interval, used), store)
    } else {
        ((true, 0, used), store)
    }
}

fn verdict(rate: &Rate, (allowed, retry_us, used_us): (bool, i64, i64)) -> Verdict {
    let free = (rate.period.as_micros() as i64 - used_us).max(0);
    Verdict {
        allowed,
        limit: rate.count,
        period: rate.period,
        remaining: ((free / interval_us(rate)) as u64).min(rate.count),
        reset: Duration::from_micros(used_us.max(0) as u64),
        retry_after: Duration::from_micros(retry_us.max(0) as u64),
    }
}

impl Limiter {
    /// Whether a token budget is configured.
    pub fn has_token_budget(&self) -> bool {
        self.rates.contains_key(&Rule::Tokens)
    }

    /// What a look refused `retry_after` before the bucket has room reports (limit, nothing
    /// remaining, reset), without asking the bucket again; `None` when there is no budget.
    pub fn token_refusal(&self, retry_after: Duration) -> Option<Verdict> {
        let rate = self.rates.get(&Rule::Tokens)?;
        let retry_us = retry_after.as_micros() as i64;
        let used_us = retry_us + rate.period.as_micros() as i64 - interval_us(rate);
        Some(verdict(rate, (false, retry_us, used_us)))
    }

    /// Look at (`cost` 0) or charge `tenant`'s token budget; `None` when there is none.
    /// Only a look that is refused counts as a refusal (a charge may overdraw).
    pub async fn tokens(&self, tenant: &str, cost: u64) -> Option<Verdict> {
        self.token_step(tenant, cost, cost == 0).await
    }

    /// Where `tenant`'s token budget stands, for a report: a look that refuses nothing.
    pub async fn token_report(&self, tenant: &str) -> Option<Verdict> {
        self.token_step(tenant, 0, false).await
    }

    async fn token_step(&self, tenant: &str, cost: u64, count_refusal: bool) -> Option<Verdict> {
        let rate = *self.rates.get(&Rule::Tokens)?;
        let bucket = format!("sb:rl:tokens:{tenant}");
        let args = [
            interval_us(&rate),
            rate.period.as_micros() as i64,
            cost as i64,
        ];
        let started = self.started;
        let outcome = self
            .step(
                Rule::Tokens,
                &self.token_script,
                &bucket,
                &args,
                count_refusal,
                |local| {
                    let now = started.elapsed().as_micros() as i64;
                    super::local_step(&mut local.token_tat, &bucket, now, |tat| {
                        step(&rate, tat, now, cost)
                    })
                },
            )
            .await;
        Some(verdict(&rate, outcome))
    }
}

/// The token rule as the orchestrator sees it.
pub struct TenantTokens(pub Arc<Limiter>);

impl TokenBudget for TenantTokens {
    fn admit<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<(), Duration>> {
        Box::pin(async move {
            match self.0.tokens(tenant, 0).await {
                Some(v) if !v.allowed => Err(v.retry_after),
                _ => Ok(()),
            }
        })
    }

    fn charge(&self, tenant: &str, tokens: u64) {
        let (limiter, tenant) = (Arc::clone(&self.0), tenant.to_owned());
        // Called when a reply's stream is dropped, which is always on the runtime.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { limiter.tokens(&tenant, tokens).await });
            }
            Err(_) => tracing::warn!(tenant, tokens, "token charge outside the runtime: lost"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Settings with only a token budget.
    fn budget_only(tokens: &str) -> super::super::LimitArgs {
        super::super::LimitArgs {
            rate_per_key: "off".into(),
            rate_per_tenant: "off".into(),
            rate_per_session: "off".into(),
            tokens_per_tenant: tokens.into(),
            max_calls_per_tenant: None,
            redis_url: None,
        }
    }

    fn rate(text: &str) -> Rate {
        Rate::parse(text).unwrap().unwrap()
    }

    #[test]
    fn a_reply_may_overdraw_then_turns_wait_until_the_budget_refills() {
        let r = rate("1000/10s"); // 10 ms a token
        let ((allowed, _, used), _) = step(&r, None, 0, 0);
        assert!(allowed && used == 0, "an untouched budget admits");
        let (_, tat) = step(&r, None, 0, 1_500);
        let tat = tat.unwrap();
        assert_eq!(tat, 15_000_000, "1,500 tokens: 15 s of a 10 s budget");
        let ((allowed, retry, _), stored) = step(&r, Some(tat), 0, 0);
        assert!(!allowed && stored.is_none());
        assert_eq!(retry, 5_010_000, "room for one token after 5.01 s");
        let ((allowed, _, _), _) = step(&r, Some(tat), 5_010_000, 0);
        assert!(allowed);
        let v = verdict(&r, step(&r, Some(tat), 10_000_000, 0).0);
        assert_eq!(v.remaining, 500);
        // The orchestrator's refusal carries only the wait; the verdict rebuilt from it is
        // the one the bucket gave.
        let refused = verdict(&r, step(&r, Some(tat), 0, 0).0);
        let limiter = Limiter::new(&budget_only("1000/10s"), None, None).unwrap();
        assert_eq!(limiter.token_refusal(refused.retry_after), Some(refused));
    }

    /// The Lua script and the local bucket agree (a real Redis: the machine's, as in CI).
    #[tokio::test]
    async fn redis_and_local_budgets_agree() {
        let tenant = format!("test-{}", rand::random::<u64>());
        for redis in [Some("redis://127.0.0.1:6379"), None] {
            let registry = prometheus::Registry::new();
            let args = budget_only("100/1h");
            let link = redis.map(|u| {
                let metrics = crate::redis_link::RedisMetrics::register(&registry).unwrap();
                Arc::new(crate::redis_link::RedisLink::new(u, metrics).unwrap())
            });
            let l = Limiter::new(&args, link, None).unwrap();
            assert!(l.tokens(&tenant, 0).await.unwrap().allowed);
            let v = l.tokens(&tenant, 60).await.unwrap();
            assert!(v.allowed && v.remaining == 40, "{redis:?}: {v:?}");
            let v = l.tokens(&tenant, 70).await.unwrap();
            assert!(!v.allowed, "{redis:?}: overdrawn by 30: {v:?}");
            let v = l.tokens(&tenant, 0).await.unwrap();
            assert!(!v.allowed && v.remaining == 0, "{redis:?}: {v:?}");
            // 31 tokens at 36 s each must refill before the next turn.
            let wait = v.retry_after.as_secs();
            assert!((1_110..=1_116).contains(&wait), "{redis:?}: {wait} s");
        }
    }

    proptest! {
        /// Over any run of charges, what was admitted never exceeds the budget of the
        /// time elapsed plus one period's burst plus the last reply's overdraft.
        #[test]
        fn admitted_spend_is_bounded(count in 10u64..10_000, period_ms in 100u64..10_000,
                                     turns in proptest::collection::vec((0i64..2_000_000, 1u64..5_000), 1..100)) {
            let r = Rate { count, period: Duration::from_millis(period_ms) };
            let (mut tat, mut now, mut spent, mut largest) = (None, 0i64, 0u64, 0u64);
            for (gap, cost) in turns {
                now += gap;
                if step(&r, tat, now, 0).0.0 {
                    tat = step(&r, tat, now, cost).1;
                    spent += cost;
                    largest = largest.max(cost);
                }
            }
            let earned = (now as f64 / interval_us(&r) as f64).ceil() as u64;
            let burst = (r.period.as_micros() as i64 / interval_us(&r)) as u64 + 1;
            prop_assert!(spent <= earned + burst + largest, "{spent} > {earned} + {burst} + {largest}");
        }
    }
}
