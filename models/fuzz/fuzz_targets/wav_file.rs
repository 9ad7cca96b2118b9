//! WAV input (CLI files, uploads): reading and resampling to 16 kHz must not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(audio) = switchboard_models::audio::wav::read(std::io::Cursor::new(data)) {
        if audio.samples.len() < 1 << 20 {
            let _ = audio.to_rate(16_000);
        }
    }
});
