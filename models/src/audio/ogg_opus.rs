//! Ogg Opus (RFC 7845), the format of voice notes and of `/v1/audio/speech` `opus`: our own
//! Ogg page reader and writer around libopus (the `opus` crate, bundled libopus).
//!
//! Reading checks each page's capture pattern and CRC, reassembles packets across pages,
//! takes channels and pre-skip from `OpusHead`, decodes at 48 kHz (stereo down-mixed),
//! drops the pre-skip and trims the end to the last granule position. Writing encodes mono
//! 20 ms frames at 48 kHz into one page per second of audio.

use opus::{Application, Bitrate, Channels, Decoder, Encoder};

use super::{AudioError, MonoAudio, rates};

/// 20 ms at 48 kHz.
const FRAME: usize = 960;
/// Pages written hold this many frames (1 s).
const FRAMES_PER_PAGE: usize = 50;
const SERIAL: u32 = 0x5357_4254;

fn bad(reason: impl std::fmt::Display) -> AudioError {
    AudioError::Undecodable(format!("Ogg Opus: {reason}"))
}

/// CRC-32 as Ogg computes it (polynomial 0x04C11DB7, no reflection, initial value 0).
fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04C1_1DB7
                } else {
                    r << 1
                };
            }
            *e = r;
        }
        t
    });
    data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ table[((crc >> 24) as u8 ^ b) as usize]
    })
}

/// Whether `bytes` look like Ogg Opus.
pub fn is_ogg_opus(bytes: &[u8]) -> bool {
    bytes.starts_with(b"OggS") && bytes.windows(8).take(96).any(|w| w == b"OpusHead")
}

/// The packets of the first logical stream, and the last granule position seen.
fn packets(bytes: &[u8]) -> Result<(Vec<Vec<u8>>, i64), AudioError> {
    let mut packets = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut granule = 0i64;
    let mut serial = None;
    let mut at = 0usize;
    while at < bytes.len() {
        let page = &bytes[at..];
        if page.len() < 27 || &page[..4] != b"OggS" {
            return Err(bad(format!("no Ogg page at byte {at}")));
        }
        if page[4] != 0 {
            return Err(bad("unknown Ogg version"));
        }
        let segments = page[26] as usize;
        let header_len = 27 + segments;
        if page.len() < header_len {
            return Err(bad("truncated page header"));
        }
        let body_len: usize = page[27..header_len].iter().map(|&l| l as usize).sum();
        if page.len() < header_len + body_len {
            return Err(bad("truncated page"));
        }
        let whole = &page[..header_len + body_len];
        let mut zeroed = whole.to_vec();
        zeroed[22..26].fill(0);
        let stored = u32::from_le_bytes([page[22], page[23], page[24], page[25]]);
        if crc32(&zeroed) != stored {
            return Err(bad(format!("page at byte {at} fails its CRC")));
        }
        let page_serial = u32::from_le_bytes([page[14], page[15], page[16], page[17]]);
        if *serial.get_or_insert(page_serial) == page_serial {
            let g = i64::from_le_bytes(page[6..14].try_into().map_err(bad)?);
            if g >= 0 {
                granule = g;
            }
            let mut body = &whole[header_len..];
            for &lace in &page[27..header_len] {
                let (seg, rest) = body.split_at(lace as usize);
                partial.extend_from_slice(seg);
                body = rest;
                if lace < 255 {
                    packets.push(std::mem::take(&mut partial));
                }
            }
        }
        at += header_len + body_len;
    }
    Ok((packets, granule))
}

/// Decode an Ogg Opus file to mono at 48 kHz.
pub fn decode(bytes: &[u8]) -> Result<MonoAudio, AudioError> {
    let (packets, last_granule) = packets(bytes)?;
    let head = packets.first().ok_or_else(|| bad("no packets"))?;
    if head.len() < 19 || &head[..8] != b"OpusHead" {
        return Err(bad("the first packet is not OpusHead"));
    }
    let channels = match head[9] {
        1 => Channels::Mono,
        2 => Channels::Stereo,
        n => return Err(bad(format!("{n} channels (only mono and stereo)"))),
    };
    let pre_skip = u16::from_le_bytes([head[10], head[11]]) as usize;
    let n = channels as usize;
    let mut decoder = Decoder::new(rates::OPUS, channels).map_err(bad)?;
    let mut out = vec![0f32; 5_760 * n];
    let mut samples = Vec::new();
    let limit = super::decode::MAX_SECONDS as usize * rates::OPUS as usize;
    // Packet 2 is OpusTags; audio follows.
    for p in packets.iter().skip(2) {
        let got = decoder.decode_float(p, &mut out, false).map_err(bad)?;
        samples.extend(
            out[..got * n]
                .chunks(n)
                .map(|c| c.iter().sum::<f32>() / n as f32),
        );
        if samples.len() > limit {
            return Err(bad("longer than an hour"));
        }
    }
    let end = (last_granule.max(0) as usize).min(samples.len());
    let start = pre_skip.min(end);
    Ok(MonoAudio::new(samples[start..end].to_vec(), rates::OPUS))
}

