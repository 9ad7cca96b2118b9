//! `POST /v1/audio/transcriptions` and `POST /v1/audio/translations`: one upload's speech as
//! text, in its own language or translated into English (Whisper's two tasks, one handler).
//! Translation needs a multilingual model; like a transcription it takes `language` (here the
//! language spoken, detected when not given), `prompt` (in English), `stream` and the same
//! response formats, and its `verbose_json` says `"task": "translate"`, `"language": "english"`.
//!
//! Transcriptions with `stream: true` send each segment as a `transcript.text.delta` as soon
//! as whisper.cpp decodes it (a long file goes a piece of at most 8 s at a time, cut at a
//! pause), then `transcript.text.done`. A client that goes away stops the decoding.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_channels::realtime::transcription::{
    check_translation, file_language, logprobs_json,
};
use switchboard_models::audio::decode;
use switchboard_models::stt::{
    Priority, STT_SAMPLE_RATE, SpeechToText, SttError, TranscribeOptions, Transcript, language_name,
};

use crate::auth::Scope;
use crate::server::{AppState, invalid_request, openai_error};

use super::not_ready;

/// OpenAI's upload limit.
pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;

struct Upload {
    file: Vec<u8>,
    filename: Option<String>,
    response_format: String,
    stream: bool,
    prompt: Option<String>,
    /// The client's `language`, checked against the model once it is known.
    language: Option<String>,
    /// `include[]=logprobs`: the transcript's tokens with their log probabilities.
    logprobs: bool,
    /// `timestamp_granularities[]` (`verbose_json` only): segments (the default), words.
    granularities: Granularities,
}

/// What `verbose_json` times: segments unless the client asks only for words.
#[derive(Debug, Clone, Copy, Default)]
struct Granularities {
    segment: bool,
    word: bool,
}

impl Granularities {
    /// Asked for at all.
    fn named(self) -> bool {
        self.segment || self.word
    }

    fn segments(self) -> bool {
        self.segment || !self.word
    }
}

async fn read_upload(mut form: Multipart) -> Result<Upload, Response> {
    let mut up = Upload {
        file: Vec::new(),
        filename: None,
        response_format: "json".into(),
        stream: false,
        prompt: None,
        language: None,
        logprobs: false,
        granularities: Granularities::default(),
    };
    let mut has_file = false;
    while let Some(mut field) = crate::upload::next_field(&mut form).await? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            up.filename = field.file_name().map(str::to_owned);
            up.file = crate::upload::read_file_field(&mut field, MAX_UPLOAD_BYTES).await?;
            has_file = true;
            continue;
        }
        let value = field.text().await.unwrap_or_default();
        match name.as_str() {
            "response_format" => up.response_format = value,
            "stream" => up.stream = value == "true",
            "prompt" => up.prompt = Some(value).filter(|p| !p.is_empty()),
            "include[]" | "include" if value == "logprobs" => up.logprobs = true,
            "include[]" | "include" => {
                return Err(invalid_request(
                    format!("unknown include value '{value}': only 'logprobs'"),
                    "include",
                    "invalid_value",
                ));
            }
            "language" => up.language = Some(value).filter(|l| !l.trim().is_empty()),
            "timestamp_granularities[]" | "timestamp_granularities" => match value.as_str() {
                "segment" => up.granularities.segment = true,
                "word" => up.granularities.word = true,
                _ => {
                    return Err(invalid_request(
                        format!("unknown timestamp granularity '{value}': 'word' or 'segment'"),
                        "timestamp_granularities",
                        "invalid_value",
                    ));
                }
            },
            // model, temperature: the one model loaded serves all (greedy decoding).
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
    if up.granularities.named() && up.response_format != "verbose_json" {
        return Err(invalid_request(
            "timestamp_granularities needs response_format 'verbose_json'.",
            "timestamp_granularities",
            "invalid_value",
        ));
    }
    if up.logprobs && up.response_format != "json" {
        return Err(invalid_request(
            "include[]=logprobs needs response_format 'json'.",
            "include",
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

/// Which of Whisper's tasks an upload asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Transcribe,
    /// Into English.
    Translate,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Transcribe => "transcribe",
            Task::Translate => "translate",
        }
    }
}

fn render_transcript(t: &Transcript, task: Task, up: &Upload) -> Response {
    let text = t.text.trim().to_owned();
    let format = up.response_format.as_str();
    match format {
        "text" => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        "verbose_json" => {
            let segments: Vec<Value> = t
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| json!({"id": i, "seek": 0, "start": s.start_ms as f64 / 1000.0, "end": s.end_ms as f64 / 1000.0,
                    "text": s.text, "tokens": s.tokens.iter().map(|t| t.id).collect::<Vec<_>>(), "temperature": 0.0,
                    "avg_logprob": s.avg_logprob(), "no_speech_prob": s.no_speech_prob}))
                .collect();
            // A translation's language is the text's, as OpenAI's: always English.
            let language = match task {
                Task::Transcribe => language_name(&t.language).unwrap_or(&t.language),
                Task::Translate => "english",
            };
            let mut body = json!({"task": task.name(), "language": language, "duration": t.audio_secs, "text": text,
                "usage": {"type": "duration", "seconds": t.audio_secs.ceil()}});
            if up.granularities.segments() {
                body["segments"] = segments.into();
            }
            if up.granularities.word {
                let words: Vec<Value> = t
                    .segments
                    .iter()
                    .flat_map(|s| s.words())
                    .map(|w| json!({"word": w.text, "start": w.start_ms as f64 / 1000.0, "end": w.end_ms as f64 / 1000.0}))
                    .collect();
                body["words"] = words.into();
            }
            Json(body).into_response()
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
        _ => {
            let mut body = json!({"text": text, "usage": {"type": "duration", "seconds": t.audio_secs.ceil()}});
            if up.logprobs {
                body["logprobs"] = logprobs_json(t.tokens());
            }
            Json(body).into_response()
        }
    }
}

/// `POST /v1/audio/transcriptions`.
pub async fn transcriptions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    serve(&state, &headers, form, Task::Transcribe).await
}

