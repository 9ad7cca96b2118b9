//! The Realtime session object: parsing `session.update` (GA and beta shapes) onto the
//! pipeline's [`SessionConfig`], and rendering it back for `session.created|updated`.
//!
//! Updates are partial: fields not present keep their value. Unknown fields are ignored
//! (newer clients send more than we know); known fields with a wrong type or value are
//! refused with the path of the field as `param`, and nothing of that update is applied.

use serde_json::{Map, Value, json};
use switchboard_pipeline::SessionConfig;
use switchboard_pipeline::llm::ToolChoice;

use super::fields::{
    INCLUDE_LOGPROBS, Invalid, get_f32, get_str, invalid, parse_include, parse_modalities,
    parse_noise_reduction, parse_turn_detection,
};
pub use super::fields::{
    format_json, parse_format, parse_max_tokens, parse_realtime_tools, parse_tool_choice,
    parse_tools,
};
use super::mcp_tools::mcp_tool_json;
use super::transcription::{SttModel, TranscriptionSettings};
use crate::audio_format::AudioFormat;

/// What a Realtime connection has agreed with its client.
#[derive(Debug, Clone, PartialEq)]
pub struct RealtimeSession {
    pub id: String,
    pub model: String,
    pub config: SessionConfig,
    pub input_format: AudioFormat,
    pub output_format: AudioFormat,
    /// Set when audio travels outside the events (WebRTC's media track) at this fixed rate:
    /// the audio formats of `session.update` are then kept for display and do not change it.
    pub media_rate: Option<u32>,
    /// The speech-to-text model that transcribes the input (`audio.input.transcription`).
    pub transcription_model: String,
    /// Whether that model knows languages other than English.
    pub multilingual_stt: bool,
    /// The client's prompt and keywords for that model.
    pub transcription: TranscriptionSettings,
    /// `include: ["item.input_audio_transcription.logprobs"]`: transcripts carry their
    /// tokens' log probabilities.
    pub transcript_logprobs: bool,
}

impl RealtimeSession {
    pub fn new(id: String, model: String, config: SessionConfig) -> Self {
        let mut s = Self {
            id,
            model,
            config,
            input_format: AudioFormat::REALTIME_DEFAULT,
            output_format: AudioFormat::REALTIME_DEFAULT,
            media_rate: None,
            transcription_model: "whisper".into(),
            multilingual_stt: false,
            transcription: TranscriptionSettings::default(),
            transcript_logprobs: false,
        };
        s.sync_rates();
        s
    }

