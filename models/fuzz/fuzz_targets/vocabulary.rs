//! Whisper vocabularies (`vocabulary.txt` lines or a `vocabulary.json` array): decoding never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_models::provision::vocab;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vocab::regular_tokens(text);
    }
});