/// `POST /v1/audio/translations`.
pub async fn translations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    serve(&state, &headers, form, Task::Translate).await
}

async fn serve(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
    task: Task,
) -> Response {
    if let Err(denied) = state.auth.require(headers, Scope::Audio).await {
        return denied;
    }
    let form = match crate::upload::multipart(form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut up = match read_upload(form).await {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let Some(engines) = state.engines() else {
        return not_ready();
    };
    if task == Task::Translate
        && let Err(message) = check_translation(engines.stt.multilingual(), engines.stt.model())
    {
        return invalid_request(message, "model", "invalid_value");
    }
    let language = match file_language(
        up.language.as_deref(),
        engines.stt.multilingual(),
        engines.stt.model(),
    ) {
        Ok(l) => l.map(str::to_owned),
        Err(message) => return invalid_request(message, "language", "invalid_value"),
    };
    let ext = up
        .filename
        .as_deref()
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_lowercase());
    let file = std::mem::take(&mut up.file);
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
            prompt: up.prompt.take(),
            translate: task == Task::Translate,
            word_times: up.granularities.word,
            language,
            segments: sink,
            ..TranscribeOptions::at(Priority::Batch)
        },
    );
    let Some(mut segments) = segments else {
        return match job.await {
            Ok(t) => render_transcript(&t, task, &up),
            Err(e) => stt_failed(e),
        };
    };
    // Each segment is sent as whisper.cpp finishes it (a piece at a time); the stream
    // starts with the first one, so a refused or failed job is still a plain HTTP error.
    let Some(first) = segments.recv().await else {
        // The job ended without a segment: silence, or an error.
        return match job.await {
            Ok(t) => Sse::new(futures_util::stream::iter([Ok::<_, Infallible>(
                transcript_done(&t, up.logprobs),
            )]))
            .into_response(),
            Err(e) => stt_failed(e),
        };
    };
    let rest = futures_util::stream::unfold(segments, |mut rx| async move {
        rx.recv().await.map(|s| (s, rx))
    });
    let logprobs = up.logprobs;
    let deltas = futures_util::stream::iter([first])
        .chain(rest)
        .enumerate()
        .map(move |(i, s)| {
            // Deltas concatenate to the final text, whose segments are joined by spaces.
            let delta = if i == 0 {
                s.text.clone()
            } else {
                format!(" {}", s.text)
            };
            let mut ev = json!({"type": "transcript.text.delta", "delta": delta});
            if logprobs {
                ev["logprobs"] = logprobs_json(&s.tokens);
            }
            ev
        })
        .map(|ev| Event::default().data(ev.to_string()));
    let done = futures_util::stream::once(async move {
        match job.await {
            Ok(t) => transcript_done(&t, logprobs),
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

fn transcript_done(t: &Transcript, logprobs: bool) -> Event {
    let mut done = json!({"type": "transcript.text.done", "text": t.text.trim(),
        "usage": {"type": "duration", "seconds": t.audio_secs.ceil()}});
    if logprobs {
        done["logprobs"] = logprobs_json(t.tokens());
    }
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
