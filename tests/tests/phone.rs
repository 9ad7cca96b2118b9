//! Phone calls end to end: a stand-in for Twilio's side of a Media Stream (mu-law at real-time
//! pace, playout that echoes marks and honours `clear`) against the real gateway, models and
//! a scripted LLM; the TwiML webhook and Twilio signatures.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::gateway::{Gateway, PersonaFile, http_get};
use switchboard_e2e::phone_client::{PhoneClient, RATE};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};
use switchboard_e2e::webrtc_client::post_sdp;

mod calls;
use calls::metric;

const LONG: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn stream_url(gw: &Gateway) -> String {
    format!("ws://{}/telephony/twilio/stream", gw.addr)
}

/// The stored session of `user` once it has `messages` messages.
/// After a moment of silence, press `key`, wait until the reply is heard, and hang up.
async fn press_and_hear_the_reply(phone: &PhoneClient, key: char) {
    phone.speak(&silence(200, RATE)).await.unwrap();
    phone.dtmf(key).unwrap();
    phone
        .wait_until("reply to the key press", LONG, |l| l.loud_played.len() > 5)
        .await
        .unwrap();
    phone.stop();
}

/// Ask the test question and wait until `frames` loud frames of the reply have played.
async fn ask_the_weather(phone: &PhoneClient, frames: usize) {
    let mut question = silence(300, RATE);
    question.extend(say("What is the weather like in Paris today?", RATE));
    question.extend(silence(1_500, RATE));
    phone.speak(&question).await.unwrap();
    phone
        .wait_until("reply audio", LONG, |l| l.loud_played.len() > frames)
        .await
        .unwrap();
}

fn phone_session(gw: &Gateway, messages: usize) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = http_get(gw.addr, "/v1/sessions").unwrap();
        let list: Value = serde_json::from_str(&body).unwrap();
        if let Some(s) = list["data"].as_array().and_then(|d| {
            d.iter().find(|s| {
                s["channel"] == "phone" && s["message_count"].as_u64() >= Some(messages as u64)
            })
        }) {
            let id = s["id"].as_str().unwrap();
            let (_, body) = http_get(gw.addr, &format!("/v1/sessions/{id}")).unwrap();
            return serde_json::from_str(&body).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no phone session: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_phone_call_is_answered_and_interrupted_with_marks_and_clear() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let played_before_clear = runtime().block_on(async {
        let phone = PhoneClient::connect(
            &stream_url(&gw),
            json!({"from": "+15550001", "callSid": "CA0"}),
        )
        .await
        .unwrap();
        ask_the_weather(&phone, 10).await;
        // About a second of the reply plays, then the caller talks over it.
        phone.speak(&silence(1_000, RATE)).await.unwrap();
        let mut interruption = say("Stop. Tell me about London instead.", RATE);
        interruption.extend(silence(1_500, RATE));
        phone.speak(&interruption).await.unwrap();
        phone
            .wait_until("clear", LONG, |l| !l.clears.is_empty())
            .await
            .unwrap();
        let (played, cleared_at, echoed) = {
            let l = phone.log.lock().unwrap();
            (l.played_ms, l.clears[0], l.marks_echoed.len())
        };
        assert!(
            echoed > 20,
            "marks are sent with the audio and echoed ({echoed})"
        );
        // Nothing of the first reply plays after the clear (a new reply may follow later).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = phone
            .log
            .lock()
            .unwrap()
            .loud_played
            .iter()
            .filter(|&&t| {
                t > cleared_at + Duration::from_millis(40)
                    && t < cleared_at + Duration::from_millis(300)
            })
            .count();
        assert_eq!(after, 0, "audio played after clear");
        phone.speak(&silence(2_000, RATE)).await.unwrap();
        phone.stop();
        tokio::time::sleep(Duration::from_millis(500)).await;
        played
    });
    // Stored: the caller's number is the user; the cut reply holds what was heard per marks.
    let session = phone_session(&gw, 2);
    assert_eq!(session["user_id"], "+15550001", "{session}");
    let messages = session["messages"].as_array().unwrap();
    let user = messages[0]["content"].as_str().unwrap().to_lowercase();
    assert!(user.contains("weather"), "{user}");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["truncated"], true, "{session}");
    let heard = messages[1]["content"].as_str().unwrap();
    let full = Script::default().reply;
    assert!(
        !heard.is_empty() && full.starts_with(heard) && heard.len() < full.len() / 2,
        "heard {heard:?} after {played_before_clear} ms played"
    );
}

#[test]
fn dtmf_reaches_the_agent_and_bad_messages_do_not_drop_the_call() {
    let llm = ScriptedLlm::start(Script {
        reply: "Connecting you to a person.".into(),
        ..Script::default()
    });
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let phone = PhoneClient::connect(&stream_url(&gw), json!({"from": "+15550002"}))
            .await
            .unwrap();
        phone.send_raw("this is not json".into()).unwrap();
        phone
            .send(json!({"event": "media", "media": {"payload": "***"}}))
            .unwrap();
        phone
            .send(json!({"event": "dtmf", "dtmf": {"digit": "42"}}))
            .unwrap();
        press_and_hear_the_reply(&phone, '0').await;
    });
    let asked = llm
        .requests()
        .iter()
        .any(|r| r.to_string().contains("pressed the key 0"));
    assert!(asked, "the key press reached the LLM: {:?}", llm.requests());
    let metrics = gw.metrics();
    assert!(
        metrics.contains("switchboard_errors_total{type=\"telephony_message\"} 3"),
        "{metrics}"
    );
}

