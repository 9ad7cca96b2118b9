//! `POST /v1/audio/speech` (`speech.rs`), `POST /v1/audio/transcriptions` and
//! `POST /v1/audio/translations` (`transcriptions.rs`) in OpenAI's shape, on the same Piper and Whisper engines that serve
//! calls. Their work waits behind live calls' in the engines' urgency queues.

mod speech;
mod transcriptions;

use axum::http::StatusCode;
use axum::response::Response;

pub use speech::{speak_ogg_opus, speech};
pub use transcriptions::{MAX_UPLOAD_BYTES, transcriptions, translations};

use crate::server::openai_error;

fn not_ready() -> Response {
    openai_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "not_ready",
        "The speech engines are still loading; retry shortly.",
    )
}
