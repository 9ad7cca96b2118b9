//! Telephony media-stream messages (Twilio and Telnyx dialects): parsing must never panic,
//! and a parsed DTMF digit is always one keypad character.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_channels::telephony::protocol::{Dialect, Inbound, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for dialect in [Dialect::Twilio, Dialect::Telnyx] {
            if let Ok(Inbound::Dtmf { digit }) = parse(dialect, text) {
                assert!(digit.is_ascii_digit() || "*#ABCD".contains(digit));
            }
        }
    }
});
