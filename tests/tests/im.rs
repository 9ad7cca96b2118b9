//! Slack and Telegram bots end to end: the real gateway and a scripted LLM, signed Slack
//! events and Telegram updates posted as the services post them, and local stand-ins for the
//! Slack Web API and the Telegram Bot API receiving the answers.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard_e2e::fake_api::FakeApi;
use switchboard_e2e::gateway::{Gateway, PersonaFile};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

const SLACK_SECRET: &str = "slack-signing-secret";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Slack's signature, computed with Python's hmac.
fn slack_signature(ts: i64, body: &str) -> String {
    let script = "import hmac,hashlib,sys; print('v0=' + hmac.new(sys.argv[1].encode(), ('v0:' + sys.argv[2] + ':' + sys.argv[3]).encode(), hashlib.sha256).hexdigest())";
    let out = Command::new("python3")
        .args(["-c", script, SLACK_SECRET, &ts.to_string(), body])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// POST `body` with extra headers; (status, body).
fn post(gw: &Gateway, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

fn slack_post(gw: &Gateway, body: &Value, ts: i64, retry: Option<u32>) -> (u16, String) {
    let body = body.to_string();
    let mut headers = vec![
        ("X-Slack-Request-Timestamp", ts.to_string()),
        ("X-Slack-Signature", slack_signature(ts, &body)),
    ];
    if let Some(n) = retry {
        headers.push(("X-Slack-Retry-Num", n.to_string()));
        headers.push(("X-Slack-Retry-Reason", "http_timeout".into()));
    }
    post(gw, "/slack/events", &headers, &body)
}

#[test]
fn slack_mentions_and_direct_messages_are_answered_in_thread_once() {
    let llm = ScriptedLlm::start(Script {
        reply: "The deploy finished at noon.".into(),
        ..Script::default()
    });
    let api = FakeApi::start();
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_SLACK_SIGNING_SECRET", SLACK_SECRET),
            ("SWITCHBOARD_SLACK_BOT_TOKEN", "xoxb-test"),
            ("SWITCHBOARD_SLACK_API_URL", &api.url()),
        ],
    );
    let (status, body) = slack_post(
        &gw,
        &json!({"type": "url_verification", "challenge": "ch4llenge"}),
        now(),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["challenge"],
        "ch4llenge"
    );

    let mention = json!({"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention",
        "channel": "C1", "user": "U1", "text": "<@UBOT> when did the deploy finish?", "ts": "1700000000.000100"}});
    // Unsigned, wrongly signed and stale requests are refused.
    let (status, _) = post(&gw, "/slack/events", &[], &mention.to_string());
    assert_eq!(status, 401);
    let stale = now() - 600;
    assert_eq!(slack_post(&gw, &mention, stale, None).0, 401);
    let bad = vec![
        ("X-Slack-Request-Timestamp", now().to_string()),
        ("X-Slack-Signature", "v0=deadbeef".to_owned()),
    ];
    assert_eq!(
        post(&gw, "/slack/events", &bad, &mention.to_string()).0,
        401
    );

    // A signed body that is not JSON is refused in OpenAI's error shape; the next is served.
    let (ts, broken) = (now(), "{\"type\": \"event_callback\",");
    let signed = vec![
        ("X-Slack-Request-Timestamp", ts.to_string()),
        ("X-Slack-Signature", slack_signature(ts, broken)),
    ];
    let (status, body) = post(&gw, "/slack/events", &signed, broken);
    assert_eq!(status, 400, "{body}");
    let refusal: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["error"]["code"], "invalid_json", "{body}");

    assert_eq!(slack_post(&gw, &mention, now(), None).0, 200);
    // Slack retries when it thinks we were slow: same event id.
    assert_eq!(slack_post(&gw, &mention, now(), Some(1)).0, 200);
    let dm = json!({"type": "event_callback", "event_id": "Ev2", "event": {"type": "message", "channel_type": "im",
        "channel": "D1", "user": "U1", "text": "and the tests?", "ts": "1700000001.000200", "thread_ts": "1700000000.999"}});
    assert_eq!(slack_post(&gw, &dm, now(), None).0, 200);
    let bot = json!({"type": "event_callback", "event_id": "Ev3", "event": {"type": "message", "channel_type": "im",
        "channel": "D1", "bot_id": "B1", "text": "an echo of ourselves", "ts": "1700000002.000300"}});
    assert_eq!(slack_post(&gw, &bot, now(), None).0, 200);

    let calls = api.wait_for(2, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1_000));
    let calls_after = api.calls();
    assert_eq!(
        calls_after.len(),
        2,
        "one answer per event: {calls_after:?}"
    );
    for c in &calls {
        assert_eq!(c.path, "/chat.postMessage");
        assert_eq!(c.headers["authorization"], "Bearer xoxb-test");
        assert_eq!(c.body["text"], "The deploy finished at noon.");
    }
    let to = |ch: &str| {
        calls.iter().find(|c| c.body["channel"] == ch).unwrap().body["thread_ts"].clone()
    };
    assert_eq!(
        to("C1"),
        "1700000000.000100",
        "a mention is answered in a thread on it"
    );
    assert_eq!(
        to("D1"),
        "1700000000.999",
        "a threaded DM is answered in its thread"
    );
    assert_eq!(llm.requests().len(), 2);
    let asked = llm.requests()[0].to_string();
    assert!(
        asked.contains("when did the deploy finish?") && !asked.contains("<@UBOT>"),
        "{asked}"
    );
}

