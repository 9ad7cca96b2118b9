//! Sample-rate conversion with `rubato`'s FFT resampler (band-limited, fixed ratio).
//!
//! [`Resampler`] streams: push any number of samples, take what is ready, flush at the end.
//! It hides rubato's fixed chunk size and its output delay, so `n` samples in always give
//! `round(n * to / from)` samples out once flushed.

use rubato::{FftFixedInOut, Resampler as _};

use super::AudioError;

/// Roughly 10 ms of input per FFT chunk: small enough for live audio, large enough to be cheap.
const CHUNK_MS: usize = 10;

/// A streaming mono resampler between two fixed rates.
pub struct Resampler {
    inner: Option<FftFixedInOut<f32>>,
    from: u32,
    to: u32,
    pending: Vec<f32>,
    /// Output samples still to drop at the front (the filter's delay).
    delay_left: usize,
    consumed: u64,
    produced: u64,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        for rate in [from, to] {
            if !(1_000..=384_000).contains(&rate) {
                return Err(AudioError::UnsupportedRate(rate));
            }
        }
        let inner = if from == to {
            None
        } else {
            let chunk = (from as usize * CHUNK_MS / 1000).max(1);
            let r = FftFixedInOut::<f32>::new(from as usize, to as usize, chunk, 1)
                .map_err(|e| AudioError::Resample(e.to_string()))?;
            Some(r)
        };
        let delay_left = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(Self {
            inner,
            from,
            to,
            pending: Vec::new(),
            delay_left,
            consumed: 0,
            produced: 0,
        })
    }

    pub fn input_rate(&self) -> u32 {
        self.from
    }

    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Feed samples; returns the output that is ready now.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, AudioError> {
        self.consumed += samples.len() as u64;
        let Some(need) = self.inner.as_ref().map(|r| r.input_frames_next()) else {
            self.produced += samples.len() as u64;
            return Ok(samples.to_vec());
        };
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= need {
            let chunk = self.pending[start..start + need].to_vec();
            out.extend(self.process_chunk(&chunk)?);
            start += need;
        }
        self.pending.drain(..start);
        Ok(out)
    }

    /// Drain the filter: returns the rest, so that the total output matches the input duration.
    pub fn flush(&mut self) -> Result<Vec<f32>, AudioError> {
        let Some(need) = self.inner.as_ref().map(|r| r.input_frames_next()) else {
            return Ok(Vec::new());
        };
        let expected = (self.consumed * self.to as u64 + self.from as u64 / 2) / self.from as u64;
        let mut tail = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        // Zero-padded chunks until the delayed tail has come out.
        while self.produced < expected {
            tail.resize(need, 0.0);
            out.extend(self.process_chunk(&tail)?);
            tail.clear();
        }
        let surplus = (self.produced - expected) as usize;
        out.truncate(out.len().saturating_sub(surplus));
        self.produced = expected;
        Ok(out)
    }

    /// One fixed-size chunk through the filter, minus whatever is left of its initial delay.
    fn process_chunk(&mut self, chunk: &[f32]) -> Result<Vec<f32>, AudioError> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(chunk.to_vec());
        };
        let mut out = inner
            .process(&[chunk], None)
            .map_err(|e| AudioError::Resample(e.to_string()))?
            .swap_remove(0);
        let drop = self.delay_left.min(out.len());
        out.drain(..drop);
        self.delay_left -= drop;
        self.produced += out.len() as u64;
        Ok(out)
    }
}

/// Resample a whole buffer.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    let mut r = Resampler::new(from, to)?;
    let mut out = r.push(samples)?;
    out.extend(r.flush()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tone(freq: f32, rate: u32, secs: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    /// Frequency estimate from zero crossings.
    fn frequency(samples: &[f32], rate: u32) -> f32 {
        let crossings = samples
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        crossings as f32 * rate as f32 / samples.len() as f32
    }

    #[test]
    fn preserves_pitch_and_duration_across_rates() {
        for (from, to) in [
            (8_000, 16_000),
            (22_050, 16_000),
            (48_000, 24_000),
            (16_000, 48_000),
            (44_100, 16_000),
        ] {
            let input = tone(440.0, from, 1.0);
            let out = resample(&input, from, to).unwrap();
            assert_eq!(out.len(), to as usize, "{from}->{to}");
            let f = frequency(&out[to as usize / 10..], to);
            assert!((f - 440.0).abs() < 5.0, "{from}->{to}: {f} Hz");
        }
    }

    #[test]
    fn output_is_aligned_with_input() {
        // A click at 0.5 s must come out at 0.5 s, not shifted by the filter delay.
        let mut input = vec![0.0f32; 16_000];
        input[8_000] = 1.0;
        let out = resample(&input, 16_000, 48_000).unwrap();
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        assert!((peak as i64 - 24_000).abs() <= 3, "peak at {peak}");
    }

    #[test]
    fn rejects_absurd_rates() {
        assert!(Resampler::new(0, 16_000).is_err());
        assert!(Resampler::new(16_000, 10_000_000).is_err());
    }

    proptest! {
        #[test]
        fn streaming_equals_whole_buffer(split in proptest::collection::vec(1usize..700, 1..12)) {
            let input = tone(300.0, 8_000, 0.6);
            let whole = resample(&input, 8_000, 24_000).unwrap();
            let mut r = Resampler::new(8_000, 24_000).unwrap();
            let mut streamed = Vec::new();
            let mut pos = 0;
            for n in split {
                let end = (pos + n).min(input.len());
                streamed.extend(r.push(&input[pos..end]).unwrap());
                pos = end;
            }
            streamed.extend(r.push(&input[pos..]).unwrap());
            streamed.extend(r.flush().unwrap());
            prop_assert_eq!(streamed.len(), whole.len());
            for (a, b) in streamed.iter().zip(&whole) {
                prop_assert!((a - b).abs() < 1e-4);
            }
        }
    }
}
