//! Rate limits per API key, per tenant and per session, shared by every instance through
//! Redis when `SWITCHBOARD_REDIS_URL` is set, counted in this process otherwise — and
//! while Redis is unavailable (then each instance enforces the limit on its own, so the
//! fleet allows up to N× for that time; logged, and counted in
//! `switchboard_rate_limit_local_total`).
//!
//! Key and tenant limits apply to every authenticated request (`Auth::require` asks); the
//! session limit to each chat message (chat completions naming a session, chat-socket
//! messages); the token budget (`tokens.rs`) to every reply a tenant's turns generate. A
//! refusal is OpenAI's 429 with `Retry-After` and `x-ratelimit-*` headers.

pub mod gcra;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use clap::Args;
use futures_util::future::BoxFuture;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

pub use gcra::{Rate, Verdict};

use switchboard_channels::realtime::{ConnectionLimits, RateLimit};

use crate::redis_link::RedisLink;
use crate::server::openai_error;

#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Requests per API key (COUNT/PERIOD like `600/1m`, or `off`).
    #[arg(long, env = "SWITCHBOARD_RATE_PER_KEY", default_value = "600/1m")]
    pub rate_per_key: String,
    /// Requests per tenant, all its keys together.
    #[arg(long, env = "SWITCHBOARD_RATE_PER_TENANT", default_value = "3000/1m")]
    pub rate_per_tenant: String,
    /// Chat messages per session.
    #[arg(long, env = "SWITCHBOARD_RATE_PER_SESSION", default_value = "10/10s")]
    pub rate_per_session: String,
    /// LLM tokens per tenant (prompt and reply, as the provider reports them), e.g.
    /// `200000/1h`; `off` by default. A reply may overdraw it; the next turns then wait.
    #[arg(long, env = "SWITCHBOARD_TOKENS_PER_TENANT", default_value = "off")]
    pub tokens_per_tenant: String,
    /// Live calls per tenant, across instances (0: no cap beyond --max-calls).
    #[arg(long, env = "SWITCHBOARD_MAX_CALLS_PER_TENANT")]
    pub max_calls_per_tenant: Option<usize>,
    /// Redis (`redis://127.0.0.1:6379`) for limits and the session registry shared by
    /// every instance.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
}

/// Which limit a check is against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    Key,
    Tenant,
    Session,
    Tokens,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Key => "key",
            Rule::Tenant => "tenant",
            Rule::Session => "session",
            Rule::Tokens => "tokens",
        }
    }
}

#[derive(Clone)]
pub struct LimitMetrics {
    refused: IntCounterVec,
    local: IntCounterVec,
    seconds: Histogram,
}

impl LimitMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let refused = IntCounterVec::new(
            Opts::new(
                "switchboard_rate_limited_total",
                "Requests refused with 429, by rule",
            ),
            &["rule"],
        )?;
        let local = IntCounterVec::new(
            Opts::new(
                "switchboard_rate_limit_local_total",
                "Checks counted in this process because Redis was unavailable, by rule",
            ),
            &["rule"],
        )?;
        let seconds = Histogram::with_opts(
            HistogramOpts::new(
                "switchboard_rate_limit_check_seconds",
                "Time to check one limit",
            )
            .buckets(vec![0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3]),
        )?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(local.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        Ok(Self {
            refused,
            local,
            seconds,
        })
    }
}

/// Buckets counted in this process: arrival times by bucket key.
#[derive(Default)]
struct LocalBuckets {
    /// Request limits, in milliseconds.
    tat: HashMap<String, i64>,
    /// Token budgets, in microseconds.
    token_tat: HashMap<String, i64>,
}

const MAX_LOCAL_BUCKETS: usize = 100_000;

/// A bucket step's outcome: allowed, retry after, and how much of the period is used (in
/// the bucket's unit).
type Step = (bool, i64, i64);