#[test]
fn telegram_updates_are_answered_once_and_checked() {
    let llm = ScriptedLlm::start(Script {
        reply: "Hello from the bot.".into(),
        ..Script::default()
    });
    let api = FakeApi::start();
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_TELEGRAM_BOT_TOKEN", "123:ABC"),
            ("SWITCHBOARD_TELEGRAM_SECRET_TOKEN", "tg-secret"),
            ("SWITCHBOARD_TELEGRAM_API_URL", &api.url()),
        ],
    );
    let update = json!({"update_id": 100, "message": {"message_id": 5, "chat": {"id": 42, "type": "private"},
        "from": {"id": 9, "is_bot": false, "first_name": "Ada"}, "date": 1700000000, "text": "Hi bot!"}});
    let secret = vec![("X-Telegram-Bot-Api-Secret-Token", "tg-secret".to_owned())];
    let wrong = vec![("X-Telegram-Bot-Api-Secret-Token", "nope".to_owned())];
    assert_eq!(
        post(&gw, "/telegram/webhook", &wrong, &update.to_string()).0,
        403
    );
    assert_eq!(
        post(&gw, "/telegram/webhook", &secret, &update.to_string()).0,
        200
    );
    let (status, body) = post(&gw, "/telegram/webhook", &secret, "[\"not an update\"]");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"code\":\"invalid_json\""), "{body}");
    // Telegram redelivers an update it thinks was not received.
    assert_eq!(
        post(&gw, "/telegram/webhook", &secret, &update.to_string()).0,
        200
    );
    // A voice note: Ogg Opus made by the gateway's own speech endpoint, served by the fake API.
    let (status, ogg) = speech_opus(&gw, "Please book a table for two at eight.");
    assert_eq!(status, 200);
    api.respond(
        "/bot123:ABC/getFile",
        "application/json",
        json!({"ok": true, "result": {"file_id": "AwAD", "file_size": ogg.len(), "file_path": "voice/note.oga"}})
            .to_string()
            .into_bytes(),
    );
    api.respond("/file/bot123:ABC/voice/note.oga", "audio/ogg", ogg);
    let voice = json!({"update_id": 101, "message": {"message_id": 6, "chat": {"id": 42, "type": "private"},
        "from": {"id": 9}, "date": 1700000001, "voice": {"file_id": "AwAD", "duration": 2, "mime_type": "audio/ogg"}}});
    assert_eq!(
        post(&gw, "/telegram/webhook", &secret, &voice.to_string()).0,
        200
    );

    // Text: one sendMessage; voice: getFile, the download, then sendMessage.
    let calls = api.wait_for(4, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1_000));
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/bot123:ABC/sendMessage",
            "/bot123:ABC/getFile",
            "/file/bot123:ABC/voice/note.oga",
            "/bot123:ABC/sendMessage"
        ],
        "{calls:?}"
    );
    assert_eq!(api.calls().len(), 4, "answered once each");
    assert_eq!(calls[0].body["chat_id"], 42);
    assert_eq!(calls[0].body["text"], "Hello from the bot.");
    assert_eq!(calls[0].body["reply_parameters"]["message_id"], 5);
    assert_eq!(calls[1].body["file_id"], "AwAD");
    assert_eq!(calls[3].body["reply_parameters"]["message_id"], 6);
    assert_eq!(llm.requests().len(), 2);
    let heard = llm.requests()[1].to_string().to_lowercase();
    assert!(
        heard.contains("book a table"),
        "the voice note was transcribed: {heard}"
    );
}

