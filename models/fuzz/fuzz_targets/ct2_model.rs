//! CTranslate2 model files: parsing and, when they parse, conversion must not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_models::provision::{ct2, whisper_ggml};

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = ct2::parse(data) {
        for weights in [whisper_ggml::Weights::F16, whisper_ggml::Weights::Q8_0] {
            let _ = whisper_ggml::convert(&model, "a\n<|endoftext|>\n", weights, &mut std::io::sink());
        }
    }
});
