//! WebRTC media metrics: what the network did to the caller's audio and what we sent.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct WebRtcMetrics {
    /// RTP packets by direction (`in`, `out`) and fate: `received`, `lost` (given up by the
    /// jitter buffer), `late` (after their slot, or duplicates), `concealed` (rebuilt by FEC
    /// or PLC, including undecodable ones), `sent`.
    pub packets: IntCounterVec,
    /// Offer received to answer ready.
    pub answer_seconds: Histogram,
}

impl std::fmt::Debug for WebRtcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcMetrics").finish_non_exhaustive()
    }
}

impl WebRtcMetrics {
    pub fn unregistered() -> Self {
        Self {
            packets: IntCounterVec::new(
                Opts::new(
                    "switchboard_webrtc_packets_total",
                    "RTP packets by direction and fate",
                ),
                &["direction", "fate"],
            )
            .expect("valid counter"),
            answer_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "switchboard_webrtc_answer_seconds",
                    "SDP offer received to answer ready",
                )
                .buckets(vec![
                    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0,
                ]),
            )
            .expect("valid histogram"),
        }
    }

    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered();
        registry.register(Box::new(m.packets.clone()))?;
        registry.register(Box::new(m.answer_seconds.clone()))?;
        Ok(m)
    }

    pub(super) fn add(&self, direction: &str, fate: &str, n: u64) {
        if n > 0 {
            self.packets.with_label_values(&[direction, fate]).inc_by(n);
        }
    }
}