fn page(out: &mut Vec<u8>, flags: u8, granule: i64, seq: u32, packets: &[&[u8]]) {
    let mut lacing = Vec::new();
    for p in packets {
        lacing.extend(std::iter::repeat_n(255u8, p.len() / 255));
        lacing.push((p.len() % 255) as u8);
    }
    let start = out.len();
    out.extend_from_slice(b"OggS");
    out.push(0);
    out.push(flags);
    out.extend_from_slice(&granule.to_le_bytes());
    out.extend_from_slice(&SERIAL.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(lacing.len() as u8);
    out.extend_from_slice(&lacing);
    for p in packets {
        out.extend_from_slice(p);
    }
    let crc = crc32(&out[start..]);
    out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
}

/// Encode mono audio (any rate) as Ogg Opus: 48 kHz, 20 ms frames, `bitrate` bits/s.
pub fn encode(audio: &MonoAudio, bitrate: i32) -> Result<Vec<u8>, AudioError> {
    let audio = audio.to_rate(rates::OPUS)?;
    let mut encoder = Encoder::new(rates::OPUS, Channels::Mono, Application::Voip).map_err(bad)?;
    encoder.set_bitrate(Bitrate::Bits(bitrate)).map_err(bad)?;
    let pre_skip = encoder.get_lookahead().map_err(bad)?.max(0) as u16;
    let mut out = Vec::new();
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(1);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&audio.sample_rate.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]);
    page(&mut out, 0x02, 0, 0, &[&head]);
    let vendor = b"switchboard";
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes());
    page(&mut out, 0, 0, 1, &[&tags]);
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 4_000];
    // The encoder's look-ahead delays its output by `pre_skip`: feed that much silence after
    // the audio so its last samples come out.
    let mut input = audio.samples.clone();
    input.resize(input.len() + pre_skip as usize, 0.0);
    for chunk in input.chunks(FRAME) {
        let mut frame = chunk.to_vec();
        frame.resize(FRAME, 0.0);
        let n = encoder.encode_float(&frame, &mut buf).map_err(bad)?;
        encoded.push(buf[..n].to_vec());
    }
    let total = pre_skip as i64 + audio.samples.len() as i64;
    let pages: Vec<&[Vec<u8>]> = encoded.chunks(FRAMES_PER_PAGE).collect();
    for (i, group) in pages.iter().enumerate() {
        let last = i + 1 == pages.len();
        let granule = if last {
            total
        } else {
            pre_skip as i64 + ((i + 1) * FRAMES_PER_PAGE * FRAME) as i64
        };
        let refs: Vec<&[u8]> = group.iter().map(Vec::as_slice).collect();
        page(
            &mut out,
            if last { 0x04 } else { 0 },
            granule,
            i as u32 + 2,
            &refs,
        );
    }
    if pages.is_empty() {
        page(&mut out, 0x04, pre_skip as i64, 2, &[]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tone(seconds: f32, rate: u32) -> MonoAudio {
        let n = (seconds * rate as f32) as usize;
        MonoAudio::new(
            (0..n)
                .map(|i| 0.4 * (i as f32 * 330.0 * std::f32::consts::TAU / rate as f32).sin())
                .collect(),
            rate,
        )
    }

    #[test]
    fn round_trip_keeps_length_and_level() {
        let a = tone(2.5, 24_000);
        let bytes = encode(&a, 32_000).unwrap();
        assert!(is_ogg_opus(&bytes));
        let back = decode(&bytes).unwrap();
        assert_eq!(back.sample_rate, 48_000);
        assert_eq!(back.samples.len(), 120_000, "pre-skip dropped, end trimmed");
        let rms = (back.samples[4_800..].iter().map(|x| x * x).sum::<f32>()
            / (back.samples.len() - 4_800) as f32)
            .sqrt();
        assert!((0.2..0.35).contains(&rms), "rms {rms}");
    }

    #[test]
    fn corruption_is_refused_not_guessed_at() {
        let mut bytes = encode(&tone(0.5, 48_000), 24_000).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        assert!(decode(&bytes).unwrap_err().to_string().contains("CRC"));
        assert!(decode(b"OggS").is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn crc_matches_the_ogg_reference_value() {
        // CRC of "123456789" with Ogg's parameters (polynomial 0x04C11DB7, initial value 0,
        // no reflection, no final xor), computed independently in Python: 0x89A1897F.
        assert_eq!(crc32(b"123456789"), 0x89A1_897F);
    }

    proptest! {
        #[test]
        fn never_panics_on_damaged_files(cut in 0usize..3_000, flip in 0usize..3_000, byte in any::<u8>()) {
            let mut bytes = encode(&tone(0.3, 16_000), 16_000).unwrap();
            if flip < bytes.len() { bytes[flip] ^= byte; }
            bytes.truncate(cut.min(bytes.len()));
            let _ = decode(&bytes);
        }
    }
}
