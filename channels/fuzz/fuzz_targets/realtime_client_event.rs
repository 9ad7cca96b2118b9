//! Realtime client events from the WebSocket: parsing (items of every type, MCP approvals
//! included), applying `session.update` bodies (function and MCP tools among them) and
//! decoding appended audio must never panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_channels::audio_format::AudioFormat;
use switchboard_channels::realtime::RealtimeSession;
use switchboard_channels::realtime::client_events::{ClientEvent, parse};
use switchboard_pipeline::SessionConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = parse(text) else { return };
    match parsed.event {
        ClientEvent::SessionUpdate(v) => {
            let s = RealtimeSession::new("sess_fuzz".into(), "m".into(), SessionConfig::default());
            if let Ok(next) = s.apply(&v) {
                let _ = next.to_json();
            }
        }
        ClientEvent::AudioAppend(bytes) => {
            for f in [AudioFormat::REALTIME_DEFAULT, AudioFormat::Pcmu, AudioFormat::Pcma] {
                let _ = f.decode(&bytes);
            }
        }
        _ => {}
    }
});
