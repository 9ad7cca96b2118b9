//! Ogg Opus (RFC 7845), the format of voice notes and of `/v1/audio/speech` `opus`: our own
//! Ogg page reader and writer around libopus (the `opus` crate, bundled libopus).
//!
//! Reading checks each page's capture pattern and CRC, reassembles packets across pages,
//! takes channels and pre-skip from `OpusHead`, decodes at 48 kHz (stereo down-mixed),
//! drops the pre-skip and trims the end to the last granule position. Writing encodes mono
//! 20 ms frames (at the input's rate where Opus takes it) as a stream: headers first, then
//! each piece's whole frames in pages of up to a second as soon as they are encoded.

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

/// Opus packets (from any container) to mono 48 kHz samples, the stream's pre-skip dropped.
pub(super) struct PacketDecoder {
    decoder: Decoder,
    channels: usize,
    /// The encoder's look-ahead at the stream's start (48 kHz samples).
    pre_skip: usize,
    /// Samples of it still to drop.
    skip: usize,
    out: Vec<f32>,
}

impl PacketDecoder {
    /// A decoder for the stream `head` (its `OpusHead` identification header) describes.
    pub(super) fn new(head: &[u8]) -> Result<Self, AudioError> {
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err(bad("the identification header is not OpusHead"));
        }
        let channels = match head[9] {
            1 => Channels::Mono,
            2 => Channels::Stereo,
            n => return Err(bad(format!("{n} channels (only mono and stereo)"))),
        };
        let pre_skip = u16::from_le_bytes([head[10], head[11]]) as usize;
        Ok(Self {
            decoder: Decoder::new(rates::OPUS, channels).map_err(bad)?,
            channels: channels as usize,
            pre_skip,
            skip: pre_skip,
            out: vec![0f32; 5_760 * channels as usize],
        })
    }

    /// Decode one packet, appending its mono samples to `samples`.
    pub(super) fn decode(
        &mut self,
        packet: &[u8],
        samples: &mut Vec<f32>,
    ) -> Result<(), AudioError> {
        let n = self.channels;
        let got = self
            .decoder
            .decode_float(packet, &mut self.out, false)
            .map_err(bad)?;
        let mono = self.out[..got * n]
            .chunks(n)
            .map(|c| c.iter().sum::<f32>() / n as f32);
        let dropped = self.skip.min(got);
        self.skip -= dropped;
        samples.extend(mono.skip(dropped));
        Ok(())
    }
}

/// Decode an Ogg Opus file to mono at 48 kHz.
pub fn decode(bytes: &[u8]) -> Result<MonoAudio, AudioError> {
    let (packets, last_granule) = packets(bytes)?;
    let head = packets.first().ok_or_else(|| bad("no packets"))?;
    let mut decoder = PacketDecoder::new(head)?;
    let mut samples = Vec::new();
    let limit = super::decode::MAX_SECONDS as usize * rates::OPUS as usize;
    // Packet 2 is OpusTags; audio follows.
    for p in packets.iter().skip(2) {
        decoder.decode(p, &mut samples)?;
        if samples.len() > limit {
            return Err(bad("longer than an hour"));
        }
    }
    // The last granule position counts the pre-skip too: the audio ends there.
    let end = (last_granule.max(0) as usize).saturating_sub(decoder.pre_skip);
    samples.truncate(end);
    Ok(MonoAudio::new(samples, rates::OPUS))
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

/// Encode mono audio (any rate) as Ogg Opus, 20 ms frames at `bitrate` bits/s: at its own
/// rate where Opus takes it (8, 12, 16, 24, 48 kHz), else resampled to 48 kHz.
pub fn encode(audio: &MonoAudio, bitrate: i32) -> Result<Vec<u8>, AudioError> {
    let resampled;
    let audio = match OPUS_INPUT_RATES.contains(&audio.sample_rate) {
        true => audio,
        false => {
            resampled = audio.to_rate(rates::OPUS)?;
            &resampled
        }
    };
    let mut encoder = OggOpusEncoder::new(audio.sample_rate, bitrate)?;
    let mut out = encoder.encode(&audio.samples)?;
    out.extend(encoder.finish()?);
    Ok(out)
}

/// The input rates libopus encodes from.
const OPUS_INPUT_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// Ogg Opus as a stream: the two header pages go out with the first audio, then each call's
/// whole 20 ms frames in pages of up to a second; `finish` flushes the encoder's look-ahead
/// and writes the last page, marked end of stream, whose granule position trims the padding.
pub struct OggOpusEncoder {
    encoder: Encoder,
    /// Input samples per 20 ms frame.
    frame: usize,
    /// 48 kHz samples per input sample.
    scale: u64,
    /// The encoder's look-ahead in input samples; `pre_skip` is it at 48 kHz.
    lookahead: usize,
    pre_skip: u16,
    sample_rate: u32,
    pending: Vec<f32>,
    samples_in: u64,
    frames_out: u64,
    pages: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for OggOpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusEncoder")
            .field("sample_rate", &self.sample_rate)
            .field("frames_out", &self.frames_out)
            .finish()
    }
}

impl OggOpusEncoder {
    /// Mono input at `sample_rate` (8, 12, 16, 24 or 48 kHz), `bitrate` bits/s.
    pub fn new(sample_rate: u32, bitrate: i32) -> Result<Self, AudioError> {
        if !OPUS_INPUT_RATES.contains(&sample_rate) {
            return Err(AudioError::UnsupportedRate(sample_rate));
        }
        let mut encoder =
            Encoder::new(sample_rate, Channels::Mono, Application::Voip).map_err(bad)?;
        encoder.set_bitrate(Bitrate::Bits(bitrate)).map_err(bad)?;
        let scale = u64::from(rates::OPUS / sample_rate);
        let lookahead = encoder.get_lookahead().map_err(bad)?.max(0) as usize;
        Ok(Self {
            encoder,
            frame: FRAME / scale as usize,
            scale,
            lookahead,
            pre_skip: (lookahead as u64 * scale) as u16,
            sample_rate,
            pending: Vec::new(),
            samples_in: 0,
            frames_out: 0,
            pages: 0,
            buf: vec![0u8; 4_000],
        })
    }

