//! Bad input on the Realtime WebSocket: every kind gets an `error` event in the Realtime shape
//! (with the client's `event_id` when it had one) and the session keeps answering. Also: 100
//! calls aborted mid-response leave no call, task or worker behind.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::gateway::{Gateway, sample};
use switchboard_e2e::realtime_client::{RealtimeClient, b64};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::say;
use tokio_tungstenite::tungstenite::Message;

const LONG: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn expect_error(
    c: &mut RealtimeClient,
    code: &str,
    event_id: Option<&str>,
    param: Option<&str>,
) -> Value {
    let e = c
        .wait_for("error", Duration::from_secs(10))
        .await
        .unwrap()
        .event;
    let err = &e["error"];
    assert_eq!(err["code"], code, "{e}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{e}"
    );
    assert!(
        err["type"] == "invalid_request_error" || err["type"] == "server_error",
        "{e}"
    );
    assert_eq!(err["event_id"].as_str(), event_id, "{e}");
    assert_eq!(err["param"].as_str(), param, "{e}");
    e
}

async fn still_answers(c: &mut RealtimeClient) {
    c.send(
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "Are you there?"}]}}),
    )
    .await
    .unwrap();
    c.send(json!({"type": "response.create", "response": {"output_modalities": ["text"]}}))
        .await
        .unwrap();
    let done = c.wait_for("response.done", LONG).await.unwrap();
    assert_eq!(done.event["response"]["status"], "completed");
}

#[test]
fn every_bad_input_gets_an_error_and_the_session_goes_on() {
    let llm = ScriptedLlm::start(Script {
        reply: "Yes.".into(),
        ..Script::default()
    });
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.send_raw(Message::Text("{\"type\": \"session.update\", ".into())).await.unwrap();
        expect_error(&mut c, "invalid_json", None, None).await;
        c.send(json!({"event_id": "e1", "type": "no.such.event"})).await.unwrap();
        expect_error(&mut c, "invalid_event_type", Some("e1"), Some("type")).await;
        c.send(json!({"event_id": "e2", "type": "input_audio_buffer.append", "audio": "***not base64***"})).await.unwrap();
        expect_error(&mut c, "invalid_value", Some("e2"), Some("audio")).await;
        c.send(json!({"event_id": "e3", "type": "input_audio_buffer.append", "audio": "AAAAAAA="})).await.unwrap();
        expect_error(&mut c, "invalid_value", Some("e3"), Some("audio")).await; // 5 bytes: not 16-bit PCM
        c.send(json!({"event_id": "e4", "type": "input_audio_buffer.commit"})).await.unwrap();
        expect_error(&mut c, "input_audio_buffer_commit_empty", Some("e4"), None).await;
        c.send(json!({"event_id": "e5", "type": "response.cancel"})).await.unwrap();
        expect_error(&mut c, "response_cancel_not_active", Some("e5"), None).await;
        c.send(json!({"event_id": "e6", "type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0, "audio_end_ms": 10})).await.unwrap();
        expect_error(&mut c, "item_not_found", Some("e6"), Some("item_id")).await;
        c.send(json!({"event_id": "e7", "type": "conversation.item.delete"})).await.unwrap();
        expect_error(&mut c, "missing_required_parameter", Some("e7"), Some("item_id")).await;
        c.send(json!({"event_id": "e8", "type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/flac"}}}}})).await.unwrap();
        expect_error(&mut c, "invalid_value", Some("e8"), Some("session.audio.input.format")).await;
        c.send(json!({"event_id": "e9", "type": "session.update", "session": {"audio": {"input": {"turn_detection": {"threshold": "high"}}}}})).await.unwrap();
        expect_error(&mut c, "invalid_value", Some("e9"), Some("session.audio.input.turn_detection.threshold")).await;
        c.send(json!({"event_id": "e10", "type": "conversation.item.create", "previous_item_id": "item_missing",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}})).await.unwrap();
        expect_error(&mut c, "invalid_value", Some("e10"), Some("previous_item_id")).await;
        c.send(json!({"event_id": "e12", "type": "session.update", "session": {"audio": {"input": {"transcription": {"language": "de"}}}}})).await.unwrap();
        expect_error(&mut c, "invalid_value", Some("e12"), Some("session.audio.input.transcription.language")).await;
        // A transcription session refuses responses; back to a realtime session, it answers.
        c.send(json!({"type": "session.update", "session": {"type": "transcription"}})).await.unwrap();
        c.wait_for("session.updated", LONG).await.unwrap();
        c.send(json!({"event_id": "e13", "type": "response.create"})).await.unwrap();
        expect_error(&mut c, "transcription_session", Some("e13"), None).await;
        c.send(json!({"type": "session.update", "session": {"type": "realtime"}})).await.unwrap();
        c.wait_for("session.updated", LONG).await.unwrap();
        c.send_raw(Message::Binary(vec![1u8, 2, 3].into())).await.unwrap();
        expect_error(&mut c, "invalid_event", None, None).await;
        let huge = format!(r#"{{"type":"input_audio_buffer.append","audio":"{}"}}"#, "A".repeat(9 * 1024 * 1024));
        c.send_raw(Message::Text(huge.into())).await.unwrap();
        expect_error(&mut c, "message_too_large", None, None).await;
        // A response while one is active, and out-of-order events around it.
        c.send(json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Hello"}]}})).await.unwrap();
        c.send(json!({"type": "response.create"})).await.unwrap();
        c.send(json!({"event_id": "e11", "type": "response.create"})).await.unwrap();
        expect_error(&mut c, "conversation_already_has_active_response", Some("e11"), None).await;
        c.wait_for("response.done", LONG).await.unwrap();
        still_answers(&mut c).await;
        // The socket stayed open throughout: the session is the same one.
        c.close().await;
    });
    assert!(
        gw.metrics()
            .contains("switchboard_errors_total{type=\"invalid_json\"} 1")
    );
}

