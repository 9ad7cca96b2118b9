//! OpenAPI documents (JSON or YAML) into tool proposals: never panics, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switchboard_pipeline::tools::openapi::propose(text, Some("http://h"));
    }
});
