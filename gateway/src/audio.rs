//! `POST /v1/audio/speech` and `POST /v1/audio/transcriptions` in OpenAI's shape, on the same
//! Piper and Whisper engines that serve calls.
//!
//! Speech streams: the WAV header (with "unknown length" sizes) or raw PCM goes out first and
//! each sentence's audio follows as soon as it is synthesized, or `speech.audio.delta` SSE events
//! with `stream_format: "sse"`. Output is 24 kHz mono: 16-bit PCM (`wav`, `pcm`, as OpenAI's),
//! MP3 at 64 kbps (`mp3`, streamed frame by frame as each sentence is encoded), or Ogg Opus
//! (`opus`, 48 kHz, written when synthesis ends). AAC and FLAC output would need an encoder
//! library in the build; they are refused by name.
//!
//! Transcriptions with `stream: true` send each segment as a `transcript.text.delta` as soon
//! as whisper.cpp decodes it (a 30 s window at a time), then `transcript.text.done`. A client
//! that goes away stops the decoding.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_models::audio::mp3::Mp3Encoder;
use switchboard_models::audio::{AudioError, MonoAudio, Resampler, decode, ogg_opus, pcm, rates};
use switchboard_models::stt::{
    Priority, STT_SAMPLE_RATE, SpeechToText, SttError, TranscribeOptions, Transcript,
};
use switchboard_models::tts::{SpeakOptions, TextToSpeech, TtsStream};

use crate::auth::Scope;
use crate::server::{AppState, invalid_request, openai_error};

/// OpenAI's upload limit.
pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;
/// The most input text one speech request takes (OpenAI's limit).
const MAX_INPUT_CHARS: usize = 4096;
const OUT_RATE: u32 = rates::REALTIME;
/// MP3 bit rate: speech at 24 kHz mono is clear at 64 kbps.
const MP3_KBPS: u32 = 64;

fn not_ready() -> Response {
    openai_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "not_ready",
        "The speech engines are still loading; retry shortly.",
    )
}

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

struct Upload {
    file: Vec<u8>,
    filename: Option<String>,
    response_format: String,
    stream: bool,
    prompt: Option<String>,
}

async fn read_upload(mut form: Multipart) -> Result<Upload, Response> {
    let mut up = Upload {
        file: Vec::new(),
        filename: None,
        response_format: "json".into(),
        stream: false,
        prompt: None,
    };
    let mut has_file = false;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(invalid_request(
                    format!("malformed multipart body: {e}"),
                    "file",
                    "invalid_value",
                ));
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            up.filename = field.file_name().map(str::to_owned);
            let mut field = field;
            up.file = crate::server::read_file_field(&mut field, MAX_UPLOAD_BYTES).await?;
            has_file = true;
            continue;
        }
        let value = field.text().await.unwrap_or_default();
        match name.as_str() {
            "response_format" => up.response_format = value,
            "stream" => up.stream = value == "true",
            "prompt" => up.prompt = Some(value).filter(|p| !p.is_empty()),
            // model, language, temperature, timestamp_granularities: one English model serves all.
            _ => {}
        }
    }
    if !has_file || up.file.is_empty() {
        return Err(invalid_request(
            "Missing required parameter: 'file'.",
            "file",
            "missing_required_parameter",
        ));
    }
    if !matches!(
        up.response_format.as_str(),
        "json" | "text" | "verbose_json" | "srt" | "vtt"
    ) {
        return Err(invalid_request(
            format!("unknown response_format '{}'", up.response_format),
            "response_format",
            "invalid_value",
        ));
    }
    Ok(up)
}