#[test]
fn a_protocol_violation_closes_with_a_code() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        // Over the 16 MiB frame limit: not a bad event but a broken peer.
        let frame = "A".repeat(17 * 1024 * 1024);
        let _ = c.send_raw(Message::Text(frame.into())).await;
        let mut closed = false;
        for _ in 0..20 {
            if c.next(Duration::from_secs(1)).await.is_none() {
                closed = true;
                break;
            }
        }
        assert!(closed, "socket should close");
    });
    // The server is still fine for others.
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        still_answers(&mut c).await;
    });
}

#[test]
fn aborted_calls_leave_nothing_behind() {
    let llm = ScriptedLlm::start(Script {
        token_ms: 40,
        ..Script::default()
    });
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let gauge = |name: &str| sample(&gw.metrics(), name).map_or(-1, |v| v as i64);
    let baseline = gauge("switchboard_runtime_alive_tasks");
    let speech = say("Tell me a story.", 24_000);
    runtime().block_on(async {
        for i in 0..100 {
            let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
            c.send(json!({"type": "session.update", "session": {"audio": {"input": {"turn_detection": null}}}})).await.unwrap();
            c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&speech)})).await.unwrap();
            c.send(json!({"type": "input_audio_buffer.commit"})).await.unwrap();
            c.send(json!({"type": "response.create"})).await.unwrap();
            // Hang up at different points: before the transcript, mid-LLM, mid-audio.
            match i % 3 {
                0 => {}
                1 => { let _ = c.wait_for("response.created", LONG).await; }
                _ => { let _ = c.wait_for("response.output_audio.delta", LONG).await; }
            }
            drop(c);
        }
    });
    let mut settled = false;
    for _ in 0..100 {
        if gauge("switchboard_calls_active") == 0
            && gauge("switchboard_runtime_alive_tasks") <= baseline + 2
        {
            settled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        settled,
        "calls {} tasks {} (baseline {baseline})",
        gauge("switchboard_calls_active"),
        gauge("switchboard_runtime_alive_tasks")
    );
    // And the engines still serve a call (no worker slot was lost).
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        still_answers(&mut c).await;
    });
}

