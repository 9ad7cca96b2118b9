//! Runs every enabled engine at once, each under its own deadline, so the stage takes as
//! long as the slowest engine (capped by its deadline), never the sum.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tokio::time::Instant;

use super::{ContextEngine, ContextPart, EngineHealth, LookupCtx, PartKind};

/// Default deadline per engine kind (DESIGN.md: knowledge 500, memory 400, profile 300 ms).
pub fn default_deadline(kind: PartKind) -> Duration {
    Duration::from_millis(match kind {
        PartKind::Knowledge => 500,
        PartKind::Memory => 400,
        PartKind::Profile => 300,
    })
}

/// Which engines a turn uses and how long each may take (from the persona).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextPlan {
    /// Engine names to run; `None` runs every engine the stage has.
    pub engines: Option<Vec<String>>,
    /// Deadlines by engine name; engines not listed get their kind's default.
    pub deadlines: BTreeMap<String, Duration>,
}

/// Why an engine contributed nothing to a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DegradeReason {
    pub engine: String,
    /// `timeout`, `error` or `unavailable`.
    pub reason: &'static str,
    pub detail: String,
}

impl DegradeReason {
    /// The short code reported to clients: `knowledge_timeout`, `memory_error`, ...
    pub fn code(&self) -> String {
        format!("{}_{}", self.engine, self.reason)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ContextOutcome {
    /// Parts from the engines that answered in time, in the stage's engine order.
    pub parts: Vec<ContextPart>,
    pub degrade_reasons: Vec<DegradeReason>,
    pub elapsed: Duration,
}

impl ContextOutcome {
    pub fn degraded(&self) -> bool {
        !self.degrade_reasons.is_empty()
    }

    pub fn degrade_codes(&self) -> Vec<String> {
        self.degrade_reasons
            .iter()
            .map(DegradeReason::code)
            .collect()
    }
}

/// `switchboard_engine_*` metrics.
#[derive(Clone)]
pub struct EngineMetrics {
    /// Lookups by engine and outcome (`ok`, `timeout`, `error`, `unavailable`).
    pub calls_total: IntCounterVec,
    /// Lookups that contributed nothing, by engine and reason.
    pub degraded_total: IntCounterVec,
    /// Lookup latency by engine (answered lookups and timeouts alike).
    pub seconds: HistogramVec,
}

impl std::fmt::Debug for EngineMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineMetrics").finish_non_exhaustive()
    }
}

impl EngineMetrics {
    pub fn unregistered() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
        };
        Self {
            calls_total: counter(
                "switchboard_engine_calls_total",
                "Context engine lookups by engine and outcome",
                &["engine", "outcome"],
            ),
            degraded_total: counter(
                "switchboard_engine_degraded_total",
                "Context engine lookups that contributed nothing, by engine and reason",
                &["engine", "reason"],
            ),
            seconds: HistogramVec::new(
                HistogramOpts::new(
                    "switchboard_engine_lookup_seconds",
                    "Context engine lookup latency",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
                ]),
                &["engine"],
            )
            .expect("valid histogram"),
        }
    }

    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered();
        registry.register(Box::new(m.calls_total.clone()))?;
        registry.register(Box::new(m.degraded_total.clone()))?;
        registry.register(Box::new(m.seconds.clone()))?;
        Ok(m)
    }
}

/// The configured engines.
#[derive(Clone)]
pub struct ContextStage {
    engines: Vec<Arc<dyn ContextEngine>>,
    metrics: EngineMetrics,
}

impl std::fmt::Debug for ContextStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.engines.iter().map(|e| e.name()).collect();
        f.debug_struct("ContextStage")
            .field("engines", &names)
            .finish()
    }
}

enum Outcome {
    Answered(ContextPart),
    Failed(&'static str, String),
}

impl ContextStage {
    pub fn new(engines: Vec<Arc<dyn ContextEngine>>, metrics: EngineMetrics) -> Self {
        Self { engines, metrics }
    }

