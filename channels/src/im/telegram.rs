//! Telegram Bot API updates (`POST /telegram/webhook`). A text message or a voice note is
//! answered; edits, channel posts, callbacks and other updates are not.

use serde_json::{Value, json};

use super::{ImMessage, InvalidMessage, json_object};

/// The message an update asks us to answer, if any. The id is the `update_id` (Telegram
/// redelivers an update until it gets a 200); the conversation is the chat. A voice note's
/// text is empty: its `file_id` is in `reply_to` (`{"chat_id", "reply_to", "voice"}`) for
/// the worker to fetch and transcribe.
pub fn parse_update(body: &[u8]) -> Result<Option<ImMessage>, InvalidMessage> {
    Ok(to_message(&json_object(body)?))
}

fn to_message(update: &Value) -> Option<ImMessage> {
    let update_id = update["update_id"].as_i64()?;
    let msg = &update["message"];
    let chat = msg["chat"]["id"].as_i64()?;
    let voice = msg["voice"]["file_id"].as_str().filter(|f| !f.is_empty());
    let text = match (msg["text"].as_str().map(str::trim), voice) {
        (Some(t), _) if !t.is_empty() => t.to_owned(),
        (_, Some(_)) => String::new(),
        _ => return None,
    };
    Some(ImMessage {
        id: update_id.to_string(),
        conversation: format!("telegram:{chat}"),
        user: msg["from"]["id"].as_i64().map(|u| format!("telegram:{u}")),
        text,
        reply_to: Some(
            json!({"chat_id": chat, "reply_to": msg["message_id"].as_i64(), "voice": voice})
                .to_string(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(v: Value) -> Option<ImMessage> {
        parse_update(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn text_and_voice_updates_become_messages() {
        let m = parse(json!({"update_id": 7, "message": {"message_id": 3,
            "chat": {"id": 42}, "from": {"id": 9}, "text": " hi "}}))
        .unwrap();
        assert_eq!(
            (m.id.as_str(), m.conversation.as_str(), m.text.as_str()),
            ("7", "telegram:42", "hi")
        );
        assert_eq!(m.user.as_deref(), Some("telegram:9"));
        let voice = parse(json!({"update_id": 8, "message": {"message_id": 4,
            "chat": {"id": 42}, "voice": {"file_id": "f"}}}))
        .unwrap();
        assert!(voice.text.is_empty(), "transcribed later by the worker");
        assert!(voice.reply_to.unwrap().contains("\"voice\":\"f\""));
        assert!(parse(json!({"update_id": 9, "edited_message": {}})).is_none());
        assert!(
            parse(json!({"update_id": 9, "message": {"chat": {"id": 1}, "text": "  "}})).is_none()
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        for body in [&b"not json"[..], b"[1]", b"\"x\"", b""] {
            assert_eq!(parse_update(body).unwrap_err().code, "invalid_json");
        }
    }

    proptest! {
        #[test]
        fn any_body_parses_or_is_refused(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_update(&body);
        }

        #[test]
        fn a_text_message_keeps_its_ids_and_trimmed_words(
            update in any::<i64>(), chat in any::<i64>(), from in proptest::option::of(any::<i64>()),
            message_id in any::<i64>(), text in "\\PC{0,40}", pad in "[ \t\n]{0,3}",
        ) {
            let mut msg = json!({"message_id": message_id, "chat": {"id": chat},
                "text": format!("{pad}{text}{pad}")});
            if let Some(f) = from {
                msg["from"] = json!({"id": f});
            }
            let m = parse(json!({"update_id": update, "message": msg}));
            let words = text.trim();
            if words.is_empty() {
                prop_assert!(m.is_none());
            } else {
                let m = m.unwrap();
                prop_assert_eq!(m.id, update.to_string());
                prop_assert_eq!(m.conversation, format!("telegram:{chat}"));
                prop_assert_eq!(m.user, from.map(|f| format!("telegram:{f}")));
                prop_assert_eq!(m.text.as_str(), words);
                let to: Value = serde_json::from_str(&m.reply_to.unwrap()).unwrap();
                prop_assert_eq!(&to["chat_id"], &json!(chat));
                prop_assert_eq!(&to["reply_to"], &json!(message_id));
                prop_assert!(to["voice"].is_null());
            }
        }
    }
}
