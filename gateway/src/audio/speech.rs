//! Speech streams: each sentence's audio goes out as soon as it is synthesized and encoded,
//! as the bytes of an audio file or as `speech.audio.delta` SSE events with
//! `stream_format: "sse"`. Output is 24 kHz mono in any of OpenAI's formats but AAC: 16-bit
//! PCM (`wav` with an "unknown length" header, bare `pcm`), MP3 at 64 kbps, Ogg Opus at
//! 32 kbps, or FLAC (lossless), each written as a stream (`audio::stream`). AAC would need an
//! encoder library in the build; it is refused by name.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use switchboard_models::audio::flac::FlacEncoder;
use switchboard_models::audio::mp3::Mp3Encoder;
use switchboard_models::audio::ogg_opus::{self, OggOpusEncoder};
use switchboard_models::audio::stream::{Pcm16Stream, StreamEncoder};
use switchboard_models::audio::{AudioError, MonoAudio, Resampler, pcm, rates};
use switchboard_models::stt::Priority;
use switchboard_models::tts::{SpeakOptions, TextToSpeech, TtsStream};

use crate::auth::Scope;
use crate::server::{AppState, invalid_request, openai_error};

use super::not_ready;

/// The most input text one speech request takes (OpenAI's limit).
const MAX_INPUT_CHARS: usize = 4096;
const OUT_RATE: u32 = rates::REALTIME;
/// MP3 bit rate: speech at 24 kHz mono is clear at 64 kbps.
const MP3_KBPS: u32 = 64;
/// Opus bit rate: wideband speech is transparent well below this.
const OPUS_BPS: i32 = 32_000;

/// The `response_format`s offered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Wav,
    Pcm,
    Mp3,
    Opus,
    Flac,
}

impl Format {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "wav" => Self::Wav,
            "pcm" => Self::Pcm,
            "mp3" => Self::Mp3,
            "opus" => Self::Opus,
            "flac" => Self::Flac,
            _ => return None,
        })
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Pcm => "audio/pcm",
            Self::Mp3 => "audio/mpeg",
            Self::Opus => "audio/ogg",
            Self::Flac => "audio/flac",
        }
    }

    fn encoder(self) -> Result<Box<dyn StreamEncoder>, AudioError> {
        Ok(match self {
            Self::Wav => Box::new(Pcm16Stream::wav(OUT_RATE)),
            Self::Pcm => Box::new(Pcm16Stream::raw()),
            Self::Mp3 => Box::new(Mp3Encoder::new(OUT_RATE, MP3_KBPS)?),
            Self::Opus => Box::new(OggOpusEncoder::new(OUT_RATE, OPUS_BPS)?),
            Self::Flac => Box::new(FlacEncoder::new(OUT_RATE)?),
        })
    }
}

struct Synthesis {
    stream: TtsStream,
    resampler: Resampler,
    /// Taken when the stream ends and its last bytes are flushed.
    encoder: Option<Box<dyn StreamEncoder>>,
}

impl Synthesis {
    fn new(
        engines: &crate::engines::Engines,
        text: &str,
        speed: f32,
        format: Format,
    ) -> Result<Self, AudioError> {
        Ok(Self {
            stream: engines.tts.synthesize(
                text,
                SpeakOptions {
                    speed,
                    priority: Priority::Batch,
                },
            ),
            resampler: Resampler::new(engines.tts.sample_rate(), OUT_RATE)?,
            encoder: Some(format.encoder()?),
        })
    }

    /// The next piece of 24 kHz audio, encoded (never empty); `None` at the end.
    async fn next_bytes(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            self.encoder.as_ref()?;
            let (samples, last) = match self.stream.next().await {
                Some(Ok(chunk)) => (self.resampler.push(&chunk.samples), false),
                Some(Err(e)) => {
                    self.encoder = None;
                    return Some(Err(e.to_string()));
                }
                None => (self.resampler.flush(), true),
            };
            match samples.and_then(|s| self.encode(&s, last)) {
                // Not a whole frame yet, or nothing left at the end.
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => return Some(Ok(bytes)),
                Err(e) => {
                    self.encoder = None;
                    return Some(Err(e.to_string()));
                }
            }
        }
    }

    fn encode(&mut self, samples: &[f32], last: bool) -> Result<Vec<u8>, AudioError> {
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(Vec::new());
        };
        let mut out = encoder.encode(samples)?;
        if last && let Some(encoder) = self.encoder.take() {
            out.extend(encoder.finish()?);
        }
        Ok(out)
    }
}

