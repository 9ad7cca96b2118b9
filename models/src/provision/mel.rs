//! Slaney-style mel filterbank, as librosa computes it (`htk=False`, `norm="slaney"`).
//! whisper.cpp reads these filters from the model file; Whisper was trained with them.

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

#[cfg(test)]
mod tests {
    use super::*;

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
