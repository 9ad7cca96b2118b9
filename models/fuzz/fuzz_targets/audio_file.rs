//! Uploaded audio files (/v1/audio/transcriptions): probing and decoding any container must
//! not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for ext in [None, Some("mp3"), Some("flac"), Some("ogg")] {
        let _ = switchboard_models::audio::decode::decode(data, ext);
    }
});
