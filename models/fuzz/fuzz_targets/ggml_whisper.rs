//! ggml Whisper files are checked by `summarize` before whisper.cpp sees them: it must not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = switchboard_models::provision::whisper_ggml::summarize(data);
});
