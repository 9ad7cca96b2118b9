//! OpenAI chat completion request bodies: parsing must never panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = switchboard_channels::chat_request::parse(data);
});
