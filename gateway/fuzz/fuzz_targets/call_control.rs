//! Call-control request bodies and the messages instances send each other.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/registry/control.rs"]
mod control;

fuzz_target!(|data: &[u8]| {
    if let Ok(control::ControlAction::Message { text, .. }) = control::parse_message(data) {
        assert!(!text.is_empty() && text.chars().count() <= control::MAX_MESSAGE_CHARS);
    }
    let _ = control::parse_transfer(data);
    if let Some(m) = control::parse_message_from_peer(&String::from_utf8_lossy(data)) {
        // What parses re-serializes to something that parses the same.
        let again = serde_json::to_string(&m).expect("serializes");
        assert_eq!(control::parse_message_from_peer(&again), Some(m));
    }
});
