//! Every HTTP route the gateway serves, in one table: health and metrics, the OpenAI-shaped
//! APIs, calls (Realtime WebSocket and WebRTC, phone streams), message channels, the call page.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::server::{AppState, healthz, metrics_text, readyz};

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/realtime", get(crate::realtime::connect))
        .route(
            "/v1/realtime/calls",
            axum::routing::post(crate::webrtc::create_call),
        )
        .route(
            "/v1/realtime/calls/{call_id}/hangup",
            axum::routing::post(crate::calls::hang_up),
        )
        .route("/v1/calls", get(crate::calls::list))
        .route(
            "/v1/calls/{call_id}/hangup",
            axum::routing::post(crate::calls::hang_up),
        )
        .route(
            "/v1/calls/{call_id}/messages",
            axum::routing::post(crate::calls::message),
        )
        .route(
            "/v1/calls/{call_id}/transfer",
            axum::routing::post(crate::calls::transfer),
        )
        .route(
            "/v1/realtime/client_secrets",
            axum::routing::post(crate::client_secrets::create),
        )
        .merge(crate::call_page::routes())
        .route(
            "/v1/webhooks/messages",
            axum::routing::post(crate::webhook::receive),
        )
        .route("/slack/events", axum::routing::post(crate::slack::events))
        .route(
            "/telegram/webhook",
            axum::routing::post(crate::telegram::webhook),
        )
        .route(
            "/telephony/twilio/voice",
            axum::routing::post(crate::telephony::twilio_voice),
        )
        .route(
            "/telephony/twilio/stream",
            get(crate::telephony::twilio_stream),
        )
        .route(
            "/telephony/telnyx/stream",
            get(crate::telephony::telnyx_stream),
        )
        .route("/v1/models", get(crate::chat::models))
        .route(
            "/v1/chat/completions",
            axum::routing::post(crate::chat::completions),
        )
        .route(
            "/v1/audio/speech",
            axum::routing::post(crate::audio::speech),
        )
        .route(
            "/v1/audio/transcriptions",
            axum::routing::post(crate::audio::transcriptions)
                // Our own 25 MB check answers 413 in OpenAI's shape; this only stops abuse.
                .layer(axum::extract::DefaultBodyLimit::max(
                    2 * crate::audio::MAX_UPLOAD_BYTES,
                )),
        )
        .route(
            "/v1/audio/translations",
            axum::routing::post(crate::audio::translations).layer(
                axum::extract::DefaultBodyLimit::max(2 * crate::audio::MAX_UPLOAD_BYTES),
            ),
        )
        .route(
            "/v1/knowledge/documents",
            get(crate::knowledge::list)
                .post(crate::knowledge::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    2 * crate::knowledge::MAX_DOCUMENT_BYTES,
                )),
        )
        .route(
            "/v1/knowledge/documents/{id}",
            axum::routing::delete(crate::knowledge::delete),
        )
        .route(
            "/v1/knowledge/search",
            axum::routing::post(crate::knowledge::search),
        )
        .route("/v1/chat/ws", get(crate::chat_ws::connect))
        .route("/v1/sessions", get(crate::sessions::list))
        .route(
            "/v1/sessions/{id}",
            get(crate::sessions::get).delete(crate::sessions::delete),
        )
        .route(
            "/v1/users/{user}/profile",
            get(crate::sessions::get_profile).put(crate::sessions::put_profile),
        )
        .route(
            "/v1/users/{user}/memories",
            get(crate::sessions::memories).delete(crate::sessions::forget),
        )
        .route("/v1/actions", get(crate::actions::list))
        .route("/v1/actions/{id}", get(crate::actions::get))
        .route(
            "/v1/actions/{id}/approve",
            axum::routing::post(crate::actions::approve),
        )
        .route(
            "/v1/actions/{id}/reject",
            axum::routing::post(crate::actions::reject),
        )
        .route("/v1/admin/audit", get(crate::actions::audit))
        .route(
            "/v1/admin/openapi/import",
            axum::routing::post(crate::openapi::import).layer(
                axum::extract::DefaultBodyLimit::max(
                    2 * switchboard_pipeline::tools::openapi::MAX_DOCUMENT_BYTES,
                ),
            ),
        )
        .route(
            "/v1/admin/openapi/imports/{id}",
            get(crate::openapi::get_import),
        )
        .route(
            "/v1/admin/openapi/imports/{id}/approve",
            axum::routing::post(crate::openapi::approve),
        )
        .route("/v1/admin/tools", get(crate::openapi::list_tools))
        .route(
            "/v1/admin/tenants",
            get(crate::tenants::list_tenants).post(crate::tenants::create_tenant),
        )
        .route(
            "/v1/admin/keys",
            get(crate::tenants::list).post(crate::tenants::create),
        )
        .route(
            "/v1/admin/keys/{id}",
            axum::routing::delete(crate::tenants::revoke),
        )
        .with_state(state)
}
