//! Hand-off to people and call control end to end: on a phone call the agent escalates (a
//! signed webhook with its summary and the transcript, retried until accepted) and the call
//! is transferred through Twilio's REST API (a local stand-in) after the reply was heard;
//! `end_call` hangs up; in a chat the same escalation sends the webhook and nothing else.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::fake_api::FakeApi;
use switchboard_e2e::gateway::{Gateway, http_post_json};
use switchboard_e2e::phone_client::{PhoneClient, RATE};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};

const SECRET: &str = "handoff-secret";
const TOKEN: &str = "twilio-token";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn phone_call(gw: &Gateway, words: &str) -> PhoneClient {
    let phone = dial(gw).await;
    say_into(&phone, words).await;
    phone
}

async fn dial(gw: &Gateway) -> PhoneClient {
    let url = format!("ws://{}/telephony/twilio/stream", gw.addr);
    let signature = switchboard_e2e::signing::twilio(TOKEN, &url, &[]);
    PhoneClient::connect_signed(&url, json!({"from": "+15550001"}), Some(&signature))
        .await
        .expect("the stream opens")
}

/// Wait until the LLM has been asked something `f` recognises.
async fn llm_asked(llm: &ScriptedLlm, what: &str, f: impl Fn(&Value) -> bool) {
    for _ in 0..200 {
        if llm.requests().iter().any(&f) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen: Vec<String> = llm
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} / {}",
                r["tool_choice"],
                r["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .cloned()
                    .unwrap_or_default()
            )
        })
        .collect();
    panic!("the LLM was never asked {what}: {seen:#?}");
}

async fn say_into(phone: &PhoneClient, words: &str) {
    let mut speech = silence(300, RATE);
    speech.extend(say(words, RATE));
    speech.extend(silence(1_500, RATE));
    phone.speak(&speech).await.expect("speaks");
}

/// A gateway with hand-offs signed and allowed to `hook`, and Twilio's API at `twilio`.
fn start(
    llm: &ScriptedLlm,
    personas: &std::path::Path,
    hook: &FakeApi,
    twilio: &FakeApi,
) -> Gateway {
    Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_PERSONAS", personas.to_str().expect("utf-8")),
            ("SWITCHBOARD_HANDOFF_SECRET", SECRET),
            ("SWITCHBOARD_OUTBOUND_ALLOW", &hook.addr.to_string()),
            ("SWITCHBOARD_TWILIO_ACCOUNT_SID", "AC0"),
            ("SWITCHBOARD_TWILIO_AUTH_TOKEN", TOKEN),
            ("SWITCHBOARD_TWILIO_API_URL", &twilio.url()),
        ],
    )
}

