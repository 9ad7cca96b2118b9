//! Conversions between PCM16 and f32 samples, and channel down-mixing.

/// PCM16 to f32 in [-1, 1).
pub fn i16_to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| s as f32 / 32768.0).collect()
}

/// f32 to PCM16, clamping out-of-range values instead of wrapping.
pub fn f32_to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|&s| f32_sample_to_i16(s)).collect()
}

/// One f32 sample to PCM16, clamped; NaN becomes silence.
pub fn f32_sample_to_i16(s: f32) -> i16 {
    if s.is_nan() {
        return 0;
    }
    (s * 32768.0)
        .round()
        .clamp(i16::MIN as f32, i16::MAX as f32) as i16
}

/// Little-endian PCM16 bytes (the Realtime API's `pcm16`) to samples. A trailing odd byte is ignored.
pub fn le_bytes_to_i16(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Samples to little-endian PCM16 bytes.
pub fn i16_to_le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Average interleaved channels into one.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// Root mean square level of a buffer (0 for an empty one).
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clamps_instead_of_wrapping() {
        assert_eq!(
            f32_to_i16(&[2.0, -2.0, f32::NAN]),
            vec![i16::MAX, i16::MIN, 0]
        );
    }

    #[test]
    fn downmix_averages_frames() {
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
    }

    proptest! {
        #[test]
        fn i16_round_trips_through_f32(samples in proptest::collection::vec(any::<i16>(), 0..512)) {
            prop_assert_eq!(f32_to_i16(&i16_to_f32(&samples)), samples);
        }

        #[test]
        fn le_bytes_round_trip(samples in proptest::collection::vec(any::<i16>(), 0..512)) {
            prop_assert_eq!(le_bytes_to_i16(&i16_to_le_bytes(&samples)), samples);
        }
    }
}
