//! Whisper's audio features: the Slaney-style mel filterbank, as librosa computes it
//! (`htk=False`, `norm="slaney"`), and the log-mel spectrogram computed with it.
//! whisper.cpp reads these filters from the model file and computes its own spectrogram;
//! models that reuse Whisper's encoder (the end-of-turn model) are fed [`log_mel`].

use realfft::RealFftPlanner;

/// Whisper's analysis: 25 ms windows every 10 ms at 16 kHz.
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    (6.4f64).ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// `n_mels` x `n_fft / 2 + 1` filters, row-major, for signals sampled at `sample_rate`.
pub fn filterbank(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let nyquist = sample_rate as f64 / 2.0;
    let fft_freqs: Vec<f64> = (0..bins)
        .map(|i| i as f64 * nyquist / (bins - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(nyquist));
    let mel_freqs: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let (left, center, right) = (mel_freqs[m], mel_freqs[m + 1], mel_freqs[m + 2]);
        let norm = 2.0 / (right - left);
        for (b, &f) in fft_freqs.iter().enumerate() {
            let rising = (f - left) / (center - left);
            let falling = (right - f) / (right - center);
            out[m * bins + b] = (rising.min(falling).max(0.0) * norm) as f32;
        }
    }
    out
}

/// Whisper's log-mel spectrogram of 16 kHz `samples`: `n_mels` rows of `samples.len() / HOP`
/// frames, row-major, each frame centered on its hop (reflect-padded at both ends). Powers
/// are floored at 1e-10, taken as log10, clamped to 8 below the loudest and mapped by
/// `(x + 4) / 4`, as Whisper's feature extractor does.
pub fn log_mel(samples: &[f32], n_mels: usize) -> Vec<f32> {
    let frames = samples.len() / HOP;
    let bins = N_FFT / 2 + 1;
    if frames == 0 {
        return Vec::new();
    }
    let filters = filterbank(16_000, N_FFT, n_mels);
    // Each filter is a triangle: only its nonzero bins are summed.
    let spans: Vec<(usize, usize)> = filters
        .chunks(bins)
        .map(|row| {
            let first = row.iter().position(|&v| v > 0.0).unwrap_or(0);
            let last = row.iter().rposition(|&v| v > 0.0).map_or(0, |i| i + 1);
            (first, last.max(first))
        })
        .collect();
    // In f64, as the reference extractor computes: the quietest bins are ~1e-8 of the
    // loudest, below f32's precision of a transform's sum.
    let window: Vec<f64> = (0..N_FFT)
        .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
        .collect();
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
    let (mut frame, mut spectrum) = (fft.make_input_vec(), fft.make_output_vec());
    let mut scratch = fft.make_scratch_vec();
    let mut power = vec![0f64; bins];
    let mut out = vec![0f32; n_mels * frames];
    for t in 0..frames {
        let start = (t * HOP) as isize - (N_FFT / 2) as isize;
        for (i, v) in frame.iter_mut().enumerate() {
            *v = samples[reflect(start + i as isize, samples.len())] as f64 * window[i];
        }
        if fft
            .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
            .is_err()
        {
            continue; // the buffers are the plan's own: it cannot fail
        }
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for (m, &(first, last)) in spans.iter().enumerate() {
            let row = &filters[m * bins..(m + 1) * bins];
            let energy: f64 = (first..last).map(|b| row[b] as f64 * power[b]).sum();
            out[m * frames + t] = energy.max(1e-10).log10() as f32;
        }
    }
    let floor = out.iter().copied().fold(f32::NEG_INFINITY, f32::max) - 8.0;
    for v in &mut out {
        *v = (v.max(floor) + 4.0) / 4.0;
    }
    out
}

/// Index `i` of a buffer of `len` reflected at its ends (numpy's `reflect`: the edge sample
/// is not repeated).
fn reflect(i: isize, len: usize) -> usize {
    let last = len as isize - 1;
    if last <= 0 {
        return 0;
    }
    let period = 2 * last;
    let i = i.rem_euclid(period);
    (if i > last { period - i } else { i }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflects_without_repeating_the_edge() {
        let at: Vec<usize> = (-3..8).map(|i| reflect(i, 5)).collect();
        assert_eq!(at, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        assert_eq!(reflect(7, 1), 0);
    }

    #[test]
    fn matches_whisper_reference_filters() {
        // Reference values read from Whisper's own assets/mel_filters.npz (`mel_80`).
        let f = filterbank(16_000, 400, 80);
        assert_eq!(f.len(), 80 * 201);
        let at = |m: usize, b: usize| f[m * 201 + b];
        let close = |a: f32, b: f32| (a - b).abs() < 2e-6;
        assert!(close(at(0, 1), 0.024_862_595), "{}", at(0, 1));
        assert!(close(at(1, 2), 0.022_871_772), "{}", at(1, 2));
        assert!(close(at(10, 10), 0.019_908_218), "{}", at(10, 10));
        assert!(close(at(60, 93), 0.006_591_093), "{}", at(60, 93));
        let row79: f32 = (0..201).map(|b| at(79, b)).sum();
        assert!(close(row79, 0.024_925_34), "{row79}");
        let total: f32 = f.iter().sum();
        assert!((total - 1.999_024_2).abs() < 1e-4, "{total}");
    }
}
