//! What IM bots and webhooks POST to us (Telegram updates, Slack events, webhook messages)
//! and their signature checks: nothing panics, and what parses keeps the channel's promises.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_channels::chat_request::is_identifier;
use switchboard_channels::im::slack::{self, SlackEvent};
use switchboard_channels::im::{telegram, webhook};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(m)) = telegram::parse_update(data) {
        assert!(m.conversation.starts_with("telegram:"));
        assert_eq!(m.text.trim(), m.text);
    }
    if let Ok(SlackEvent::Message(m)) = slack::parse_event(data) {
        assert!(!m.text.is_empty() && !m.text.contains("  "));
    }
    if let Ok(m) = webhook::parse_message(data) {
        assert!(is_identifier(&m.id) && is_identifier(&m.conversation));
        assert!(!m.text.is_empty());
    }
    // Headers are outside input too: any timestamp or signature text is refused cleanly.
    let text = String::from_utf8_lossy(data);
    let (ts, sig) = text.split_once('\n').unwrap_or((&text, ""));
    assert!(slack::verify("secret", 1_700_000_000, Some(ts), Some(sig), data).is_err());
    assert!(webhook::verify("secret", 1_700_000_000, Some(ts), Some(sig), data).is_err());
});