    /// A stage with no engines: every turn gets no context and is not degraded.
    pub fn empty() -> Self {
        Self::new(Vec::new(), EngineMetrics::unregistered())
    }

    pub fn engines(&self) -> &[Arc<dyn ContextEngine>] {
        &self.engines
    }

    /// Look up every engine the plan enables, concurrently.
    pub async fn run(&self, ctx: &LookupCtx, plan: &ContextPlan) -> ContextOutcome {
        let started = Instant::now();
        let enabled = self.engines.iter().filter(|e| {
            plan.engines
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == e.name()))
        });
        let lookups = enabled.map(|engine| {
            let deadline = plan
                .deadlines
                .get(engine.name())
                .copied()
                .unwrap_or_else(|| default_deadline(engine.kind()));
            self.lookup_one(engine.as_ref(), ctx, deadline)
        });
        let mut out = ContextOutcome::default();
        for (name, outcome) in join_all(lookups).await {
            match outcome {
                Outcome::Answered(part) => out.parts.push(part),
                Outcome::Failed(reason, detail) => {
                    tracing::warn!(engine = %name, reason, %detail, "context engine degraded");
                    self.metrics
                        .degraded_total
                        .with_label_values(&[name.as_str(), reason])
                        .inc();
                    out.degrade_reasons.push(DegradeReason {
                        engine: name,
                        reason,
                        detail,
                    });
                }
            }
        }
        out.elapsed = started.elapsed();
        out
    }

    async fn lookup_one(
        &self,
        engine: &dyn ContextEngine,
        ctx: &LookupCtx,
        deadline: Duration,
    ) -> (String, Outcome) {
        let name = engine.name().to_owned();
        let outcome = if let EngineHealth::Unavailable(why) = engine.health() {
            Outcome::Failed("unavailable", why)
        } else {
            let started = Instant::now();
            let result = tokio::time::timeout(deadline, engine.lookup(ctx)).await;
            self.metrics
                .seconds
                .with_label_values(&[name.as_str()])
                .observe(started.elapsed().as_secs_f64());
            match result {
                Ok(Ok(part)) => Outcome::Answered(part),
                Ok(Err(e)) => Outcome::Failed("error", e.0),
                Err(_) => Outcome::Failed(
                    "timeout",
                    format!("no answer within {} ms", deadline.as_millis()),
                ),
            }
        };
        let label = match &outcome {
            Outcome::Answered(_) => "ok",
            Outcome::Failed(reason, _) => reason,
        };
        self.metrics
            .calls_total
            .with_label_values(&[name.as_str(), label])
            .inc();
        (name, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{ContextItem, EngineError};
    use futures_util::future::BoxFuture;

    /// Answers after `delay`, or fails, or reports itself unavailable.
    struct Fake {
        name: &'static str,
        kind: PartKind,
        delay: Duration,
        fail: bool,
        down: bool,
    }

    impl Fake {
        fn new(name: &'static str, kind: PartKind, delay_ms: u64) -> Self {
            Self {
                name,
                kind,
                delay: Duration::from_millis(delay_ms),
                fail: false,
                down: false,
            }
        }
    }

    impl ContextEngine for Fake {
        fn name(&self) -> &str {
            self.name
        }
        fn kind(&self) -> PartKind {
            self.kind
        }
        fn health(&self) -> EngineHealth {
            if self.down {
                EngineHealth::Unavailable("store offline".into())
            } else {
                EngineHealth::Ready
            }
        }
        fn lookup<'a>(
            &'a self,
            ctx: &'a LookupCtx,
        ) -> BoxFuture<'a, Result<ContextPart, EngineError>> {
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                if self.fail {
                    return Err(EngineError("index corrupt".into()));
                }
                Ok(ContextPart {
                    engine: self.name.into(),
                    kind: self.kind,
                    items: vec![ContextItem {
                        text: format!("{} about {}", self.name, ctx.query),
                        source: self.name.into(),
                        score: 1.0,
                    }],
                })
            })
        }
    }

    fn stage(engines: Vec<Fake>) -> (ContextStage, EngineMetrics) {
        let metrics = EngineMetrics::unregistered();
        let engines = engines
            .into_iter()
            .map(|e| Arc::new(e) as Arc<dyn ContextEngine>)
            .collect();
        (ContextStage::new(engines, metrics.clone()), metrics)
    }

    fn ctx() -> LookupCtx {
        LookupCtx {
            tenant: "default".into(),
            query: "refunds".into(),
            ..LookupCtx::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn total_time_is_the_slowest_engine_not_the_sum() {
        let (stage, _) = stage(vec![
            Fake::new("knowledge", PartKind::Knowledge, 450),
            Fake::new("memory", PartKind::Memory, 350),
            Fake::new("profile", PartKind::Profile, 250),
        ]);
        let out = stage.run(&ctx(), &ContextPlan::default()).await;
        assert_eq!(out.parts.len(), 3);
        assert!(!out.degraded());
        // Sequential would be 1050 ms.
        assert_eq!(out.elapsed, Duration::from_millis(450));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_engine_is_cut_at_its_deadline_and_reported() {
        let (stage, metrics) = stage(vec![
            Fake::new("knowledge", PartKind::Knowledge, 60_000),
            Fake::new("memory", PartKind::Memory, 10),
            Fake::new("profile", PartKind::Profile, 5),
        ]);
        let out = stage.run(&ctx(), &ContextPlan::default()).await;
        assert_eq!(out.elapsed, Duration::from_millis(500));
        assert_eq!(out.degrade_codes(), vec!["knowledge_timeout"]);
        let engines: Vec<&str> = out.parts.iter().map(|p| p.engine.as_str()).collect();
        assert_eq!(engines, ["memory", "profile"]);
        let count = |m: &IntCounterVec, a: &str, b: &str| m.with_label_values(&[a, b]).get();
        assert_eq!(count(&metrics.calls_total, "knowledge", "timeout"), 1);
        assert_eq!(count(&metrics.degraded_total, "knowledge", "timeout"), 1);
        assert_eq!(count(&metrics.calls_total, "memory", "ok"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn persona_deadlines_and_engine_choice_apply() {
        let (stage, _) = stage(vec![
            Fake::new("knowledge", PartKind::Knowledge, 150),
            Fake::new("memory", PartKind::Memory, 10),
            Fake::new("profile", PartKind::Profile, 10),
        ]);
        let plan = ContextPlan {
            engines: Some(vec!["knowledge".into(), "profile".into()]),
            deadlines: [("knowledge".to_owned(), Duration::from_millis(100))].into(),
        };
        let out = stage.run(&ctx(), &plan).await;
        assert_eq!(out.elapsed, Duration::from_millis(100));
        assert_eq!(out.degrade_codes(), vec!["knowledge_timeout"]);
        assert_eq!(out.parts.len(), 1);
        assert_eq!(out.parts[0].engine, "profile");
    }

    #[tokio::test(start_paused = true)]
    async fn failing_and_unavailable_engines_degrade_without_failing_the_turn() {
        let mut failing = Fake::new("knowledge", PartKind::Knowledge, 20);
        failing.fail = true;
        let mut down = Fake::new("memory", PartKind::Memory, 0);
        down.down = true;
        let (stage, _) = stage(vec![
            failing,
            down,
            Fake::new("profile", PartKind::Profile, 30),
        ]);
        let out = stage.run(&ctx(), &ContextPlan::default()).await;
        assert_eq!(
            out.degrade_codes(),
            vec!["knowledge_error", "memory_unavailable"]
        );
        assert_eq!(out.parts.len(), 1);
        assert_eq!(out.elapsed, Duration::from_millis(30));
    }
}
