//! Slack's Events API (`POST /slack/events`): the signature over each request, the
//! `url_verification` handshake, and the events answered: `app_mention`, and direct
//! messages (`message` in an `im`) from people.

use serde_json::{Value, json};

use super::{ImMessage, InvalidMessage, json_object};
use crate::signing::{fresh_and_equal, hmac_sha256_hex};

/// What a request from Slack asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackEvent {
    /// Echo the challenge to prove we own the URL.
    UrlVerification { challenge: String },
    /// A message to answer; the id is the `event_id`, which Slack's retries repeat.
    Message(ImMessage),
    /// Anything else (bots, edits, other events): acknowledged, not answered.
    Ignored,
}

/// `v0=` + hex HMAC-SHA256 of `"v0:{timestamp}:{body}"`, keyed with the signing secret.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hmac_sha256_hex(secret, &[b"v0:", timestamp.as_bytes(), b":", body])
    )
}

/// Checks `X-Slack-Request-Timestamp` and `X-Slack-Signature` (within 5 minutes of
/// `now_secs`).
pub fn verify(
    secret: &str,
    now_secs: i64,
    timestamp: Option<&str>,
    presented: Option<&str>,
    body: &[u8],
) -> Result<(), &'static str> {
    let timestamp = timestamp.ok_or("missing X-Slack-Request-Timestamp")?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| "malformed X-Slack-Request-Timestamp")?;
    let presented = presented.ok_or("missing X-Slack-Signature")?;
    fresh_and_equal(now_secs, ts, &signature(secret, timestamp, body), presented)
}

pub fn parse_event(body: &[u8]) -> Result<SlackEvent, InvalidMessage> {
    let v = json_object(body)?;
    match v["type"].as_str() {
        Some("url_verification") => match v["challenge"].as_str() {
            Some(c) => Ok(SlackEvent::UrlVerification {
                challenge: c.to_owned(),
            }),
            None => Err(InvalidMessage {
                message: "url_verification needs a 'challenge' string.",
                param: "challenge",
                code: "missing_required_parameter",
            }),
        },
        Some("event_callback") => {
            Ok(to_message(&v).map_or(SlackEvent::Ignored, SlackEvent::Message))
        }
        _ => Ok(SlackEvent::Ignored),
    }
}

fn to_message(v: &Value) -> Option<ImMessage> {
    let event_id = v["event_id"].as_str().filter(|id| !id.is_empty())?;
    let e = &v["event"];
    let kind = e["type"].as_str()?;
    let direct = kind == "message" && e["channel_type"] == "im";
    if !(kind == "app_mention" || direct) || e.get("bot_id").is_some() || e.get("subtype").is_some()
    {
        return None;
    }
    let channel = e["channel"].as_str()?;
    let ts = e["ts"].as_str()?;
    let thread = e["thread_ts"].as_str().unwrap_or(ts);
    let text = strip_mentions(e["text"].as_str()?);
    if text.is_empty() {
        return None;
    }
    Some(ImMessage {
        id: event_id.to_owned(),
        conversation: format!("slack:{channel}:{thread}"),
        user: e["user"].as_str().map(|u| format!("slack:{u}")),
        text,
        reply_to: Some(json!({"channel": channel, "thread_ts": thread}).to_string()),
    })
}