#[test]
fn escalation_hands_off_transfers_and_hangs_up() {
    let hook = FakeApi::start();
    let twilio = FakeApi::start();
    let llm = ScriptedLlm::start(Script::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let personas = dir.path().join("personas.toml");
    std::fs::write(
        &personas,
        format!(
            r#"
default = "support"
[personas.support]
instructions = "You are Acme's support agent."
end_call = true
handoff = {{ webhook_url = "{}/handoff", transfer_to = "+15550100" }}
dtmf = {{ "0" = "escalate_to_human", "1" = "Where is my order?" }}
"#,
            hook.url()
        ),
    )
    .expect("persona file");
    let gw = start(&llm, &personas, &hook, &twilio);
    let summary = "Ada wants a refund for order 42.";
    llm.call_tool(
        "person",
        "escalate_to_human",
        json!({"summary": summary, "reason": "asked for a person"}),
    );
    hook.fail_next(1);
    let rt = runtime();
    rt.block_on(async {
        let phone = phone_call(&gw, "I would like to talk to a person, please.").await;
        let calls =
            tokio::task::spawn_blocking(move || twilio.wait_for(1, Duration::from_secs(40)))
                .await
                .expect("waits");
        let transfer = &calls[0];
        assert_eq!(transfer.path, "/2010-04-01/Accounts/AC0/Calls/CA0.json");
        let form: Vec<(String, String)> = form_pairs(&transfer.raw);
        assert_eq!(
            form,
            [(
                "Twiml".to_owned(),
                "<Response><Dial>+15550100</Dial></Response>".to_owned()
            )]
        );
        let auth = transfer
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        assert_eq!(auth, format!("Basic {}", b64("AC0:twilio-token")));
        let played = phone.log.lock().expect("log").loud_played.len();
        assert!(
            played > 10,
            "the reply was played before the transfer ({played} loud frames)"
        );
        phone.stop();
    });

    // The hand-off arrives signed, after one failed attempt.
    let deliveries = hook.wait_for(2, Duration::from_secs(20));
    let handoff = &deliveries[1];
    assert_eq!(handoff.path, "/handoff");
    let body = &handoff.body;
    assert_eq!(body["type"], "handoff");
    assert_eq!(body["summary"], summary);
    assert_eq!(body["channel"], "phone");
    assert_eq!(body["transfer_to"], "+15550100");
    assert_eq!(body["user"], "+15550001");
    assert_eq!(
        deliveries[0].raw, handoff.raw,
        "the retry sends the same hand-off"
    );
    let ts: i64 = handoff.headers["x-switchboard-timestamp"]
        .parse()
        .expect("timestamp");
    let raw = String::from_utf8(handoff.raw.clone()).expect("utf-8");
    assert_eq!(
        handoff.headers["x-switchboard-signature"],
        switchboard_e2e::signing::switchboard(SECRET, ts, &raw)
    );

    // A goodbye on the phone: the agent hangs up.
    let twilio = FakeApi::start();
    drop(gw);
    let gw = start(&llm, &personas, &hook, &twilio);
    llm.call_tool("goodbye", "end_call", json!({}));
    rt.block_on(async {
        // Keypad digits: one says what the caller means, one forces the hand-off tool.
        let phone = dial(&gw).await;
        phone.dtmf('1').expect("dtmf");
        llm_asked(&llm, "the mapped sentence", |r| {
            r["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m["content"] == "Where is my order?")
        })
        .await;
        phone.dtmf('0').expect("dtmf");
        llm_asked(&llm, "for the forced tool", |r| {
            r["tool_choice"]
                == json!({"type": "function", "function": {"name": "escalate_to_human"}})
        })
        .await;
        say_into(&phone, "That is all, thank you, goodbye.").await;
        let calls =
            tokio::task::spawn_blocking(move || twilio.wait_for(1, Duration::from_secs(40)))
                .await
                .expect("waits");
        assert_eq!(
            form_pairs(&calls[0].raw),
            [("Status".to_owned(), "completed".to_owned())]
        );
        phone.stop();
    });

    // In a chat the same tool hands off without a transfer; end_call is not offered.
    llm.call_tool(
        "person",
        "escalate_to_human",
        json!({"summary": "Bob needs help with an invoice."}),
    );
    let before = hook.calls().len();
    let chat = json!({"model": "switchboard", "messages": [{"role": "user", "content": "Can a person call me back?"}]});
    let (status, text) =
        http_post_json(gw.addr, "/v1/chat/completions", &chat.to_string()).expect("answers");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("handed_off"), "{text}");
    let deliveries = hook.wait_for(before + 1, Duration::from_secs(20));
    let last = &deliveries[before].body;
    assert_eq!(
        (last["channel"].as_str(), last["transfer_to"].is_null()),
        (Some("chat"), true),
        "{last}"
    );
    llm.call_tool("goodbye", "end_call", json!({}));
    let chat =
        json!({"model": "switchboard", "messages": [{"role": "user", "content": "goodbye"}]});
    let (_, text) =
        http_post_json(gw.addr, "/v1/chat/completions", &chat.to_string()).expect("answers");
    assert!(
        !text.contains("ending"),
        "end_call exists on phone calls only: {text}"
    );
}

fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    text.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
