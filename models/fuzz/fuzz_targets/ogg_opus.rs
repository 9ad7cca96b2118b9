//! Ogg Opus files (voice notes, uploads): the page reader and decoder must never panic, and
//! what they return is 48 kHz audio of at most an hour. Inputs that start like Ogg Opus reach
//! the page parser; the rest exercise the early refusals.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_models::audio::ogg_opus;

fuzz_target!(|data: &[u8]| {
    if let Ok(audio) = ogg_opus::decode(data) {
        assert_eq!(audio.sample_rate, 48_000);
        assert!(audio.samples.len() <= 3_600 * 48_000);
    }
});