#[test]
fn the_twiml_webhook_connects_the_stream_and_signatures_are_checked() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_TWILIO_AUTH_TOKEN", "twilio-secret"),
            ("SWITCHBOARD_PUBLIC_URL", "https://voice.example.com"),
        ],
    );
    runtime().block_on(async {
        let params = [
            ("CallSid", "CA9"),
            ("From", "+15550003"),
            ("To", "+15550100"),
        ];
        let body = "CallSid=CA9&From=%2B15550003&To=%2B15550100";
        let path = "/telephony/twilio/voice?persona=default";
        let ct = "application/x-www-form-urlencoded";
        let unsigned = post_sdp(gw.addr, path, None, ct, body).await;
        assert_eq!(unsigned.status, 403, "{}", unsigned.body);

        let good = switchboard_e2e::signing::twilio(
            "twilio-secret",
            &format!("https://voice.example.com{path}"),
            &params,
        );
        let signed = post_with_signature(gw.addr, path, ct, body, &good).await;
        assert!(signed.starts_with("HTTP/1.1 200"), "{signed}");
        assert!(
            signed.contains("<Stream url=\"wss://voice.example.com/telephony/twilio/stream\">"),
            "{signed}"
        );
        assert!(
            signed.contains("<Parameter name=\"from\" value=\"+15550003\"/>"),
            "{signed}"
        );

        let tampered =
            post_with_signature(gw.addr, path, ct, &body.replace("CA9", "CA8"), &good).await;
        assert!(tampered.starts_with("HTTP/1.1 403"), "{tampered}");

        // The stream upgrade is signed too: unsigned is refused before any audio flows.
        let refused =
            tokio_tungstenite::connect_async(format!("ws://{}/telephony/twilio/stream", gw.addr))
                .await;
        assert!(refused.is_err(), "an unsigned stream must be refused");
    });
}

async fn post_with_signature(
    addr: std::net::SocketAddr,
    path: &str,
    ct: &str,
    body: &str,
    signature: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Twilio-Signature: {signature}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[test]
fn the_phone_line_serves_the_tenant_and_persona_the_persona_file_binds() {
    const OPERATOR: &str = "operator-key-phone";
    let llm = ScriptedLlm::start(Script {
        reply: "We open at nine.".into(),
        ..Script::default()
    });
    let personas = PersonaFile::new(
        r#"
default = "general"
[personas.general]
instructions = "You are the general assistant."
[personas.receptionist]
instructions = "You are the clinic's receptionist."
dtmf = { "1" = "What are your opening hours?" }
turn_eagerness = "high"
[channels.phone]
tenant = "clinic"
persona = "receptionist"
"#,
    );
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_API_KEYS", OPERATOR),
            ("SWITCHBOARD_PERSONAS", &personas.path),
        ],
    );
    runtime().block_on(async {
        let phone = PhoneClient::connect(&stream_url(&gw), json!({"from": "+15550003"}))
            .await
            .unwrap();
        // The bound persona's keypad map, not the default's (which has none).
        press_and_hear_the_reply(&phone, '1').await;
        // Its turn detection: semantic_vad, which ends a finished question by its transcript.
        let phone = PhoneClient::connect(&stream_url(&gw), json!({"from": "+15550003"}))
            .await
            .unwrap();
        ask_the_weather(&phone, 5).await;
        phone.stop();
    });
    // semantic_vad judged the question's turn (server_vad's would count as `silence`):
    // finished, or unsure where Smart Turn scored this phone-line question just under 0.1
    // (0.08-0.11 over runs).
    let m = gw.metrics();
    let ended = |by: &str| metric(&m, &format!(r#"switchboard_turn_ends_total{{by="{by}"}}"#));
    assert_eq!(
        ended("finished") + ended("unsure"),
        1.0,
        "the question's turn was judged by semantic_vad:\n{m}"
    );
    assert_eq!(ended("silence"), 0.0, "{m}");
    let asked = llm
        .requests()
        .iter()
        .map(Value::to_string)
        .find(|r| r.contains("opening hours"))
        .expect("the key press reached the LLM");
    assert!(asked.contains("clinic's receptionist"), "{asked}");

    // The call is the clinic's: its key lists the session, the default tenant's does not.
    let clinic = gw.tenant_key(OPERATOR, "clinic");
    let phone_sessions = |key: &str| -> usize {
        let (status, body) = gw.get_with_key("/v1/sessions", Some(key));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["channel"] == "phone")
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while phone_sessions(&clinic) == 0 {
        assert!(std::time::Instant::now() < deadline, "no clinic session");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(phone_sessions(OPERATOR), 0);
}
