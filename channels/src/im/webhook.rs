//! The generic webhook channel (`POST /v1/webhooks/messages`): `{"id", "conversation",
//! "user"?, "text", "callback_url"?}`, signed with a shared secret as
//! `X-Switchboard-Signature: v1=<hex HMAC-SHA256 of "{timestamp}.{body}">` beside
//! `X-Switchboard-Timestamp`. Answers and hand-off callbacks are signed the same way.

use serde_json::Value;

use super::{ImMessage, InvalidMessage, json_object};
use crate::chat_request::is_identifier;
use crate::signing::{fresh_and_equal, hmac_sha256_hex};

/// `v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!(
        "v1={}",
        hmac_sha256_hex(secret, &[ts.as_bytes(), b".", body])
    )
}

/// Checks `X-Switchboard-Timestamp` and `X-Switchboard-Signature` (within 5 minutes of
/// `now_secs`).
pub fn verify(
    secret: &str,
    now_secs: i64,
    timestamp: Option<&str>,
    presented: Option<&str>,
    body: &[u8],
) -> Result<(), &'static str> {
    let ts: i64 = timestamp
        .and_then(|t| t.parse().ok())
        .ok_or("missing or malformed X-Switchboard-Timestamp")?;
    let presented = presented.ok_or("missing X-Switchboard-Signature")?;
    fresh_and_equal(now_secs, ts, &sign(secret, ts, body), presented)
}

/// The message, with `reply_to` the body's `callback_url` when it has one (the gateway
/// falls back to its configured URL). Strings are trimmed; `id`, `conversation` and `user`
/// must be identifiers, `text` non-empty.
pub fn parse_message(body: &[u8]) -> Result<ImMessage, InvalidMessage> {
    let v = json_object(body)?;
    let id = field(&v, "id").filter(|s| is_identifier(s));
    let conversation = field(&v, "conversation").filter(|s| is_identifier(s));
    let text = field(&v, "text").filter(|s| !s.is_empty());
    let (Some(id), Some(conversation), Some(text)) = (id, conversation, text) else {
        return Err(InvalidMessage {
            message: "'id', 'conversation' (identifiers) and 'text' (non-empty) are required.",
            param: "body",
            code: "missing_required_parameter",
        });
    };
    Ok(ImMessage {
        id: id.to_owned(),
        conversation: conversation.to_owned(),
        user: field(&v, "user")
            .filter(|u| is_identifier(u))
            .map(str::to_owned),
        text: text.to_owned(),
        reply_to: field(&v, "callback_url")
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn a_message_needs_an_id_a_conversation_and_text() {
        let m = parse_message(
            br#"{"id":"m1","conversation":"c1","user":"u1","text":" hello ","callback_url":"http://x/cb"}"#,
        )
        .unwrap();
        assert_eq!(
            (m.id.as_str(), m.conversation.as_str(), m.text.as_str()),
            ("m1", "c1", "hello")
        );
        assert_eq!(m.user.as_deref(), Some("u1"));
        assert_eq!(m.reply_to.as_deref(), Some("http://x/cb"));
        for bad in [
            json!({"conversation": "c", "text": "t"}),
            json!({"id": "m", "text": "t"}),
            json!({"id": "m", "conversation": "c", "text": "  "}),
            json!({"id": "m\u{7}", "conversation": "c", "text": "t"}),
            json!({"id": 5, "conversation": "c", "text": "t"}),
        ] {
            let e = parse_message(bad.to_string().as_bytes()).unwrap_err();
            assert_eq!(e.code, "missing_required_parameter", "{bad}");
        }
        assert_eq!(parse_message(b"[]").unwrap_err().code, "invalid_json");
    }

    #[test]
    fn signatures_match_an_independent_hmac() {
        // Python: hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
        let sig = sign("s3cret", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "v1=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
        );
    }

    proptest! {
        #[test]
        fn any_body_parses_or_is_refused(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(m) = parse_message(&body) {
                prop_assert!(is_identifier(&m.id) && is_identifier(&m.conversation));
                prop_assert!(!m.text.is_empty());
            }
        }

        #[test]
        fn a_valid_message_keeps_its_fields(
            id in "[A-Za-z0-9_-]{1,40}", conversation in "[A-Za-z0-9:_-]{1,40}",
            user in proptest::option::of("[a-z0-9]{1,20}"), text in "\\PC{1,80}",
        ) {
            prop_assume!(!text.trim().is_empty());
            let mut body = json!({"id": id, "conversation": conversation, "text": text});
            if let Some(u) = &user {
                body["user"] = json!(u);
            }
            let m = parse_message(body.to_string().as_bytes()).unwrap();
            prop_assert_eq!(m.id, id);
            prop_assert_eq!(m.conversation, conversation);
            prop_assert_eq!(m.user, user);
            prop_assert_eq!(m.text.as_str(), text.trim());
            prop_assert_eq!(m.reply_to, None);
        }

        #[test]
        fn only_the_signed_body_at_the_signed_time_verifies(
            body in proptest::collection::vec(any::<u8>(), 1..128),
            flip in any::<prop::sample::Index>(), ts in 0i64..4_000_000_000, skew in -300i64..=300,
        ) {
            let sig = sign("secret", ts, &body);
            let t = ts.to_string();
            prop_assert!(verify("secret", ts + skew, Some(&t), Some(&sig), &body).is_ok());
            prop_assert!(verify("secret", ts + 301, Some(&t), Some(&sig), &body).is_err());
            let later = (ts + 1).to_string();
            prop_assert!(verify("secret", ts, Some(&later), Some(&sig), &body).is_err());
            let mut changed = body.clone();
            changed[flip.index(body.len())] ^= 0x20;
            prop_assert!(verify("secret", ts, Some(&t), Some(&sig), &changed).is_err());
        }
    }
}
