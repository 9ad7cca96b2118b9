//! A first look at an SDP offer, before any WebRTC state is built for it: is it SDP at all,
//! does it offer audio, and can we speak that audio (Opus)? Each "no" gets its own clear error
//! (`invalid_sdp`, `no_audio`, `unsupported_codec`); deeper faults are the WebRTC stack's to
//! find when the offer is applied.

/// Offers larger than this are refused (a browser's audio + data channel offer is ~3 KB).
pub const MAX_OFFER_BYTES: usize = 64 * 1024;

/// What an acceptable offer contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// The payload type the offer gives Opus in its first audio section.
    pub opus_payload_type: u8,
    /// Whether the offer carries a data channel (SCTP) section for the `oai-events` channel.
    pub data_channel: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("the SDP offer is empty")]
    Empty,
    #[error("the SDP offer is larger than {MAX_OFFER_BYTES} bytes")]
    TooLarge,
    #[error("malformed SDP on line {line}: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("the SDP offer has no audio section (m=audio); a call needs the caller's microphone")]
    NoAudio,
    #[error(
        "the SDP offer's audio supports none of our codecs: it offers {offered}, we need opus/48000/2"
    )]
    UnsupportedCodec { offered: String },
}

impl OfferError {
    /// The error code sent to the client.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty | Self::TooLarge | Self::Malformed { .. } => "invalid_sdp",
            Self::NoAudio => "no_audio",
            Self::UnsupportedCodec { .. } => "unsupported_codec",
        }
    }
}

#[derive(Debug, Default)]
struct Section {
    media: String,
    formats: Vec<String>,
    /// `(payload type, encoding name/clock rate[/channels])` from `a=rtpmap`.
    rtpmaps: Vec<(String, String)>,
}

/// Check an offer's shape and codecs.
pub fn check_offer(sdp: &str) -> Result<OfferSummary, OfferError> {
    if sdp.len() > MAX_OFFER_BYTES {
        return Err(OfferError::TooLarge);
    }
    if sdp.trim().is_empty() {
        return Err(OfferError::Empty);
    }
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in sdp.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let malformed = |reason| OfferError::Malformed { line: n, reason };
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| malformed("expected <type>=<value>"))?;
        if key.len() != 1 || !key.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(malformed(
                "the type before '=' must be one lowercase letter",
            ));
        }
        if n == 1 && line != "v=0" {
            return Err(malformed("an SDP description starts with v=0"));
        }
        match key {
            "m" => {
                let mut parts = value.split(' ');
                let media = parts.next().unwrap_or_default();
                let port = parts.next().unwrap_or_default();
                let proto = parts.next().unwrap_or_default();
                if media.is_empty() || proto.is_empty() {
                    return Err(malformed("m= needs <media> <port> <proto> <formats>"));
                }
                if port
                    .split('/')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(malformed("m= port must be a number"));
                }
                sections.push(Section {
                    media: media.to_owned(),
                    formats: parts.filter(|f| !f.is_empty()).map(str::to_owned).collect(),
                    rtpmaps: Vec::new(),
                });
            }
            "a" => {
                if let Some(map) = value.strip_prefix("rtpmap:") {
                    let (pt, codec) = map
                        .split_once(' ')
                        .ok_or_else(|| malformed("a=rtpmap needs <payload type> <encoding>"))?;
                    let section = sections
                        .last_mut()
                        .ok_or_else(|| malformed("a=rtpmap before any m= line"))?;
                    section
                        .rtpmaps
                        .push((pt.to_owned(), codec.trim().to_owned()));
                }
            }
            _ => {}
        }
    }
    if sections.is_empty() {
        return Err(OfferError::Malformed {
            line: sdp.lines().count(),
            reason: "no media sections (m=)",
        });
    }
    let audio = sections
        .iter()
        .find(|s| s.media == "audio")
        .ok_or(OfferError::NoAudio)?;
    let opus = audio.rtpmaps.iter().find(|(pt, codec)| {
        audio.formats.contains(pt) && codec.to_ascii_lowercase().starts_with("opus/48000")
    });
    let Some((pt, _)) = opus else {
        let mut offered: Vec<&str> = audio.rtpmaps.iter().map(|(_, c)| c.as_str()).collect();
        offered.dedup();
        return Err(OfferError::UnsupportedCodec {
            offered: if offered.is_empty() {
                format!("payload types {}", audio.formats.join(" "))
            } else {
                offered.join(", ")
            },
        });
    };
    let opus_payload_type = pt.parse().map_err(|_| OfferError::Malformed {
        line: 0,
        reason: "Opus payload type must be a number below 128",
    })?;
    if opus_payload_type >= 128 {
        return Err(OfferError::Malformed {
            line: 0,
            reason: "Opus payload type must be a number below 128",
        });
    }
    Ok(OfferSummary {
        opus_payload_type,
        data_channel: sections.iter().any(|s| s.media == "application"),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CHROME_LIKE: &str = "v=0\r\no=- 46117317 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\nc=IN IP4 0.0.0.0\r\n\
        a=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
        a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n";

    #[test]
    fn accepts_a_browser_offer() {
        let s = check_offer(CHROME_LIKE).unwrap();
        assert_eq!(s.opus_payload_type, 111);
        assert!(s.data_channel);
    }

    #[test]
    fn refuses_each_fault_with_its_own_code() {
        assert_eq!(check_offer("").unwrap_err().code(), "invalid_sdp");
        assert_eq!(check_offer("hello").unwrap_err().code(), "invalid_sdp");
        assert_eq!(
            check_offer("v=0\r\ns=-\r\n").unwrap_err().code(),
            "invalid_sdp"
        );
        let no_audio = CHROME_LIKE.replace("m=audio", "m=video");
        assert_eq!(check_offer(&no_audio).unwrap_err(), OfferError::NoAudio);
        let pcmu_only = CHROME_LIKE.replace("opus/48000/2", "G722/8000");
        let err = check_offer(&pcmu_only).unwrap_err();
        assert_eq!(err.code(), "unsupported_codec");
        assert!(err.to_string().contains("PCMU/8000"), "{err}");
        assert_eq!(
            check_offer(&"a".repeat(MAX_OFFER_BYTES + 1)).unwrap_err(),
            OfferError::TooLarge
        );
    }

    #[test]
    fn opus_must_be_listed_on_the_m_line() {
        let unlisted = CHROME_LIKE.replace("SAVPF 111 0 8", "SAVPF 0 8");
        assert_eq!(
            check_offer(&unlisted).unwrap_err().code(),
            "unsupported_codec"
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,400}") {
            let _ = check_offer(&s);
        }

        #[test]
        fn any_line_dropped_from_a_good_offer_is_handled(drop in 0usize..16) {
            let text: String = CHROME_LIKE
                .split("\r\n")
                .enumerate()
                .filter(|(i, _)| *i != drop)
                .map(|(_, l)| format!("{l}\r\n"))
                .collect();
            let _ = check_offer(&text);
        }

        #[test]
        fn opus_payload_type_is_read_not_assumed(pt in 96u8..128) {
            let text = CHROME_LIKE.replace("111", &pt.to_string());
            prop_assert_eq!(check_offer(&text).unwrap().opus_payload_type, pt);
        }
    }
}
