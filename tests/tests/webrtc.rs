//! Realtime over WebRTC end to end: the real gateway binary and speech models, a scripted
//! LLM, and a caller built on the `webrtc` crate speaking Opus at real-time pace over
//! loopback. Signalling errors (bad SDP, codecs, secrets) are checked on the HTTP route.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_e2e::gateway::{Gateway, http_get, http_post_json, metric};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};
use switchboard_e2e::webrtc_client::{RATE, WebRtcClient, post_sdp};

const LONG: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn mint(gw: &Gateway, body: Value) -> String {
    let (status, body) =
        http_post_json(gw.addr, "/v1/realtime/client_secrets", &body.to_string()).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["value"].as_str().unwrap().to_owned()
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap_or_default()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_webrtc_call_hears_answers_and_is_interrupted() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let secret = mint(
            &gw,
            json!({"session": {"type": "realtime", "instructions": "Be helpful."}}),
        );
        // 109, not Chromium's 111: the gateway must use the payload type it was offered.
        let (mut c, offer, _states) = WebRtcClient::offer(109).await.unwrap();
        let posted = post_sdp(
            gw.addr,
            "/v1/realtime/calls",
            Some(&secret),
            "application/sdp",
            &offer,
        )
        .await;
        assert_eq!(posted.status, 201, "{}", posted.body);
        assert!(posted.body.contains("opus/48000"), "{}", posted.body);
        c.accept(posted.body).await.unwrap();
        let created = c.wait_for("session.created", LONG).await.unwrap();
        assert_eq!(created["session"]["instructions"], "Be helpful.");
        assert_eq!(
            created["session"]["audio"]["input"]["transcription"]["model"], "whisper-tiny.en-q8_0",
            "the session names the model that transcribes"
        );

        let mut question = silence(500, RATE);
        question.extend(say("What is the weather like in Paris today?", RATE));
        question.extend(silence(1_200, RATE));
        c.speak(&question).await.unwrap();
        let heard = c
            .wait_for(
                "conversation.item.input_audio_transcription.completed",
                LONG,
            )
            .await
            .unwrap();
        let transcript = heard["transcript"].as_str().unwrap().to_lowercase();
        assert!(
            transcript.contains("weather") && transcript.contains("paris"),
            "user transcript: {transcript}"
        );
        c.wait_for("output_audio_buffer.started", LONG)
            .await
            .unwrap();
        // Let a second of the reply play, then talk over it.
        c.speak(&silence(1_000, RATE)).await.unwrap();
        let loud_before = c.audio.lock().unwrap().loud.len();
        assert!(
            loud_before > 10,
            "reply audio arrived on the remote track ({loud_before} loud packets)"
        );
        // The next reply is short, to see a reply play to its end.
        llm.set_script(Script {
            reply: "London is rainy.".into(),
            ..Script::default()
        });
        let mut interruption = say("Stop. Tell me about London instead.", RATE);
        interruption.extend(silence(1_500, RATE));
        c.speak(&interruption).await.unwrap();
        c.wait_for("output_audio_buffer.cleared", LONG)
            .await
            .unwrap();
        let first_done = c.wait_for("response.done", LONG).await.unwrap();
        assert_eq!(
            first_done["response"]["status"], "cancelled",
            "{first_done}"
        );
        let cleared_at = c.first("output_audio_buffer.cleared").unwrap().0;
        // The reply's audio stops within a frame or two of the flush.
        let second_start = c
            .seen
            .iter()
            .filter(|(_, v)| v["type"] == "output_audio_buffer.started")
            .nth(1)
            .map(|(t, _)| *t);
        let late = c
            .audio
            .lock()
            .unwrap()
            .loud
            .iter()
            .filter(|&&t| {
                t > cleared_at + Duration::from_millis(100) && second_start.is_none_or(|s| t < s)
            })
            .count();
        assert_eq!(
            late, 0,
            "audio kept coming after output_audio_buffer.cleared"
        );
        let assistant: String = c
            .seen
            .iter()
            .filter(|(_, v)| v["type"] == "response.output_audio_transcript.delta")
            .map(|(_, v)| v["delta"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(
            assistant.contains("weather in Paris"),
            "assistant: {assistant}"
        );
        let truncated = c
            .wait_for("conversation.item.truncated", LONG)
            .await
            .unwrap();
        assert!(truncated["audio_end_ms"].as_u64().unwrap() > 0);

        // The second reply plays to its end: started, then stopped.
        c.wait_for("output_audio_buffer.started", LONG)
            .await
            .unwrap();
        c.speak(&silence(2_500, RATE)).await.unwrap();
        c.wait_for("output_audio_buffer.stopped", LONG)
            .await
            .unwrap();
        let second = c.wait_for("response.done", LONG).await.unwrap();
        assert_eq!(second["response"]["status"], "completed", "{second}");

        // An out-of-band response may not speak: its audio could only go into the track.
        c.send(
            &json!({"type": "response.create", "response": {"conversation": "none",
            "output_modalities": ["audio"]}}),
        )
        .await
        .unwrap();
        let refused = c.wait_for("error", LONG).await.unwrap();
        assert_eq!(refused["error"]["code"], "invalid_value", "{refused}");
        assert_eq!(refused["error"]["param"], "response.output_modalities");

        // A secret is good for one call.
        let (c2, offer2, _) = WebRtcClient::offer(111).await.unwrap();
        let again = post_sdp(
            gw.addr,
            "/v1/realtime/calls",
            Some(&secret),
            "application/sdp",
            &offer2,
        )
        .await;
        assert_eq!(again.status, 401);
        assert_eq!(error_code(&again.body), "client_secret_used");
        c2.hang_up().await;
        c.hang_up().await;
    });
    let metrics = gw.metrics();
    let count = |labels: &str| {
        metric(
            &metrics,
            &format!("switchboard_webrtc_packets_total{{{labels}}}"),
        )
    };
    assert!(
        count(r#"direction="in",fate="received""#) > 200.0,
        "{metrics}"
    );
    assert!(count(r#"direction="out",fate="sent""#) > 50.0, "{metrics}");
    assert_eq!(
        count(r#"direction="in",fate="lost""#),
        0.0,
        "no loss on loopback"
    );
}

#[test]
fn signalling_errors_are_clear() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let (c, offer, _) = WebRtcClient::offer(111).await.unwrap();
        let call = |body: String, ct: &'static str, bearer: Option<String>| {
            let addr = gw.addr;
            async move { post_sdp(addr, "/v1/realtime/calls", bearer.as_deref(), ct, &body).await }
        };

        let bad = call("hello, I am not SDP".into(), "application/sdp", None).await;
        assert_eq!((bad.status, error_code(&bad.body)), (400, "invalid_sdp".into()), "{}", bad.body);

        let g722 = offer.replace("opus/48000/2", "G722/8000");
        let r = call(g722, "application/sdp", None).await;
        assert_eq!((r.status, error_code(&r.body)), (400, "unsupported_codec".into()), "{}", r.body);
        assert!(r.body.contains("G722/8000"), "{}", r.body);

        let r = post_sdp(gw.addr, "/v1/realtime/calls?persona=nobody", None, "application/sdp", &offer).await;
        assert_eq!((r.status, error_code(&r.body)), (400, "invalid_value".into()), "{}", r.body);

        let r = call(offer.clone(), "application/json", None).await;
        assert_eq!(r.status, 415, "{}", r.body);

        let r = call(offer.clone(), "application/sdp", Some("ek_unknown".into())).await;
        assert_eq!((r.status, error_code(&r.body)), (401, "invalid_api_key".into()));

        // An expired secret (the shortest lifetime is 10 s).
        let short = mint(&gw, json!({"expires_after": {"anchor": "created_at", "seconds": 10}}));
        tokio::time::sleep(Duration::from_millis(10_300)).await;
        let r = call(offer.clone(), "application/sdp", Some(short)).await;
        assert_eq!((r.status, error_code(&r.body)), (401, "client_secret_expired".into()));

        // Multipart with a session object: the answer comes back, and the session applies.
        let boundary = "XyZbOuNdArY";
        let form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\n{offer}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n\
             {{\"type\": \"realtime\", \"instructions\": \"Speak like a pirate.\"}}\r\n--{boundary}--\r\n"
        );
        let ct: &'static str = "multipart/form-data; boundary=XyZbOuNdArY";
        let started = Instant::now();
        let r = call(form, ct, None).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(started.elapsed() < Duration::from_secs(2), "answer took {:?}", started.elapsed());
        let mut c = c;
        c.accept(r.body).await.unwrap();
        let created = c.wait_for("session.created", LONG).await.unwrap();
        assert_eq!(created["session"]["instructions"], "Speak like a pirate.");
        // Appending audio as events is refused over WebRTC, in the protocol's own shape.
        c.send(&json!({"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "e1"}))
            .await
            .unwrap();
        let err = c.wait_for("error", LONG).await.unwrap();
        assert_eq!(err["error"]["event_id"], "e1");
        // The server hangs the call up: the data channel closes under the caller.
        let call_id = created["session"]["id"].as_str().unwrap().to_owned();
        let hangup = format!("/v1/realtime/calls/{call_id}/hangup");
        let (status, body) = http_post_json(gw.addr, &hangup, "{}").unwrap();
        assert_eq!(status, 200, "{body}");
        let closed = c.wait_for("never-sent", LONG).await.unwrap_err();
        assert!(closed.to_string().contains("closed"), "{closed}");
        let (status, _) = http_post_json(gw.addr, &hangup, "{}").unwrap();
        assert_eq!(status, 404, "a call ends once");
        c.hang_up().await;

        // The call page and its secret endpoint (on: no API keys are configured).
        let (status, page) = http_get(gw.addr, "/").unwrap();
        assert_eq!(status, 200);
        assert!(page.contains("/call.js"));
        let (status, js) = http_get(gw.addr, "/call.js").unwrap();
        assert!(status == 200 && js.contains("oai-events"));
        let (status, body) = http_post_json(gw.addr, "/call-page/secret", "{}").unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"ek_"));
        // The page's turn-end choice becomes the call's session, checked when minted.
        let semantic = r#"{"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}"#;
        let (status, body) = http_post_json(gw.addr, "/call-page/secret", semantic).unwrap();
        assert_eq!(status, 200, "{body}");
        let td = &serde_json::from_str::<Value>(&body).unwrap()["session"]["audio"]["input"]
            ["turn_detection"];
        assert_eq!((&td["type"], &td["eagerness"]), (&json!("semantic_vad"), &json!("high")));
        let bad = r#"{"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}"#;
        let (status, body) = http_post_json(gw.addr, "/call-page/secret", bad).unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("turn_detection.eagerness"), "{body}");
    });
}

#[test]
fn with_api_keys_browsers_call_with_client_secrets_only() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_API_KEYS", "sk-test")]);
    runtime().block_on(async {
        let body = r#"{"session": {"type": "realtime"}, "user": "ada"}"#;
        let path = "/v1/realtime/client_secrets";
        let denied = post_sdp(gw.addr, path, None, "application/json", body).await;
        assert_eq!(denied.status, 401, "minting needs the API key");
        let minted = post_sdp(gw.addr, path, Some("sk-test"), "application/json", body).await;
        assert_eq!(minted.status, 200, "{}", minted.body);
        let secret = serde_json::from_str::<Value>(&minted.body).unwrap()["value"]
            .as_str()
            .unwrap()
            .to_owned();

        let (mut c, offer, _) = WebRtcClient::offer(111).await.unwrap();
        let calls = "/v1/realtime/calls";
        let r = post_sdp(gw.addr, calls, None, "application/sdp", &offer).await;
        assert_eq!(r.status, 401, "no key, no secret");
        let r = post_sdp(gw.addr, calls, Some(&secret), "application/sdp", &offer).await;
        assert_eq!(r.status, 201, "{}", r.body);
        c.accept(r.body).await.unwrap();
        c.wait_for("session.created", LONG).await.unwrap();
        c.hang_up().await;

        // With keys set, the call page (which mints for anyone) is off unless asked for.
        let (status, _) = http_get(gw.addr, "/").unwrap();
        assert_eq!(status, 404);
        let (status, _) = http_post_json(gw.addr, "/call-page/secret", "{}").unwrap();
        assert_eq!(status, 404);
    });
}
