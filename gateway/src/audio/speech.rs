//! Speech streams: the WAV header (with "unknown length" sizes) or raw PCM goes out first and
//! each sentence's audio follows as soon as it is synthesized, or `speech.audio.delta` SSE events
//! with `stream_format: "sse"`. Output is 24 kHz mono: 16-bit PCM (`wav`, `pcm`, as OpenAI's),
//! MP3 at 64 kbps (`mp3`, streamed frame by frame as each sentence is encoded), or Ogg Opus
//! (`opus`, 48 kHz, written when synthesis ends). AAC and FLAC output would need an encoder
//! library in the build; they are refused by name.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use switchboard_models::audio::mp3::Mp3Encoder;
use switchboard_models::audio::{AudioError, MonoAudio, Resampler, ogg_opus, pcm, rates};
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

/// A WAV header for 16-bit mono at `rate` whose sizes say "until the end of the stream".
fn streaming_wav_header(rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h
}

/// How synthesized audio leaves: 16-bit PCM, or MP3 frames (the encoder is taken when the
/// stream ends and its last frames are flushed).
enum Encoding {
    Pcm16,
    Mp3(Option<Mp3Encoder>),
}

struct Synthesis {
    stream: TtsStream,
    resampler: Resampler,
    encoding: Encoding,
    finished: bool,
}

impl Synthesis {
    fn new(
        engines: &crate::engines::Engines,
        text: &str,
        speed: f32,
        mp3: bool,
    ) -> Result<Self, AudioError> {
        let encoding = match mp3 {
            true => Encoding::Mp3(Some(Mp3Encoder::new(OUT_RATE, MP3_KBPS)?)),
            false => Encoding::Pcm16,
        };
        Ok(Self {
            stream: engines.tts.synthesize(
                text,
                SpeakOptions {
                    speed,
                    priority: Priority::Batch,
                },
            ),
            resampler: Resampler::new(engines.tts.sample_rate(), OUT_RATE)?,
            encoding,
            finished: false,
        })
    }

    /// The next piece of 24 kHz audio, encoded; `None` at the end.
    async fn next_bytes(&mut self) -> Option<Result<Vec<u8>, String>> {
        if self.finished {
            return None;
        }
        let (samples, last) = match self.stream.next().await {
            Some(Ok(chunk)) => (self.resampler.push(&chunk.samples), false),
            Some(Err(e)) => {
                self.finished = true;
                return Some(Err(e.to_string()));
            }
            None => {
                self.finished = true;
                (self.resampler.flush(), true)
            }
        };
        Some(
            samples
                .and_then(|s| self.encode(&s, last))
                .map_err(|e| e.to_string()),
        )
    }

    fn encode(&mut self, samples: &[f32], last: bool) -> Result<Vec<u8>, AudioError> {
        match &mut self.encoding {
            Encoding::Pcm16 => Ok(pcm::i16_to_le_bytes(&pcm::f32_to_i16(samples))),
            Encoding::Mp3(slot) => {
                let Some(enc) = slot.as_mut() else {
                    return Ok(Vec::new());
                };
                let mut out = enc.encode(samples)?;
                if last && let Some(enc) = slot.take() {
                    out.extend(enc.finish()?);
                }
                Ok(out)
            }
        }
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
    let format = body
        .get("response_format")
        .and_then(Value::as_str)
        .unwrap_or("wav")
        .to_owned();
    if !matches!(format.as_str(), "wav" | "pcm" | "mp3" | "opus") {
        return invalid_request(
            format!(
                "response_format '{format}' is not supported here; use 'wav', 'pcm', 'mp3' or 'opus'"
            ),
            "response_format",
            "unsupported_value",
        );
    }
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
    if sse && format == "opus" {
        return invalid_request(
            "response_format 'opus' is not available with stream_format 'sse'",
            "stream_format",
            "unsupported_value",
        );
    }
    let Some(engines) = state.engines() else {
        return not_ready();
    };
    let synthesis = match Synthesis::new(engines, &input, speed, format == "mp3") {
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
    if format == "opus" {
        return opus_response(synthesis).await;
    }
    let header = if format == "wav" {
        Some(streaming_wav_header(OUT_RATE))
    } else {
        None
    };
    let chunks = futures_util::stream::unfold((synthesis, header), |(mut s, header)| async move {
        if let Some(h) = header {
            return Some((Ok::<_, std::io::Error>(Bytes::from(h)), (s, None)));
        }
        match s.next_bytes().await? {
            Ok(bytes) => Some((Ok(Bytes::from(bytes)), (s, None))),
            // The status line is gone: end the body early; the client sees a short file.
            Err(e) => Some((Err(std::io::Error::other(e)), (s, None))),
        }
    });
    let content_type = match format.as_str() {
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        _ => "audio/pcm",
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
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
    let synthesis = Synthesis::new(engines, text, 1.0, false).map_err(|e| e.to_string())?;
    let audio = synthesis.collect().await?;
    ogg_opus::encode(&audio, 32_000).map_err(|e| e.to_string())
}

/// The whole synthesis as one Ogg Opus file.
async fn opus_response(synthesis: Synthesis) -> Response {
    let audio = match synthesis.collect().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "speech synthesis failed");
            return openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "tts_failed",
                "Speech synthesis failed.",
            );
        }
    };
    match ogg_opus::encode(&audio, 32_000) {
        Ok(ogg) => ([(header::CONTENT_TYPE, "audio/ogg")], ogg).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "opus encoding failed");
            openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "encode_failed",
                "Encoding the speech as Opus failed.",
            )
        }
    }
}