/// A WebSocket upgrade request to `gw`'s Realtime route with one extra header.
fn request_with(
    gw: &Gateway,
    name: &'static str,
    value: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = gw.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(name, value.parse().unwrap());
    req
}

#[test]
fn api_keys_are_enforced_and_required_off_loopback() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(
        &[llm.base_url()],
        &[("SWITCHBOARD_API_KEYS", "sk-one,sk-two")],
    );
    runtime().block_on(async {
        let err = RealtimeClient::connect(&gw.ws_url())
            .await
            .err()
            .expect("refused without a key");
        assert!(err.to_string().contains("401"), "{err}");
        let req = request_with(&gw, "authorization", "Bearer sk-wrong");
        let err = tokio_tungstenite::connect_async(req)
            .await
            .expect_err("refused with a wrong key");
        assert!(err.to_string().contains("401"), "{err}");
        let req = request_with(&gw, "authorization", "Bearer sk-two");
        assert!(tokio_tungstenite::connect_async(req).await.is_ok());
        // Browsers: the key as a subprotocol, and the "realtime" protocol echoed.
        let req = request_with(
            &gw,
            "sec-websocket-protocol",
            "realtime, openai-insecure-api-key.sk-one",
        );
        let (_, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], "realtime");
    });
    // Without keys the server refuses to listen beyond loopback, in one line.
    let out = std::process::Command::new(switchboard_e2e::binary())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("SWITCHBOARD_API_KEYS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without API keys"),
        "{err}"
    );
}

/// Responses a client asks for count against the session limit: within it each
/// `rate_limits.updated` says what is left; over it `response.create` gets
/// `rate_limit_exceeded`, then `rate_limits.updated` with nothing left, and the call goes on.
#[test]
fn responses_over_the_session_limit_are_refused_and_reported() {
    let llm = ScriptedLlm::start(Script {
        reply: "Ok.".into(),
        ..Script::default()
    });
    let gw = Gateway::start(
        &[llm.base_url()],
        &[("SWITCHBOARD_RATE_PER_SESSION", "2/60s")],
    );
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        for left in [1, 0] {
            c.send(
                json!({"type": "conversation.item.create", "item": {"type": "message",
                "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}}),
            )
            .await
            .unwrap();
            c.send(json!({"type": "response.create"})).await.unwrap();
            c.wait_for("response.done", LONG).await.unwrap();
            let limits = c.wait_for("rate_limits.updated", LONG).await.unwrap().event;
            let r = &limits["rate_limits"][0];
            assert_eq!(
                (r["name"].as_str(), r["limit"].as_u64()),
                (Some("requests"), Some(2)),
                "{limits}"
            );
            assert_eq!(r["remaining"], left, "{limits}");
        }
        c.send(json!({"type": "response.create", "event_id": "evt_3"}))
            .await
            .unwrap();
        expect_error(&mut c, "rate_limit_exceeded", Some("evt_3"), None).await;
        let limits = c.wait_for("rate_limits.updated", LONG).await.unwrap().event;
        let r = &limits["rate_limits"][0];
        assert_eq!(r["remaining"], 0, "{limits}");
        assert!(
            r["reset_seconds"].as_f64().is_some_and(|s| s > 1.0),
            "{limits}"
        );
        // The call goes on (more responses would be refused too until one is earned back).
        c.send(
            json!({"type": "session.update", "session": {"type": "realtime",
            "instructions": "Be brief."}}),
        )
        .await
        .unwrap();
        c.wait_for("session.updated", LONG).await.unwrap();
    });
    assert_eq!(
        llm.requests().len(),
        2,
        "the refused response never reached the model"
    );
}
