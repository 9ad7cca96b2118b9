//! Prometheus metrics, all named `switchboard_*`, in one registry served at `/metrics`.

use prometheus::{Encoder, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// 1 when every speech engine is loaded.
    pub ready: IntGauge,
    /// Constant 1, labelled with the version and the STT backend.
    pub build_info: IntGaugeVec,
    /// Tasks alive on the async runtime (read at scrape time): a leak shows as growth.
    runtime_tasks: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let ready = IntGauge::new("switchboard_ready", "1 when the speech engines are loaded")
            .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "switchboard_build_info",
                "Version and speech-to-text backend",
            ),
            &["version", "stt_backend"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(ready.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(build_info.clone()))
            .expect("unique metric");
        let runtime_tasks = IntGauge::new(
            "switchboard_runtime_alive_tasks",
            "Tasks alive on the async runtime",
        )
        .expect("valid metric");
        registry
            .register(Box::new(runtime_tasks.clone()))
            .expect("unique metric");
        Self {
            registry,
            ready,
            build_info,
            runtime_tasks,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            self.runtime_tasks
                .set(handle.metrics().num_alive_tasks() as i64);
        }
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