/// Mentions of users and the bot (`<@U123>`) are not part of what was asked; the words
/// left are joined by single spaces.
pub fn strip_mentions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        out.push_str(&rest[..start]);
        match rest[start..].find('>') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(e: Value) -> SlackEvent {
        let body = json!({"type": "event_callback", "event_id": "Ev1", "event": e});
        parse_event(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn mentions_are_stripped() {
        assert_eq!(strip_mentions("<@U1> what is  up <@U2>?"), "what is up ?");
        assert_eq!(strip_mentions("no mention"), "no mention");
        assert_eq!(strip_mentions("broken <@U1"), "broken <@U1");
    }

    #[test]
    fn only_mentions_and_direct_messages_from_people_are_answered() {
        let SlackEvent::Message(m) = event(json!({"type": "app_mention", "channel": "C1",
            "user": "U1", "text": "<@UBOT> hello", "ts": "1.5"}))
        else {
            panic!("a mention is answered")
        };
        assert_eq!(
            (m.text.as_str(), m.conversation.as_str(), m.id.as_str()),
            ("hello", "slack:C1:1.5", "Ev1")
        );
        let SlackEvent::Message(threaded) = event(json!({"type": "message", "channel_type": "im",
            "channel": "D1", "user": "U1", "text": "hi", "ts": "2.0", "thread_ts": "1.0"}))
        else {
            panic!("a direct message is answered")
        };
        assert_eq!(threaded.conversation, "slack:D1:1.0");
        for ignored in [
            json!({"type": "message", "channel_type": "channel", "channel": "C1", "text": "x", "ts": "1"}),
            json!({"type": "app_mention", "bot_id": "B1", "channel": "C1", "text": "x", "ts": "1"}),
            json!({"type": "message", "channel_type": "im", "subtype": "message_changed", "channel": "D1", "text": "x", "ts": "1"}),
            json!({"type": "app_mention", "channel": "C1", "text": "<@UBOT>", "ts": "1"}),
            json!({"type": "reaction_added"}),
        ] {
            assert_eq!(event(ignored.clone()), SlackEvent::Ignored, "{ignored}");
        }
    }

    #[test]
    fn the_handshake_echoes_its_challenge() {
        let ok = parse_event(br#"{"type":"url_verification","challenge":"abc"}"#).unwrap();
        assert_eq!(
            ok,
            SlackEvent::UrlVerification {
                challenge: "abc".into()
            }
        );
        let missing = parse_event(br#"{"type":"url_verification"}"#).unwrap_err();
        assert_eq!(missing.param, "challenge");
        assert_eq!(parse_event(b"{").unwrap_err().code, "invalid_json");
    }

    #[test]
    fn slacks_documented_signature_verifies() {
        // The example in Slack's "Verifying requests from Slack" guide.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(signature(secret, "1531420618", body), sig);
        assert!(verify(secret, 1_531_420_618, Some("1531420618"), Some(sig), body).is_ok());
        assert!(
            verify(
                secret,
                1_531_420_618 + 301,
                Some("1531420618"),
                Some(sig),
                body
            )
            .is_err()
        );
        assert!(verify(secret, 1_531_420_618, None, Some(sig), body).is_err());
        assert!(verify(secret, 1_531_420_618, Some("x"), Some(sig), body).is_err());
        assert!(verify(secret, 1_531_420_618, Some("1531420618"), None, body).is_err());
    }

    proptest! {
        #[test]
        fn any_body_parses_or_is_refused(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_event(&body);
        }

        #[test]
        fn stripping_leaves_the_words_between_mentions(
            parts in proptest::collection::vec(("[a-z?!.,]{1,8}", proptest::option::of("[A-Z0-9]{1,11}")), 0..8),
            gap in "[ \t\n]{1,3}",
        ) {
            let mut text = String::new();
            let mut words = Vec::new();
            for (word, mention) in &parts {
                text.push_str(word);
                text.push_str(&gap);
                words.push(word.as_str());
                if let Some(user) = mention {
                    text.push_str(&format!("<@{user}>{gap}"));
                }
            }
            prop_assert_eq!(strip_mentions(&text), words.join(" "));
        }

        #[test]
        fn stripped_text_is_single_spaced_words(text in "[ a-z<@>\t\u{a0}\u{3000}]{0,60}") {
            let out = strip_mentions(&text);
            prop_assert_eq!(out.split_whitespace().collect::<Vec<_>>().join(" "), out.clone());
            prop_assert!(out.len() <= text.len());
        }

        #[test]
        fn a_changed_body_or_secret_fails_verification(
            body in proptest::collection::vec(any::<u8>(), 1..128),
            flip in any::<prop::sample::Index>(), skew in -300i64..=300,
        ) {
            let sig = signature("secret", "1700000000", &body);
            let now = 1_700_000_000 + skew;
            prop_assert!(verify("secret", now, Some("1700000000"), Some(&sig), &body).is_ok());
            prop_assert!(verify("other", now, Some("1700000000"), Some(&sig), &body).is_err());
            let mut changed = body.clone();
            changed[flip.index(body.len())] ^= 1;
            prop_assert!(verify("secret", now, Some("1700000000"), Some(&sig), &changed).is_err());
        }
    }
}
