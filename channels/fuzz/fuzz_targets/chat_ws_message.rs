//! Text-chat WebSocket messages: parsing must never panic, whatever the text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switchboard_channels::chat_ws::protocol::parse(text);
    }
});