pub async fn speech(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(denied) = state.auth.require(&headers, Scope::Audio).await {
        return denied;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return invalid_request("The body is not valid JSON.", "body", "invalid_json");
    };
    let input = match body.get("input").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() && t.chars().count() <= MAX_INPUT_CHARS => t.to_owned(),
        Some(t) if !t.trim().is_empty() => {
            return invalid_request(
                format!("'input' is longer than {MAX_INPUT_CHARS} characters"),
                "input",
                "string_above_max_length",
            );
        }
        _ => {
            return invalid_request(
                "'input' must be a non-empty string",
                "input",
                "invalid_value",
            );
        }
    };
    if body
        .get("voice")
        .is_some_and(|v| !v.is_string() && !v.is_object())
    {
        return invalid_request("'voice' must be a voice name", "voice", "invalid_value");
    }
    // One Piper voice serves every voice name; OpenAI's names are accepted for compatibility.
    let name = body
        .get("response_format")
        .and_then(Value::as_str)
        .unwrap_or("wav");
    let Some(format) = Format::parse(name) else {
        return invalid_request(
            format!(
                "response_format '{name}' is not supported here; use 'wav', 'pcm', 'mp3', 'opus' or 'flac'"
            ),
            "response_format",
            "unsupported_value",
        );
    };
    let speed = match body.get("speed") {
        None | Some(Value::Null) => 1.0,
        Some(s) => match s.as_f64().filter(|s| (0.25..=4.0).contains(s)) {
            Some(s) => s as f32,
            None => {
                return invalid_request(
                    "'speed' must be between 0.25 and 4.0",
                    "speed",
                    "invalid_value",
                );
            }
        },
    };
    let sse = match body.get("stream_format").and_then(Value::as_str) {
        None | Some("audio") => false,
        Some("sse") => true,
        Some(other) => {
            return invalid_request(
                format!("unknown stream_format '{other}'"),
                "stream_format",
                "invalid_value",
            );
        }
    };
    let Some(engines) = state.engines() else {
        return not_ready();
    };
    let synthesis = match Synthesis::new(engines, &input, speed, format) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "speech output cannot be set up");
            return openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "tts_failed",
                "Speech synthesis is misconfigured.",
            );
        }
    };
    if sse {
        let events = futures_util::stream::unfold(
            (synthesis, 0usize),
            |(mut s, total)| async move {
                match s.next_bytes().await {
                    Some(Ok(bytes)) => {
                        let ev = json!({"type": "speech.audio.delta", "audio": base64::engine::general_purpose::STANDARD.encode(&bytes)});
                        Some((
                            Ok::<_, Infallible>(Event::default().data(ev.to_string())),
                            (s, total + bytes.len()),
                        ))
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "speech synthesis failed mid-stream");
                        let ev = json!({"type": "error", "error": {"message": "Speech synthesis failed.", "type": "server_error", "code": "tts_failed"}});
                        Some((Ok(Event::default().data(ev.to_string())), (s, total)))
                    }
                    None if total != usize::MAX => {
                        let ev = json!({"type": "speech.audio.done", "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}});
                        Some((Ok(Event::default().data(ev.to_string())), (s, usize::MAX)))
                    }
                    None => None,
                }
            },
        );
        return Sse::new(events).into_response();
    }
    let chunks = futures_util::stream::unfold(synthesis, |mut s| async move {
        match s.next_bytes().await? {
            Ok(bytes) => Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), s)),
            // The status line is gone: end the body early; the client sees a short file.
            Err(e) => Some((Err(std::io::Error::other(e)), s)),
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

impl Synthesis {
    /// All of it, as 24 kHz mono.
    async fn collect(mut self) -> Result<MonoAudio, String> {
        let mut bytes = Vec::new();
        while let Some(chunk) = self.next_bytes().await {
            bytes.extend(chunk?);
        }
        let samples = pcm::i16_to_f32(&pcm::le_bytes_to_i16(&bytes));
        Ok(MonoAudio::new(samples, OUT_RATE))
    }
}

/// `text` spoken by the TTS engine, whole, as Ogg Opus (a voice note).
pub async fn speak_ogg_opus(
    engines: &crate::engines::Engines,
    text: &str,
) -> Result<Vec<u8>, String> {
    let synthesis = Synthesis::new(engines, text, 1.0, Format::Pcm).map_err(|e| e.to_string())?;
    let audio = synthesis.collect().await?;
    ogg_opus::encode(&audio, OPUS_BPS).map_err(|e| e.to_string())
}
