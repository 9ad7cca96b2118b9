//! Audio formats written as streams: samples go in piece by piece and bytes come out as soon
//! as the format can write them; the concatenation of everything returned is a valid file.
//! `/v1/audio/speech` sends each sentence's bytes the moment they are encoded.

use super::flac::FlacEncoder;
use super::mp3::Mp3Encoder;
use super::ogg_opus::OggOpusEncoder;
use super::{AudioError, pcm};

/// One audio format, written as a stream.
pub trait StreamEncoder: Send {
    /// Encode more samples (f32 in [-1, 1]); returns what is ready to send.
    fn encode(&mut self, samples: &[f32]) -> Result<Vec<u8>, AudioError>;
    /// Whatever the format held back, and its end.
    fn finish(self: Box<Self>) -> Result<Vec<u8>, AudioError>;
}

/// 16-bit little-endian PCM, bare or after a WAV header whose sizes say "until the end of
/// the stream" (a stream cannot go back to fill them in).
#[derive(Debug)]
pub struct Pcm16Stream {
    header: Option<Vec<u8>>,
}

impl Pcm16Stream {
    pub fn raw() -> Self {
        Self { header: None }
    }

    pub fn wav(sample_rate: u32) -> Self {
        let mut h = Vec::with_capacity(44);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes()); // PCM
        h.extend_from_slice(&1u16.to_le_bytes()); // mono
        h.extend_from_slice(&sample_rate.to_le_bytes());
        h.extend_from_slice(&(sample_rate * 2).to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        Self { header: Some(h) }
    }
}

impl StreamEncoder for Pcm16Stream {
    fn encode(&mut self, samples: &[f32]) -> Result<Vec<u8>, AudioError> {
        let mut out = self.header.take().unwrap_or_default();
        out.extend(pcm::i16_to_le_bytes(&pcm::f32_to_i16(samples)));
        Ok(out)
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, AudioError> {
        Ok(self.header.unwrap_or_default())
    }
}

impl StreamEncoder for Mp3Encoder {
    fn encode(&mut self, samples: &[f32]) -> Result<Vec<u8>, AudioError> {
        Mp3Encoder::encode(self, samples)
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, AudioError> {
        Mp3Encoder::finish(*self)
    }
}

impl StreamEncoder for OggOpusEncoder {
    fn encode(&mut self, samples: &[f32]) -> Result<Vec<u8>, AudioError> {
        OggOpusEncoder::encode(self, samples)
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, AudioError> {
        OggOpusEncoder::finish(*self)
    }
}

impl StreamEncoder for FlacEncoder {
    fn encode(&mut self, samples: &[f32]) -> Result<Vec<u8>, AudioError> {
        FlacEncoder::encode(self, samples)
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, AudioError> {
        FlacEncoder::finish(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::decode::decode;

    #[test]
    fn every_format_streamed_in_pieces_decodes_to_the_whole_clip() {
        let samples: Vec<f32> = (0..36_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
        let encoders: Vec<(&str, Box<dyn StreamEncoder>)> = vec![
            ("wav", Box::new(Pcm16Stream::wav(24_000))),
            ("mp3", Box::new(Mp3Encoder::new(24_000, 64).unwrap())),
            (
                "opus",
                Box::new(OggOpusEncoder::new(24_000, 32_000).unwrap()),
            ),
            ("flac", Box::new(FlacEncoder::new(24_000).unwrap())),
        ];
        for (name, mut enc) in encoders {
            let mut bytes = Vec::new();
            for piece in samples.chunks(10_000) {
                bytes.extend(enc.encode(piece).unwrap());
            }
            bytes.extend(enc.finish().unwrap());
            let back = decode(&bytes, Some(name)).unwrap();
            let secs = back.duration_secs();
            assert!((1.45..1.65).contains(&secs), "{name}: {secs} s");
        }
        let mut raw = Pcm16Stream::raw();
        assert_eq!(raw.encode(&[0.5, -0.5]).unwrap(), [0, 64, 0, 192]);
    }
}
