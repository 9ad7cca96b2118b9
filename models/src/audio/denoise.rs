//! Noise suppression for caller audio: RNNoise (the `nnnoiseless` port, pure Rust with its
//! weights compiled in), which works on 48 kHz audio in 10 ms frames.
//!
//! [`Denoiser`] streams like [`Resampler`]: push any number of samples at the caller's rate,
//! get back the denoised audio at 48 kHz, whole frames only. The first frame comes out as
//! silence (RNNoise's own first output is a fade-in), so `n` input samples always give
//! `n * 48 kHz / rate` samples out, one frame (10 ms) late at most.

use nnnoiseless::DenoiseState;

use super::{AudioError, Resampler, rates};

/// Samples per RNNoise frame: 10 ms at 48 kHz.
pub const FRAME: usize = DenoiseState::FRAME_SIZE;
/// RNNoise takes samples in the range of an `i16`.
const SCALE: f32 = 32_768.0;

pub struct Denoiser {
    to_48k: Resampler,
    state: Box<DenoiseState<'static>>,
    /// 48 kHz samples waiting to fill a frame.
    pending: Vec<f32>,
    first: bool,
}

impl std::fmt::Debug for Denoiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Denoiser")
            .field("input_rate", &self.to_48k.input_rate())
            .finish_non_exhaustive()
    }
}

impl Denoiser {
    /// A denoiser for audio at `input_rate` (any rate the resampler takes).
    pub fn new(input_rate: u32) -> Result<Self, AudioError> {
        Ok(Self {
            to_48k: Resampler::new(input_rate, rates::OPUS)?,
            state: DenoiseState::new(),
            pending: Vec::with_capacity(2 * FRAME),
            first: true,
        })
    }

    pub fn input_rate(&self) -> u32 {
        self.to_48k.input_rate()
    }

    /// Denoise `samples` (at the input rate, in [-1, 1]); returns the 48 kHz frames now ready.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, AudioError> {
        let up = self.to_48k.push(samples)?;
        self.pending.extend(up.iter().map(|s| s * SCALE));
        let whole = self.pending.len() / FRAME * FRAME;
        let mut out = vec![0.0; whole];
        for (input, output) in self.pending[..whole]
            .chunks_exact(FRAME)
            .zip(out.chunks_exact_mut(FRAME))
        {
            self.state.process_frame(output, input);
            if std::mem::take(&mut self.first) {
                output.fill(0.0);
            }
        }
        self.pending.drain(..whole);
        for s in &mut out {
            *s = (*s / SCALE).clamp(-1.0, 1.0);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, secs: f32, hz: f32, amp: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| amp * (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin())
            .collect()
    }

    /// Uniform noise from a fixed seed (xorshift), in [-amp, amp].
    fn noise(n: usize, amp: f32) -> Vec<f32> {
        let mut x: u32 = 0x9e37_79b9;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                amp * (x as f32 / u32::MAX as f32 * 2.0 - 1.0)
            })
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    #[test]
    fn streams_any_push_size_into_whole_frames_at_48k() {
        for rate in [8_000, 16_000, 24_000, 48_000] {
            let mut d = Denoiser::new(rate).unwrap();
            let input = tone(rate, 1.0, 300.0, 0.3);
            let mut out = Vec::new();
            for chunk in input.chunks(rate as usize / 50 + 7) {
                let got = d.push(chunk).unwrap();
                assert_eq!(got.len() % FRAME, 0);
                out.extend(got);
            }
            // One second in: 48,000 samples out, less what is still buffered (< 2 frames
            // with the resampler's own chunk).
            assert!(
                out.len() <= 48_000 && out.len() >= 48_000 - 2 * FRAME,
                "{rate}: {}",
                out.len()
            );
            assert!(
                out[..FRAME].iter().all(|&s| s == 0.0),
                "the fade-in frame is silence"
            );
        }
    }

    #[test]
    fn steady_noise_is_suppressed() {
        let rate = 16_000;
        let hiss = noise(rate as usize * 2, 0.05);
        let mut d = Denoiser::new(rate).unwrap();
        let out = d.push(&hiss).unwrap();
        // After the first half second (RNNoise learns the noise), more than 6 dB of it is
        // gone (~10 dB measured).
        let (before, after) = (rms(&hiss), rms(&out[24_000..]));
        assert!(after < before / 2.0, "noise rms {before} -> {after}");
    }
}