    /// The model that transcribes the session.
    fn stt_model(&self) -> SttModel<'_> {
        SttModel {
            name: &self.transcription_model,
            multilingual: self.multilingual_stt,
        }
    }

    /// A session whose input `model` transcribes (`multilingual`: it knows more than English).
    pub fn transcribed_by(mut self, model: &str, multilingual: bool) -> Self {
        self.transcription_model = model.to_owned();
        self.multilingual_stt = multilingual;
        self
    }

    /// A session whose audio travels on a media track at `rate` (WebRTC).
    pub fn with_media_rate(mut self, rate: u32) -> Self {
        self.media_rate = Some(rate);
        self.sync_rates();
        self
    }

    fn sync_rates(&mut self) {
        self.config.input_rate = self.media_rate.unwrap_or(self.input_format.rate());
        self.config.output_rate = self.media_rate.unwrap_or(self.output_format.rate());
    }

    /// Apply a `session.update` body. All or nothing.
    pub fn apply(&self, v: &Value) -> Result<RealtimeSession, Invalid> {
        let Value::Object(m) = v else {
            return Err(invalid("session", "session must be an object"));
        };
        let mut next = self.clone();
        let empty = Map::new();
        let audio = m.get("audio").and_then(Value::as_object).unwrap_or(&empty);
        let input = audio
            .get("input")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let output = audio
            .get("output")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if let Some(t) = m.get("type").and_then(Value::as_str) {
            next.config.transcription_only = match t {
                "realtime" => false,
                "transcription" => true,
                _ => {
                    return Err(invalid(
                        "session.type",
                        format!("unsupported session type '{t}': 'realtime' or 'transcription'"),
                    ));
                }
            };
        }
        let stt = self.stt_model();
        if let Some(x) = input.get("transcription") {
            next.transcription =
                self.transcription
                    .apply(x, "session.audio.input.transcription", stt)?;
        } else if let Some(x) = m.get("input_audio_transcription") {
            next.transcription =
                self.transcription
                    .apply(x, "session.input_audio_transcription", stt)?;
        }
        next.config.transcription_prompt = next.transcription.whisper_prompt();
        next.config.transcription_language = next.transcription.language.clone();
        if let Some(x) = m.get("include") {
            next.transcript_logprobs = parse_include(x, "session.include")?;
        }
        if let Some(x) = m.get("model") {
            next.model = get_str(x, "session.model")?.to_owned();
        }
        if let Some(x) = m.get("instructions") {
            next.config.instructions = get_str(x, "session.instructions")?.to_owned();
        }
        if let Some(x) = m.get("output_modalities") {
            next.config.audio_output = parse_modalities(x, "session.output_modalities")?;
        } else if let Some(x) = m.get("modalities") {
            next.config.audio_output = parse_modalities(x, "session.modalities")?;
        }
        if let Some(x) = input.get("format") {
            next.input_format = parse_format(x, "session.audio.input.format")?;
        } else if let Some(x) = m.get("input_audio_format") {
            next.input_format = parse_format(x, "session.input_audio_format")?;
        }
        if let Some(x) = output.get("format") {
            next.output_format = parse_format(x, "session.audio.output.format")?;
        } else if let Some(x) = m.get("output_audio_format") {
            next.output_format = parse_format(x, "session.output_audio_format")?;
        }
        if let Some(x) = input.get("noise_reduction") {
            next.config.noise_reduction =
                parse_noise_reduction(x, "session.audio.input.noise_reduction")?;
        } else if let Some(x) = m.get("input_audio_noise_reduction") {
            next.config.noise_reduction =
                parse_noise_reduction(x, "session.input_audio_noise_reduction")?;
        }
        if let Some(x) = input.get("turn_detection") {
            next.config.turn_detection = parse_turn_detection(
                x,
                self.config.turn_detection,
                "session.audio.input.turn_detection",
            )?;
        } else if let Some(x) = m.get("turn_detection") {
            next.config.turn_detection =
                parse_turn_detection(x, self.config.turn_detection, "session.turn_detection")?;
        }
        if let Some(x) = output.get("voice").or_else(|| m.get("voice")) {
            next.config.voice = get_str(x, "session.audio.output.voice")?.to_owned();
        }
        if let Some(x) = output.get("speed").or_else(|| m.get("speed")) {
            next.config.speed = get_f32(x, "session.audio.output.speed", 0.25..=4.0)?;
        }
        if let Some(x) = m.get("tools") {
            (next.config.tools, next.config.mcp) = parse_realtime_tools(x, "session.tools")?;
        }
        if let Some(x) = m.get("tool_choice") {
            next.config.tool_choice = parse_tool_choice(x, "session.tool_choice")?;
        }
        if let Some(x) = m.get("temperature") {
            next.config.temperature = Some(get_f32(x, "session.temperature", 0.0..=2.0)?);
        }
        if let Some(x) = m
            .get("max_output_tokens")
            .or_else(|| m.get("max_response_output_tokens"))
        {
            next.config.max_output_tokens = parse_max_tokens(x, "session.max_output_tokens")?;
        }
        next.sync_rates();
        Ok(next)
    }

    /// The session object in the GA shape.
    pub fn to_json(&self) -> Value {
        let c = &self.config;
        let td = match c.turn_detection {
            None => Value::Null,
            Some(td) => {
                let mut v = json!({
                    "type": "server_vad",
                    "threshold": td.threshold,
                    "prefix_padding_ms": td.prefix_padding_ms,
                    "silence_duration_ms": td.silence_duration_ms,
                    "create_response": td.create_response,
                    "interrupt_response": td.interrupt_response,
                    "idle_timeout_ms": td.idle_timeout_ms,
                    "min_interrupt_ms": td.min_interrupt_ms,
                    "early_transcription_ms": td.early_ms(),
                });
                if let Some(e) = td.eagerness {
                    // Its pauses come from the judgement, not from a set silence.
                    v["type"] = json!("semantic_vad");
                    v["eagerness"] = json!(e.as_str());
                    v.as_object_mut().map(|o| o.remove("silence_duration_ms"));
                }
                v
            }
        };
        let tools: Vec<Value> = c
            .tools
            .iter()
            .map(|t| json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}))
            .chain(c.mcp.iter().map(mcp_tool_json))
            .collect();
        let tool_choice = match &c.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({"type": "function", "name": name}),
        };
        let input = json!({
            "format": format_json(self.input_format),
            "transcription": self.transcription.to_json(self.stt_model()),
            "noise_reduction": c.noise_reduction.map(|n| json!({"type": n.as_str()})),
            "turn_detection": td,
        });
        let include: Vec<&str> = self
            .transcript_logprobs
            .then_some(INCLUDE_LOGPROBS)
            .into_iter()
            .collect();
        if c.transcription_only {
            return json!({
                "type": "transcription",
                "object": "realtime.transcription_session",
                "id": self.id,
                "audio": {"input": input},
                "include": include,
            });
        }
        json!({
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": if c.audio_output { json!(["audio"]) } else { json!(["text"]) },
            "instructions": c.instructions,
            "tools": tools,
            "tool_choice": tool_choice,
            "max_output_tokens": c.max_output_tokens.map_or(json!("inf"), |m| json!(m)),
            "include": include,
            "audio": {
                "input": input,
                "output": {
                    "format": format_json(self.output_format),
                    "voice": c.voice,
                    "speed": c.speed,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests;
