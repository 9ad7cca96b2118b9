//! Audio encodings the channels carry: 16-bit PCM at a given rate, G.711 mu-law and A-law.

use switchboard_models::audio::{g711, pcm, rates};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// Little-endian signed 16-bit mono PCM.
    Pcm16 { rate: u32 },
    /// G.711 mu-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("16-bit PCM needs an even number of bytes, got {0}")]
    OddLength(usize),
}

impl AudioFormat {
    pub const REALTIME_DEFAULT: AudioFormat = AudioFormat::Pcm16 {
        rate: rates::REALTIME,
    };

    pub fn rate(self) -> u32 {
        match self {
            Self::Pcm16 { rate } => rate,
            Self::Pcmu | Self::Pcma => rates::TELEPHONY,
        }
    }

    pub fn decode(self, bytes: &[u8]) -> Result<Vec<f32>, DecodeError> {
        let samples = match self {
            Self::Pcm16 { .. } => {
                if !bytes.len().is_multiple_of(2) {
                    return Err(DecodeError::OddLength(bytes.len()));
                }
                pcm::le_bytes_to_i16(bytes)
            }
            Self::Pcmu => g711::mulaw_decode_all(bytes),
            Self::Pcma => g711::alaw_decode_all(bytes),
        };
        Ok(pcm::i16_to_f32(&samples))
    }

    pub fn encode(self, samples: &[f32]) -> Vec<u8> {
        let samples = pcm::f32_to_i16(samples);
        match self {
            Self::Pcm16 { .. } => pcm::i16_to_le_bytes(&samples),
            Self::Pcmu => g711::mulaw_encode_all(&samples),
            Self::Pcma => g711::alaw_encode_all(&samples),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_each_format() {
        let tone: Vec<f32> = (0..800).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        for f in [
            AudioFormat::REALTIME_DEFAULT,
            AudioFormat::Pcmu,
            AudioFormat::Pcma,
        ] {
            let back = f.decode(&f.encode(&tone)).unwrap();
            assert_eq!(back.len(), tone.len());
            let err = back
                .iter()
                .zip(&tone)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 0.02, "{f:?}: {err}");
        }
        assert_eq!(
            AudioFormat::REALTIME_DEFAULT.decode(&[1, 2, 3]),
            Err(DecodeError::OddLength(3))
        );
    }
}
