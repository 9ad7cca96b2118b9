//! Uploaded forms (`multipart/form-data`): the body, its fields and a file field's bytes, each
//! failure an OpenAI-shaped error. Used by transcriptions, knowledge documents and WebRTC
//! offers.

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::server::invalid_request;

/// A multipart body, or the OpenAI-shaped 400 for a request that is not one.
pub fn multipart(form: Result<Multipart, MultipartRejection>) -> Result<Multipart, Response> {
    form.map_err(|e| {
        invalid_request(
            format!("The body must be multipart/form-data with a 'file' field ({e})."),
            "file",
            "missing_required_parameter",
        )
    })
}

/// The next field of an uploaded form; a body that breaks off or is malformed is the
/// OpenAI-shaped 400.
pub async fn next_field(form: &mut Multipart) -> Result<Option<Field<'_>>, Response> {
    form.next_field().await.map_err(|e| {
        invalid_request(
            format!("malformed multipart body: {e}"),
            "file",
            "invalid_value",
        )
    })
}

/// The bytes of an uploaded multipart file field, at most `max`: more is a 413 in OpenAI's
/// shape (`file_too_large`), a broken upload a 400.
pub async fn read_file_field(field: &mut Field<'_>, max: usize) -> Result<Vec<u8>, Response> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| invalid_request(format!("upload interrupted: {e}"), "file", "invalid_value"))?
    {
        if bytes.len() + chunk.len() > max {
            let body = serde_json::json!({"error": {"message": format!("File is larger than the {} MB limit.", max / (1024 * 1024)),
                "type": "invalid_request_error", "param": "file", "code": "file_too_large"}});
            return Err((StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
