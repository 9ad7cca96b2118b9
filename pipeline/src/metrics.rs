//! The call pipeline's Prometheus metrics. The gateway registers them in its registry.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Latency buckets from 5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
    10.0,
];

#[derive(Clone)]
pub struct CallMetrics {
    pub calls_active: IntGauge,
    pub calls_total: IntCounter,
    pub turns_total: IntCounter,
    /// Errors sent to clients or met inside a call, by type.
    pub errors_total: IntCounterVec,
    /// Responses by terminal status (completed, cancelled, failed, incomplete).
    pub responses_total: IntCounterVec,
    pub llm_fallbacks_total: IntCounterVec,
    /// Last speech sample to the end-of-turn decision.
    pub end_of_speech_seconds: Histogram,
    /// A turn's transcription from its request to its transcript (queue and decoding), also
    /// when it started early and finished before the turn ended.
    pub stt_seconds: Histogram,
    /// Smart Turn's judgement of a pause (`semantic_vad`), queue and inference.
    pub end_of_turn_model_seconds: Histogram,
    /// Transcriptions started at a pause, by outcome: `used` (the turn ended as predicted),
    /// `cancelled` (speech went on), `stale` (the turn ended otherwise).
    pub early_transcriptions_total: IntCounterVec,
    /// Turns ended by the VAD, by what ended them: `silence` (`server_vad`, or no
    /// transcript to judge yet), or `semantic_vad`'s judgement of the transcript:
    /// `finished`, `unsure`, `unfinished`.
    pub turn_ends_total: IntCounterVec,
    /// Calls that detected their caller's language (`call/language.rs`), by language and
    /// `from`: `speech` (detected while the caller spoke) or `turn` (a turn's transcript).
    pub languages_detected_total: IntCounterVec,
    /// Turns whose transcription fell into Whisper's repetition loop and was stopped, by the
    /// language decoded: callers speaking a language the model was not told.
    pub stt_loops_stopped_total: IntCounterVec,
    /// Replies drafted while the caller paused, by outcome: `used` (the turn's response took
    /// it), `cancelled` (speech went on), `stale` (the turn or conversation changed),
    /// `failed` (it failed or would have acted).
    pub speculative_replies_total: IntCounterVec,
    pub llm_first_token_seconds: Histogram,
    /// A TTS chunk request to its first audio.
    pub tts_first_audio_seconds: Histogram,
    /// Last user speech sample to the first reply audio sent.
    pub voice_to_voice_seconds: Histogram,
    /// Confirmed barge-in (`speech_started`) to the last reply audio sent.
    pub barge_in_seconds: Histogram,
    /// Orchestrator stages (prepare, generate) by stage name.
    pub stage_seconds: HistogramVec,
    /// Server-side tool calls by tool and outcome (`ok`, an error kind, `proposed`,
    /// `rejected`, `expired`, ...).
    pub tool_calls_total: IntCounterVec,
    /// Server-side tool run time (retries included), by tool.
    pub tool_seconds: HistogramVec,
}

impl std::fmt::Debug for CallMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMetrics").finish_non_exhaustive()
    }
}

fn histogram(name: &str, help: &str) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
        .expect("valid histogram")
}

