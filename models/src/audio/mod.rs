//! Audio primitives shared by every crate: sample formats, resampling, WAV files, G.711,
//! decoding uploaded files (WAV, MP3, FLAC, Ogg, MP4/M4A, WebM, CAF, AIFF), encoding MP3,
//! Ogg Opus and FLAC as streams, and suppressing noise in caller audio.
//!
//! Everything here is plain computation on buffers; nothing blocks on I/O except
//! the WAV file helpers, and nothing knows about calls or sockets.

pub mod decode;
pub mod denoise;
mod error;
pub mod flac;
pub mod g711;
pub mod mel;
pub mod mp3;
pub mod ogg_opus;
pub mod pcm;
mod resample;
pub mod stream;
pub mod wav;

pub use error::AudioError;
pub use resample::{Resampler, resample};

/// Sample rates the gateway meets: telephony, speech models, Piper voices, OpenAI Realtime, Opus.
pub mod rates {
    /// G.711 telephony (Twilio, Telnyx).
    pub const TELEPHONY: u32 = 8_000;
    /// Whisper and Silero VAD input.
    pub const SPEECH_MODELS: u32 = 16_000;
    /// Piper medium voices.
    pub const PIPER: u32 = 22_050;
    /// OpenAI Realtime `pcm16`.
    pub const REALTIME: u32 = 24_000;
    /// Opus / WebRTC.
    pub const OPUS: u32 = 48_000;
}

/// Mono audio at a known sample rate, as f32 in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct MonoAudio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl MonoAudio {
    pub fn new(samples: Vec<f32>, sample_rate: u32) -> Self {
        Self {
            samples,
            sample_rate,
        }
    }

    /// Length in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }

    /// This audio at `rate`, resampled when it differs.
    pub fn to_rate(&self, rate: u32) -> Result<MonoAudio, AudioError> {
        if rate == self.sample_rate {
            return Ok(self.clone());
        }
        Ok(MonoAudio::new(
            resample(&self.samples, self.sample_rate, rate)?,
            rate,
        ))
    }
}
