//! Telephony media-stream messages (Twilio Media Streams; Telnyx media streaming, the same
//! shape with a few names changed): parsing what the provider sends and rendering what we
//! send back. Every message is a JSON text frame with an `event` field.
//!
//! In: `connected`, `start` (stream and call ids, custom parameters, media format), `media`
//! (base64 G.711, 20 ms), `dtmf`, `mark` (a mark we sent, echoed once the audio before it has
//! played), `stop`. Out: `media`, `mark`, `clear` (drop audio not yet played).

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use crate::audio_format::AudioFormat;

/// Messages larger than this are refused (a 20 ms media message is ~250 bytes).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Which provider's names the stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Twilio,
    Telnyx,
}

/// Stream metadata from the `start` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStart {
    pub stream_id: String,
    pub call_id: String,
    /// G.711 mu-law (Twilio's only format) or A-law (Telnyx may send PCMA).
    pub format: AudioFormat,
    /// `<Parameter>`s from the TwiML (Twilio) or `custom_parameters` (Telnyx).
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Connected,
    Start(StreamStart),
    /// Caller audio (inbound track only; other tracks are ignored by the parser's caller).
    Media {
        payload: Vec<u8>,
        inbound: bool,
    },
    Dtmf {
        digit: char,
    },
    Mark {
        name: String,
    },
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    pub message: String,
}

fn bad(message: impl Into<String>) -> ProtocolError {
    ProtocolError {
        message: message.into(),
    }
}

fn text<'a>(v: &'a Value, path: &str) -> Result<&'a str, ProtocolError> {
    v.pointer(path).and_then(Value::as_str).ok_or_else(|| {
        bad(format!(
            "'{}' must be a string",
            path.trim_start_matches('/')
        ))
    })
}

fn parameters(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Parse one message.
pub fn parse(dialect: Dialect, raw: &str) -> Result<Inbound, ProtocolError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(bad(format!(
            "message larger than {} KB",
            MAX_MESSAGE_BYTES / 1024
        )));
    }
    let v: Value = serde_json::from_str(raw).map_err(|e| bad(format!("not JSON: {e}")))?;
    let event = text(&v, "/event")?;
    match event {
        "connected" => Ok(Inbound::Connected),
        "start" => parse_start(dialect, &v).map(Inbound::Start),
        "media" => {
            let payload = text(&v, "/media/payload")?;
            let payload = base64::engine::general_purpose::STANDARD
                .decode(payload)
                .map_err(|e| bad(format!("'media.payload' is not base64: {e}")))?;
            let inbound = v
                .pointer("/media/track")
                .and_then(Value::as_str)
                .is_none_or(|t| t.starts_with("inbound"));
            Ok(Inbound::Media { payload, inbound })
        }
        "dtmf" => {
            let digit = text(&v, "/dtmf/digit")?;
            let mut chars = digit.chars();
            match (chars.next(), chars.next()) {
                (Some(d), None) if d.is_ascii_digit() || "*#ABCD".contains(d) => {
                    Ok(Inbound::Dtmf { digit: d })
                }
                _ => Err(bad(format!(
                    "'dtmf.digit' must be one of 0-9 * # A-D, got {digit:?}"
                ))),
            }
        }
        "mark" => Ok(Inbound::Mark {
            name: text(&v, "/mark/name")?.to_owned(),
        }),
        "stop" => Ok(Inbound::Stop),
        other => Err(bad(format!("unknown event '{other}'"))),
    }
}

fn parse_start(dialect: Dialect, v: &Value) -> Result<StreamStart, ProtocolError> {
    let (stream_id, call_id, encoding, rate, params) = match dialect {
        Dialect::Twilio => (
            text(v, "/start/streamSid").or_else(|_| text(v, "/streamSid"))?,
            text(v, "/start/callSid")?,
            v.pointer("/start/mediaFormat/encoding"),
            v.pointer("/start/mediaFormat/sampleRate"),
            v.pointer("/start/customParameters"),
        ),
        Dialect::Telnyx => (
            text(v, "/stream_id").or_else(|_| text(v, "/start/stream_id"))?,
            text(v, "/start/call_control_id")?,
            v.pointer("/start/media_format/encoding"),
            v.pointer("/start/media_format/sample_rate"),
            v.pointer("/start/custom_parameters"),
        ),
    };
    let format = match encoding.and_then(Value::as_str) {
        None | Some("audio/x-mulaw" | "PCMU" | "audio/PCMU") => AudioFormat::Pcmu,
        Some("audio/x-alaw" | "PCMA" | "audio/PCMA") => AudioFormat::Pcma,
        Some(other) => {
            return Err(bad(format!(
                "unsupported media encoding '{other}': the stream must carry G.711 (PCMU or PCMA)"
            )));
        }
    };
    if let Some(r) = rate.and_then(|r| r.as_u64().or_else(|| r.as_str()?.parse().ok()))
        && r != 8_000
    {
        return Err(bad(format!(
            "unsupported sample rate {r}: G.711 is 8000 Hz"
        )));
    }
    Ok(StreamStart {
        stream_id: stream_id.to_owned(),
        call_id: call_id.to_owned(),
        format,
        parameters: parameters(params),
    })
}