/// One step of the bucket `bucket` in `map` at `now`: `step` gets the stored arrival time
/// and returns the outcome and the arrival time to store. A full map first drops the
/// buckets that have drained.
fn local_step(
    map: &mut HashMap<String, i64>,
    bucket: &str,
    now: i64,
    step: impl FnOnce(Option<i64>) -> (Step, Option<i64>),
) -> Step {
    if map.len() >= MAX_LOCAL_BUCKETS {
        map.retain(|_, tat| *tat > now);
    }
    let (outcome, next) = step(map.get(bucket).copied());
    if let Some(tat) = next {
        map.insert(bucket.to_owned(), tat);
    }
    outcome
}

pub struct Limiter {
    rates: HashMap<Rule, Rate>,
    redis: Option<Arc<RedisLink>>,
    script: redis::Script,
    token_script: redis::Script,
    local: Mutex<LocalBuckets>,
    started: Instant,
    metrics: Option<LimitMetrics>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("rates", &self.rates)
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl Limiter {
    pub fn new(
        args: &LimitArgs,
        redis: Option<Arc<RedisLink>>,
        metrics: Option<LimitMetrics>,
    ) -> anyhow::Result<Self> {
        let mut rates = HashMap::new();
        for (rule, text, var) in [
            (Rule::Key, &args.rate_per_key, "SWITCHBOARD_RATE_PER_KEY"),
            (
                Rule::Tenant,
                &args.rate_per_tenant,
                "SWITCHBOARD_RATE_PER_TENANT",
            ),
            (
                Rule::Session,
                &args.rate_per_session,
                "SWITCHBOARD_RATE_PER_SESSION",
            ),
            (
                Rule::Tokens,
                &args.tokens_per_tenant,
                "SWITCHBOARD_TOKENS_PER_TENANT",
            ),
        ] {
            if let Some(rate) = Rate::parse(text).map_err(|e| anyhow::anyhow!("{var}: {e}"))? {
                rates.insert(rule, rate);
            }
        }
        Ok(Self {
            rates,
            redis,
            script: redis::Script::new(gcra::SCRIPT),
            token_script: redis::Script::new(tokens::SCRIPT),
            local: Mutex::new(LocalBuckets::default()),
            started: Instant::now(),
            metrics,
        })
    }

    /// Check one request against `rule` for `subject` (a key id, tenant or session):
    /// `None` when the rule is off.
    pub async fn check(&self, rule: Rule, subject: &str) -> Option<Verdict> {
        let rate = *self.rates.get(&rule)?;
        Some(self.check_rate(rule, &rate, subject).await)
    }

    async fn check_rate(&self, rule: Rule, rate: &Rate, subject: &str) -> Verdict {
        let bucket = format!("sb:rl:{}:{subject}", rule.name());
        let args = [rate.interval_ms(), rate.period.as_millis() as i64];
        let started = self.started;
        let (allowed, retry, used) = self
            .step(rule, &self.script, &bucket, &args, true, |local| {
                let now = started.elapsed().as_millis() as i64;
                local_step(&mut local.tat, &bucket, now, |tat| {
                    gcra::check(rate, tat, now)
                })
            })
            .await;
        Verdict::from_state(rate, allowed, retry, used)
    }

    /// One step of a bucket: `script` with `args` in Redis, or `local` in this process
    /// while there is no Redis or it fails (counted). Timed; a refusal is counted when
    /// `count_refusal`.
    async fn step(
        &self,
        rule: Rule,
        script: &redis::Script,
        bucket: &str,
        args: &[i64],
        count_refusal: bool,
        local: impl FnOnce(&mut LocalBuckets) -> Step,
    ) -> Step {
        let started = Instant::now();
        let outcome = match self.remote(script, bucket, args, rule).await {
            Some(outcome) => outcome,
            None => {
                if self.redis.is_some()
                    && let Some(m) = &self.metrics
                {
                    m.local.with_label_values(&[rule.name()]).inc();
                }
                local(&mut self.local.lock().unwrap_or_else(|p| p.into_inner()))
            }
        };
        if let Some(m) = &self.metrics {
            m.seconds.observe(started.elapsed().as_secs_f64());
            if count_refusal && !outcome.0 {
                m.refused.with_label_values(&[rule.name()]).inc();
            }
        }
        outcome
    }

    /// `script` in Redis; `None` without Redis or when it fails.
    async fn remote(
        &self,
        script: &redis::Script,
        bucket: &str,
        args: &[i64],
        rule: Rule,
    ) -> Option<Step> {
        let link = self.redis.as_ref()?;
        let mut conn = link.connection().await?;
        let mut invocation = script.key(bucket);
        for a in args {
            invocation.arg(*a);
        }
        let result: redis::RedisResult<(i64, i64, i64)> = invocation.invoke_async(&mut conn).await;
        match result {
            Ok((allowed, retry, used)) => {
                link.succeeded();
                Some((allowed == 1, retry, used))
            }
            Err(e) => {
                let op = match rule {
                    Rule::Tokens => "token_budget",
                    _ => "rate_limit",
                };
                link.failed(op, &e);
                None
            }
        }
    }
}

impl Limiter {
    /// The limits of one Realtime call: each client `response.create` is one message of
    /// the session rule for `session`, and `tenant`'s token budget is reported with it
    /// (`None` when both rules are off).
    pub fn call_limits(
        self: &Arc<Self>,
        session: String,
        tenant: String,
    ) -> Option<Arc<dyn ConnectionLimits>> {
        let responses = self.rates.get(&Rule::Session).copied();
        if responses.is_none() && !self.has_token_budget() {
            return None;
        }
        Some(Arc::new(CallLimits {
            limiter: Arc::clone(self),
            responses,
            session,
            tenant,
        }))
    }
}

/// A verdict as Realtime's `rate_limits.updated` lists it: the wait until it resets, or
/// until the next is allowed once refused.
fn rate_limit(name: &'static str, v: &Verdict) -> RateLimit {
    RateLimit {
        name,
        limit: v.limit,
        remaining: v.remaining,
        reset_seconds: if v.allowed { v.reset } else { v.retry_after }.as_secs_f64(),
    }
}

/// [`Limiter::call_limits`].
struct CallLimits {
    limiter: Arc<Limiter>,
    responses: Option<Rate>,
    session: String,
    tenant: String,
}

impl ConnectionLimits for CallLimits {
    fn admit_response(&self) -> BoxFuture<'static, Result<Option<RateLimit>, RateLimit>> {
        let (limiter, rate, session) = (
            Arc::clone(&self.limiter),
            self.responses,
            self.session.clone(),
        );
        Box::pin(async move {
            let Some(rate) = rate else {
                return Ok(None);
            };
            let v = limiter.check_rate(Rule::Session, &rate, &session).await;
            let state = rate_limit("requests", &v);
            if v.allowed {
                Ok(Some(state))
            } else {
                Err(state)
            }
        })
    }