impl CallMetrics {
    /// New metrics registered in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered();
        registry.register(Box::new(m.calls_active.clone()))?;
        registry.register(Box::new(m.calls_total.clone()))?;
        registry.register(Box::new(m.turns_total.clone()))?;
        registry.register(Box::new(m.errors_total.clone()))?;
        registry.register(Box::new(m.responses_total.clone()))?;
        registry.register(Box::new(m.llm_fallbacks_total.clone()))?;
        registry.register(Box::new(m.early_transcriptions_total.clone()))?;
        registry.register(Box::new(m.turn_ends_total.clone()))?;
        registry.register(Box::new(m.languages_detected_total.clone()))?;
        registry.register(Box::new(m.stt_loops_stopped_total.clone()))?;
        registry.register(Box::new(m.speculative_replies_total.clone()))?;
        for h in [
            &m.end_of_speech_seconds,
            &m.stt_seconds,
            &m.end_of_turn_model_seconds,
            &m.llm_first_token_seconds,
            &m.tts_first_audio_seconds,
            &m.voice_to_voice_seconds,
            &m.barge_in_seconds,
        ] {
            registry.register(Box::new(h.clone()))?;
        }
        registry.register(Box::new(m.stage_seconds.clone()))?;
        registry.register(Box::new(m.tool_calls_total.clone()))?;
        registry.register(Box::new(m.tool_seconds.clone()))?;
        Ok(m)
    }

    /// Metrics that count but are not exported (tests, tools).
    pub fn unregistered() -> Self {
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
        };
        Self {
            calls_active: IntGauge::new("switchboard_calls_active", "Calls in progress")
                .expect("valid gauge"),
            calls_total: IntCounter::new("switchboard_calls_total", "Calls started")
                .expect("valid counter"),
            turns_total: IntCounter::new("switchboard_turns_total", "User turns committed")
                .expect("valid counter"),
            errors_total: counter_vec("switchboard_errors_total", "Errors by type", &["type"]),
            responses_total: counter_vec(
                "switchboard_responses_total",
                "Responses by final status",
                &["status"],
            ),
            llm_fallbacks_total: counter_vec(
                "switchboard_llm_fallbacks_total",
                "LLM provider switches, by the provider given up on and why",
                &["provider", "reason"],
            ),
            end_of_speech_seconds: histogram(
                "switchboard_end_of_speech_seconds",
                "Last speech sample to the end-of-turn decision",
            ),
            stt_seconds: histogram("switchboard_stt_seconds", "Speech-to-text per turn"),
            end_of_turn_model_seconds: histogram(
                "switchboard_end_of_turn_model_seconds",
                "Smart Turn's judgement of a pause (semantic_vad), queue and inference",
            ),
            early_transcriptions_total: counter_vec(
                "switchboard_early_transcriptions_total",
                "Transcriptions started when the caller paused, by outcome",
                &["outcome"],
            ),
            turn_ends_total: counter_vec(
                "switchboard_turn_ends_total",
                "Turns ended by the VAD, by what ended them (silence, or semantic_vad's judgement)",
                &["by"],
            ),
            languages_detected_total: counter_vec(
                "switchboard_languages_detected_total",
                "Calls whose caller's language was detected (sessions that name none, multilingual model; from=switch: a caller who switched language mid-call)",
                &["language", "from"],
            ),
            stt_loops_stopped_total: counter_vec(
                "switchboard_stt_loops_stopped_total",
                "Turns whose transcription looped and was stopped, by the language decoded (is it the callers'?)",
                &["language"],
            ),
            speculative_replies_total: counter_vec(
                "switchboard_speculative_replies_total",
                "Replies drafted while the caller paused, by outcome",
                &["outcome"],
            ),
            llm_first_token_seconds: histogram(
                "switchboard_llm_first_token_seconds",
                "LLM request to its first token",
            ),
            tts_first_audio_seconds: histogram(
                "switchboard_tts_first_audio_seconds",
                "Text-to-speech request to its first audio",
            ),
            voice_to_voice_seconds: histogram(
                "switchboard_voice_to_voice_seconds",
                "Last user speech sample received to the first reply audio sent",
            ),
            barge_in_seconds: histogram(
                "switchboard_barge_in_seconds",
                "Barge-in detected (speech_started) to the last reply audio sent",
            ),
            stage_seconds: HistogramVec::new(
                HistogramOpts::new("switchboard_stage_seconds", "Orchestrator stage durations")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                &["stage"],
            )
            .expect("valid histogram"),
            tool_calls_total: counter_vec(
                "switchboard_tool_calls_total",
                "Server-side tool calls and confirmations, by tool and outcome",
                &["tool", "outcome"],
            ),
            tool_seconds: HistogramVec::new(
                HistogramOpts::new("switchboard_tool_seconds", "Server-side tool run time")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                &["tool"],
            )
            .expect("valid histogram"),
        }
    }
}