/// Reply audio (already G.711-encoded) for the provider to play.
pub fn media(dialect: Dialect, stream_id: &str, audio: &[u8]) -> Value {
    let payload = base64::engine::general_purpose::STANDARD.encode(audio);
    match dialect {
        Dialect::Twilio => {
            json!({"event": "media", "streamSid": stream_id, "media": {"payload": payload}})
        }
        Dialect::Telnyx => json!({"event": "media", "media": {"payload": payload}}),
    }
}

/// A mark after the audio sent so far: echoed back once that audio has played.
pub fn mark(dialect: Dialect, stream_id: &str, name: &str) -> Value {
    match dialect {
        Dialect::Twilio => json!({"event": "mark", "streamSid": stream_id, "mark": {"name": name}}),
        Dialect::Telnyx => json!({"event": "mark", "mark": {"name": name}}),
    }
}

/// Drop every bit of audio the provider holds but has not played (barge-in).
pub fn clear(dialect: Dialect, stream_id: &str) -> Value {
    match dialect {
        Dialect::Twilio => json!({"event": "clear", "streamSid": stream_id}),
        Dialect::Telnyx => json!({"event": "clear"}),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_a_twilio_stream() {
        let start = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1",
            "streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"customParameters":{"user":"ada","n":3},
            "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;
        let Inbound::Start(s) = parse(Dialect::Twilio, start).unwrap() else {
            panic!("start")
        };
        assert_eq!((s.stream_id.as_str(), s.call_id.as_str()), ("MZ1", "CA1"));
        assert_eq!(s.format, AudioFormat::Pcmu);
        assert_eq!(s.parameters["user"], "ada");
        assert_eq!(s.parameters["n"], "3");
        let media = r#"{"event":"media","streamSid":"MZ1","media":{"track":"inbound","chunk":"2","timestamp":"20","payload":"//8A"}}"#;
        assert_eq!(
            parse(Dialect::Twilio, media).unwrap(),
            Inbound::Media {
                payload: vec![0xff, 0xff, 0],
                inbound: true
            }
        );
        let dtmf =
            r#"{"event":"dtmf","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"0"}}"#;
        assert_eq!(
            parse(Dialect::Twilio, dtmf).unwrap(),
            Inbound::Dtmf { digit: '0' }
        );
        let mark = r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"r1:200"}}"#;
        assert_eq!(
            parse(Dialect::Twilio, mark).unwrap(),
            Inbound::Mark {
                name: "r1:200".into()
            }
        );
    }

    #[test]
    fn parses_a_telnyx_start_with_alaw() {
        let start = r#"{"event":"start","sequence_number":"1","stream_id":"S1","start":{"call_control_id":"v3:c1",
            "media_format":{"encoding":"PCMA","sample_rate":8000,"channels":1}}}"#;
        let Inbound::Start(s) = parse(Dialect::Telnyx, start).unwrap() else {
            panic!("start")
        };
        assert_eq!((s.stream_id.as_str(), s.format), ("S1", AudioFormat::Pcma));
        assert_eq!(clear(Dialect::Telnyx, "S1"), json!({"event": "clear"}));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for bad in [
            "nope",
            r#"{"event": 3}"#,
            r#"{"event":"media","media":{"payload":"***"}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"12"}}"#,
            r#"{"event":"start","start":{"streamSid":"a","callSid":"b","mediaFormat":{"encoding":"audio/l16"}}}"#,
            r#"{"event":"start","start":{"streamSid":"a","callSid":"b","mediaFormat":{"sampleRate":16000}}}"#,
            r#"{"event":"teleport"}"#,
        ] {
            assert!(parse(Dialect::Twilio, bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = parse(Dialect::Twilio, &s);
            let _ = parse(Dialect::Telnyx, &s);
        }

        #[test]
        fn media_round_trips(audio in proptest::collection::vec(any::<u8>(), 0..400)) {
            let msg = media(Dialect::Twilio, "MZ", &audio).to_string();
            prop_assert_eq!(parse(Dialect::Twilio, &msg).unwrap(), Inbound::Media { payload: audio, inbound: true });
        }
    }
}
