//! Prometheus metrics, all named `switchboard_*`, in one registry served at `/metrics`.

use prometheus::{Encoder, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// 1 when every speech engine is loaded.
    pub ready: IntGauge,
    /// Constant 1, labelled with the version and the STT backend.
    pub build_info: IntGaugeVec,
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
        Self {
            registry,
            ready,
            build_info,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