fn timestamp(ms: u64, sep: char) -> String {
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn render_transcript(t: &Transcript, format: &str) -> Response {
    let text = t.text.trim().to_owned();
    match format {
        "text" => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        "verbose_json" => {
            let segments: Vec<Value> = t
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| json!({"id": i, "seek": 0, "start": s.start_ms as f64 / 1000.0, "end": s.end_ms as f64 / 1000.0,
                    "text": s.text, "tokens": [], "temperature": 0.0, "no_speech_prob": s.no_speech_prob}))
                .collect();
            Json(json!({"task": "transcribe", "language": "english", "duration": t.audio_secs, "text": text, "segments": segments,
                "usage": {"type": "duration", "seconds": t.audio_secs.ceil()}}))
            .into_response()
        }
        "srt" | "vtt" => {
            let sep = if format == "srt" { ',' } else { '.' };
            let mut out = if format == "vtt" {
                "WEBVTT\n\n".to_owned()
            } else {
                String::new()
            };
            for (i, s) in t.segments.iter().enumerate() {
                if format == "srt" {
                    out.push_str(&format!("{}\n", i + 1));
                }
                out.push_str(&format!(
                    "{} --> {}\n{}\n\n",
                    timestamp(s.start_ms, sep),
                    timestamp(s.end_ms, sep),
                    s.text.trim()
                ));
            }
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response()
        }
        _ => Json(
            json!({"text": text, "usage": {"type": "duration", "seconds": t.audio_secs.ceil()}}),
        )
        .into_response(),
    }
}

pub async fn transcriptions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    if let Err(denied) = state.auth.require(&headers, Scope::Audio).await {
        return denied;
    }
    let form = match crate::server::multipart(form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let up = match read_upload(form).await {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let Some(engines) = state.engines() else {
        return not_ready();
    };
    let ext = up
        .filename
        .as_deref()
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_lowercase());
    let file = up.file;
    let decoded = tokio::task::spawn_blocking(move || {
        decode::decode(&file, ext.as_deref()).and_then(|a| a.to_rate(STT_SAMPLE_RATE))
    })
    .await;
    let audio = match decoded {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            return invalid_request(
                format!("Could not decode the audio file: {e}"),
                "file",
                "invalid_value",
            );
        }
        Err(_) => {
            return openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "decode_failed",
                "Decoding failed.",
            );
        }
    };
    let (sink, segments) = match up.stream {
        true => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let job = engines.stt.transcribe(
        audio.samples,
        // Live calls' turns go first: nobody on a call waits for an upload.
        TranscribeOptions {
            prompt: up.prompt,
            segments: sink,
            ..TranscribeOptions::at(Priority::Batch)
        },
    );
    let Some(mut segments) = segments else {
        return match job.await {
            Ok(t) => render_transcript(&t, &up.response_format),
            Err(e) => stt_failed(e),
        };
    };
    // Each segment is sent as whisper.cpp finishes it (a 30 s window at a time); the stream
    // starts with the first one, so a refused or failed job is still a plain HTTP error.
    let Some(first) = segments.recv().await else {
        // The job ended without a segment: silence, or an error.
        return match job.await {
            Ok(t) => Sse::new(futures_util::stream::iter([Ok::<_, Infallible>(
                transcript_done(&t),
            )]))
            .into_response(),
            Err(e) => stt_failed(e),
        };
    };
    let rest = futures_util::stream::unfold(segments, |mut rx| async move {
        rx.recv().await.map(|s| (s, rx))
    });
    let deltas = futures_util::stream::iter([first])
        .chain(rest)
        .enumerate()
        .map(|(i, s)| {
            // Deltas concatenate to the final text, whose segments are joined by spaces.
            let delta = if i == 0 {
                s.text
            } else {
                format!(" {}", s.text)
            };
            json!({"type": "transcript.text.delta", "delta": delta})
        })
        .map(|ev| Event::default().data(ev.to_string()));
    let done = futures_util::stream::once(async move {
        match job.await {
            Ok(t) => transcript_done(&t),
            Err(e) => {
                tracing::warn!(error = %e, "streamed transcription failed");
                let error = json!({"type": "error", "error": {"type": "server_error",
                    "code": "transcription_failed", "message": "Transcription failed."}});
                Event::default().data(error.to_string())
            }
        }
    });
    Sse::new(deltas.chain(done).map(Ok::<_, Infallible>)).into_response()
}

fn transcript_done(t: &Transcript) -> Event {
    let done = json!({"type": "transcript.text.done", "text": t.text.trim(),
        "usage": {"type": "duration", "seconds": t.audio_secs.ceil()}});
    Event::default().data(done.to_string())
}

fn stt_failed(e: SttError) -> Response {
    match e {
        SttError::Overloaded(_) => openai_error(
            StatusCode::TOO_MANY_REQUESTS,
            "server_error",
            "overloaded",
            "Speech-to-text is busy; retry shortly.",
        ),
        e => {
            tracing::warn!(error = %e, "transcription failed");
            openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "transcription_failed",
                "Transcription failed.",
            )
        }
    }
}