/// `POST /v1/audio/speech` with `response_format: opus`: (status, body bytes).
fn speech_opus(gw: &Gateway, text: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let body =
        json!({"model": "tts-1", "voice": "alloy", "input": text, "response_format": "opus"})
            .to_string();
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    let req = format!(
        "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    // Streamed page by page: the body comes chunked.
    assert!(
        head.to_lowercase().contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, switchboard_e2e::gateway::dechunk(&out[split + 4..]))
}

#[test]
fn a_persona_that_wants_voice_notes_answers_a_voice_note_with_one() {
    let llm = ScriptedLlm::start(Script {
        reply: "Your table is booked.".into(),
        ..Script::default()
    });
    let api = FakeApi::start();
    let personas = PersonaFile::new(
        "default = \"concierge\"\n[personas.concierge]\ninstructions = \"You book tables.\"\nvoice_notes = true\n",
    );
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_TELEGRAM_BOT_TOKEN", "123:ABC"),
            ("SWITCHBOARD_TELEGRAM_SECRET_TOKEN", "tg-secret"),
            ("SWITCHBOARD_TELEGRAM_API_URL", &api.url()),
            ("SWITCHBOARD_PERSONAS", &personas.path),
        ],
    );
    let (_, ogg) = speech_opus(&gw, "Please book a table for two at eight.");
    api.respond(
        "/bot123:ABC/getFile",
        "application/json",
        json!({"ok": true, "result": {"file_id": "AwAD", "file_path": "voice/note.oga"}})
            .to_string()
            .into_bytes(),
    );
    api.respond("/file/bot123:ABC/voice/note.oga", "audio/ogg", ogg);
    let secret = vec![("X-Telegram-Bot-Api-Secret-Token", "tg-secret".to_owned())];
    let voice = json!({"update_id": 200, "message": {"message_id": 8, "chat": {"id": 77, "type": "private"},
        "from": {"id": 9}, "date": 1700000001, "voice": {"file_id": "AwAD", "duration": 2}}});
    assert_eq!(
        post(&gw, "/telegram/webhook", &secret, &voice.to_string()).0,
        200
    );
    let calls = api.wait_for(3, Duration::from_secs(30));
    let sent = &calls[2];
    assert_eq!(sent.path, "/bot123:ABC/sendVoice", "{calls:?}");
    assert!(sent.headers["content-type"].starts_with("multipart/form-data; boundary="));
    let raw = &sent.raw;
    let find = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    assert!(
        find(b"name=\"chat_id\"\r\n\r\n77\r\n"),
        "chat id in the form"
    );
    assert!(find(b"OggS") && find(b"OpusHead"), "an Ogg Opus voice note");
    assert!(
        raw.len() > 4_000,
        "a second or more of speech: {} bytes",
        raw.len()
    );
}

/// The session ids `key`'s tenant sees, once at least `min` exist (they are stored after the
/// answer, off the reply's path).
fn session_ids(gw: &Gateway, key: &str, min: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = gw.get_with_key("/v1/sessions", Some(key));
        assert_eq!(status, 200, "{body}");
        let ids: Vec<String> = serde_json::from_str::<Value>(&body).unwrap()["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect();
        if ids.len() >= min || std::time::Instant::now() > deadline {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bot_channels_serve_the_tenant_and_persona_the_persona_file_binds() {
    const OPERATOR: &str = "operator-key";
    let llm = ScriptedLlm::start(Script {
        reply: "Happy to help.".into(),
        ..Script::default()
    });
    let api = FakeApi::start();
    let personas = PersonaFile::new(
        r#"
default = "general"
[personas.general]
instructions = "You are the general assistant."
[personas.concierge]
instructions = "You are the hotel concierge."
[channels.telegram]
tenant = "hotel"
persona = "concierge"
"#,
    );
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_API_KEYS", OPERATOR),
            ("SWITCHBOARD_PERSONAS", &personas.path),
            ("SWITCHBOARD_TELEGRAM_BOT_TOKEN", "123:ABC"),
            ("SWITCHBOARD_TELEGRAM_SECRET_TOKEN", "tg-secret"),
            ("SWITCHBOARD_TELEGRAM_API_URL", &api.url()),
            ("SWITCHBOARD_SLACK_SIGNING_SECRET", SLACK_SECRET),
            ("SWITCHBOARD_SLACK_BOT_TOKEN", "xoxb-test"),
            ("SWITCHBOARD_SLACK_API_URL", &api.url()),
        ],
    );
    let update = json!({"update_id": 300, "message": {"message_id": 1, "chat": {"id": 42, "type": "private"},
        "from": {"id": 9}, "date": 1700000000, "text": "Is breakfast included?"}});
    let secret = vec![("X-Telegram-Bot-Api-Secret-Token", "tg-secret".to_owned())];
    assert_eq!(
        post(&gw, "/telegram/webhook", &secret, &update.to_string()).0,
        200
    );
    let mention = json!({"type": "event_callback", "event_id": "Ev9", "event": {"type": "app_mention",
        "channel": "C1", "user": "U1", "text": "<@UBOT> when is the standup?", "ts": "1700000000.000100"}});
    assert_eq!(slack_post(&gw, &mention, now(), None).0, 200);
    api.wait_for(2, Duration::from_secs(30));

    // The bound channel's persona answered it; the unbound one got the file's default.
    let asked = |words: &str| -> String {
        llm.requests()
            .iter()
            .map(Value::to_string)
            .find(|r| r.contains(words))
            .unwrap_or_else(|| panic!("no LLM request with {words:?}"))
    };
    let telegram = asked("breakfast");
    assert!(
        telegram.contains("hotel concierge") && !telegram.contains("general assistant"),
        "{telegram}"
    );
    assert!(asked("standup").contains("general assistant"));

    // The tenant was created at start-up; its key sees the Telegram chat and nothing else.
    let hotel = gw.tenant_key(OPERATOR, "hotel");
    assert_eq!(session_ids(&gw, &hotel, 1), ["telegram:42"]);
    let default_tenant = session_ids(&gw, OPERATOR, 1);
    assert!(
        default_tenant.iter().all(|id| id.starts_with("slack:")) && !default_tenant.is_empty(),
        "{default_tenant:?}"
    );
}