    /// Encode more samples (f32 in [-1, 1]); returns the headers the first time and the
    /// pages of every whole frame so far.
    pub fn encode(&mut self, samples: &[f32]) -> Result<Vec<u8>, AudioError> {
        self.samples_in += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        let packets = self.encode_whole_frames()?;
        let mut out = self.headers();
        self.write_pages(&mut out, &packets, false);
        Ok(out)
    }

    /// The encoder's last frames (its look-ahead fed with silence) as the final page.
    pub fn finish(mut self) -> Result<Vec<u8>, AudioError> {
        let padded = (self.pending.len() + self.lookahead).div_ceil(self.frame) * self.frame;
        self.pending.resize(padded, 0.0);
        let packets = self.encode_whole_frames()?;
        let mut out = self.headers();
        self.write_pages(&mut out, &packets, true);
        Ok(out)
    }

    fn encode_whole_frames(&mut self) -> Result<Vec<Vec<u8>>, AudioError> {
        let whole = self.pending.len() / self.frame * self.frame;
        let mut packets = Vec::new();
        for frame in self.pending[..whole].chunks(self.frame) {
            let n = self
                .encoder
                .encode_float(frame, &mut self.buf)
                .map_err(bad)?;
            packets.push(self.buf[..n].to_vec());
        }
        self.pending.drain(..whole);
        Ok(packets)
    }

    /// `OpusHead` and `OpusTags`, each on its own page, before the first audio page.
    fn headers(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.pages > 0 {
            return out;
        }
        let mut head = b"OpusHead".to_vec();
        head.push(1); // version
        head.push(1); // mono
        head.extend_from_slice(&self.pre_skip.to_le_bytes());
        head.extend_from_slice(&self.sample_rate.to_le_bytes());
        head.extend_from_slice(&[0, 0, 0]); // no gain, mapping family 0
        page(&mut out, 0x02, 0, 0, &[&head]);
        let vendor = b"switchboard";
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        page(&mut out, 0, 0, 1, &[&tags]);
        self.pages = 2;
        out
    }

    /// Pages of up to a second of `packets`; the last one of the stream says so and ends at
    /// the input's length (plus the pre-skip), which trims the padding of the last frame.
    fn write_pages(&mut self, out: &mut Vec<u8>, packets: &[Vec<u8>], last: bool) {
        let groups: Vec<&[Vec<u8>]> = packets.chunks(FRAMES_PER_PAGE).collect();
        if last && groups.is_empty() {
            let end = self.pre_skip as i64 + (self.samples_in * self.scale) as i64;
            page(out, 0x04, end, self.pages, &[]);
            self.pages += 1;
        }
        for (i, group) in groups.iter().enumerate() {
            self.frames_out += group.len() as u64;
            let eos = last && i + 1 == groups.len();
            let granule = match eos {
                true => self.pre_skip as i64 + (self.samples_in * self.scale) as i64,
                false => (self.frames_out * FRAME as u64) as i64,
            };
            let refs: Vec<&[u8]> = group.iter().map(Vec::as_slice).collect();
            page(out, if eos { 0x04 } else { 0 }, granule, self.pages, &refs);
            self.pages += 1;
        }
    }
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
    fn a_stream_sends_audio_before_it_ends_and_decodes_whole() {
        let a = tone(1.7, 24_000);
        let mut enc = OggOpusEncoder::new(24_000, 32_000).unwrap();
        let mut bytes = Vec::new();
        for (i, piece) in a.samples.chunks(7_001).enumerate() {
            let out = enc.encode(piece).unwrap();
            assert!(!out.is_empty(), "piece {i} comes out at once");
            bytes.extend(out);
        }
        let tail = enc.finish().unwrap();
        assert!(tail.len() < bytes.len() / 4, "only the look-ahead is left");
        bytes.extend(tail);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.samples.len(), 81_600, "1.7 s at 48 kHz");
        // The last page, and only it, ends the stream; granules rise page by page.
        let mut at = 0;
        let mut granules = Vec::new();
        let mut eos = Vec::new();
        while at < bytes.len() {
            let body: usize = bytes[at + 27..at + 27 + bytes[at + 26] as usize]
                .iter()
                .map(|&l| l as usize)
                .sum();
            granules.push(i64::from_le_bytes(
                bytes[at + 6..at + 14].try_into().unwrap(),
            ));
            eos.push(bytes[at + 5] & 0x04 != 0);
            at += 27 + bytes[at + 26] as usize + body;
        }
        assert_eq!(eos.iter().filter(|&&e| e).count(), 1);
        assert!(*eos.last().unwrap());
        assert!(granules.windows(2).all(|w| w[0] <= w[1]), "{granules:?}");
        assert_eq!(*granules.last().unwrap(), 312 + 81_600);
    }

    #[test]
    fn rates_opus_cannot_take_are_resampled_in_one_shot_and_refused_in_a_stream() {
        let back = decode(&encode(&tone(0.5, 22_050), 24_000).unwrap()).unwrap();
        assert_eq!(back.samples.len(), 24_000);
        assert!(OggOpusEncoder::new(22_050, 24_000).is_err());
        let empty = OggOpusEncoder::new(16_000, 24_000)
            .unwrap()
            .finish()
            .unwrap();
        assert!(
            decode(&empty).unwrap().samples.is_empty(),
            "no audio, a valid file"
        );
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