    fn look(&self) -> BoxFuture<'static, Vec<RateLimit>> {
        let (limiter, tenant) = (Arc::clone(&self.limiter), self.tenant.clone());
        Box::pin(async move {
            let tokens = limiter.token_report(&tenant).await;
            tokens.iter().map(|v| rate_limit("tokens", v)).collect()
        })
    }
}

/// OpenAI's 429 for a refused check, with `Retry-After` (whole seconds, rounded up) and the
/// `x-ratelimit-*` headers.
pub fn too_many(rule: Rule, v: &Verdict) -> Response {
    let what = match rule {
        Rule::Key => "this API key",
        Rule::Tenant | Rule::Tokens => "this organization",
        Rule::Session => "this session",
    };
    let unit = match rule {
        Rule::Tokens => "tokens",
        _ => "requests",
    };
    let retry_ms = v.retry_after.as_millis().max(1);
    let mut r = openai_error(
        StatusCode::TOO_MANY_REQUESTS,
        unit,
        "rate_limit_exceeded",
        &format!(
            "Rate limit reached for {what}: {} {unit} per {} ms. Try again in {} ms.",
            v.limit,
            v.period.as_millis(),
            retry_ms
        ),
    );
    let h = r.headers_mut();
    let secs = retry_ms.div_ceil(1000);
    for (name, value) in [
        ("retry-after".to_owned(), secs.to_string()),
        ("retry-after-ms".to_owned(), retry_ms.to_string()),
        (format!("x-ratelimit-limit-{unit}"), v.limit.to_string()),
        (
            format!("x-ratelimit-remaining-{unit}"),
            v.remaining.to_string(),
        ),
        (
            format!("x-ratelimit-reset-{unit}"),
            format!("{}ms", v.reset.as_millis()),
        ),
    ] {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(name),
            HeaderValue::from_str(&value),
        ) {
            h.insert(name, value);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_link::RedisMetrics;

    fn limiter(redis_url: Option<&str>) -> (Limiter, Registry) {
        let registry = Registry::new();
        let args = LimitArgs {
            rate_per_key: "5/10s".into(),
            rate_per_tenant: "off".into(),
            rate_per_session: "off".into(),
            tokens_per_tenant: "off".into(),
            max_calls_per_tenant: None,
            redis_url: None,
        };
        let link = redis_url.map(|u| {
            Arc::new(RedisLink::new(u, RedisMetrics::register(&registry).unwrap()).unwrap())
        });
        let metrics = LimitMetrics::register(&registry).unwrap();
        (Limiter::new(&args, link, Some(metrics)).unwrap(), registry)
    }

    async fn six(l: &Limiter, subject: &str) -> Vec<Verdict> {
        let mut out = Vec::new();
        for _ in 0..6 {
            out.push(l.check(Rule::Key, subject).await.unwrap());
        }
        out
    }

    fn assert_five_then_refused(v: &[Verdict]) {
        assert!(v[..5].iter().all(|v| v.allowed), "{v:?}");
        assert_eq!(v[0].remaining, 4);
        assert!(!v[5].allowed);
        // One more is earned after 2 s (10 s / 5); a little has already passed.
        assert!(
            (1500..=2000).contains(&(v[5].retry_after.as_millis() as u64)),
            "{v:?}"
        );
    }

    /// The Lua script and the local check agree (a real Redis: the machine's, as in CI).
    #[tokio::test]
    async fn redis_and_local_buckets_agree() {
        let subject = format!("test-{}", rand::random::<u64>());
        let (remote, reg) = limiter(Some("redis://127.0.0.1:6379"));
        let v = six(&remote, &subject).await;
        assert_five_then_refused(&v);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&reg.gather())
            .unwrap();
        assert!(text.contains("switchboard_redis_up 1"), "{text}");
        assert!(
            !text.contains("switchboard_rate_limit_local_total{"),
            "{text}"
        );

        let (local, _) = limiter(None);
        assert_five_then_refused(&six(&local, &subject).await);
    }

    /// Redis that cannot be reached: limits still hold, counted locally, without stalling.
    #[tokio::test]
    async fn an_unreachable_redis_degrades_to_local_counting() {
        let (l, reg) = limiter(Some("redis://127.0.0.1:1"));
        let started = Instant::now();
        assert_five_then_refused(&six(&l, "k").await);
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&reg.gather())
            .unwrap();
        assert!(
            text.contains(r#"switchboard_rate_limit_local_total{rule="key"} 6"#),
            "{text}"
        );
        assert!(text.contains("switchboard_redis_up 0"), "{text}");
        assert!(
            text.contains(r#"switchboard_rate_limited_total{rule="key"} 1"#),
            "{text}"
        );
    }
}
