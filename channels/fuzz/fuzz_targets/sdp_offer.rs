//! SDP offers posted to /v1/realtime/calls: the first check must never panic, and an offer
//! it accepts must name an Opus payload type below 128.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(summary) = switchboard_channels::webrtc::check_offer(text)
    {
        assert!(summary.opus_payload_type < 128);
    }
});
