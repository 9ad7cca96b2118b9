//! G.711 mu-law and A-law, the codecs of telephony media streams (8 kHz, one byte per sample).
//!
//! Encoders follow ITU-T G.711 segment tables; decoders are exact inverses on the codeword set.

const MULAW_BIAS: i32 = 0x84;
const MULAW_CLIP: i32 = 32635;

/// Encode one PCM16 sample as mu-law.
pub fn mulaw_encode(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(MULAW_CLIP) + MULAW_BIAS;
    // The segment is the position of the highest set bit among bits 7..=14.
    let exponent = (31 - pcm.leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Decode one mu-law byte to PCM16.
pub fn mulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = ((b >> 4) & 0x07) as i32;
    let mantissa = (b & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encode one PCM16 sample as A-law (13-bit magnitude, segment search as in G.711).
pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = (sample as i32) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // Segment ends: 0x1F, 0x3F, 0x7F, ..., 0xFFF.
    let segment = (0..8).find(|&seg| pcm < (0x20 << seg));
    let code = match segment {
        None => 0x7F,
        Some(seg) if seg < 2 => (seg << 4) | ((pcm >> 1) & 0x0F),
        Some(seg) => (seg << 4) | ((pcm >> seg) & 0x0F),
    };
    (code as u8) ^ mask
}

/// Decode one A-law byte to PCM16.
pub fn alaw_decode(byte: u8) -> i16 {
    let b = byte ^ 0x55;
    let sign = b & 0x80;
    let exponent = ((b >> 4) & 0x07) as i32;
    let mantissa = (b & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if sign != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Encode a buffer as mu-law.
pub fn mulaw_encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| mulaw_encode(s)).collect()
}

/// Decode a mu-law buffer.
pub fn mulaw_decode_all(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| mulaw_decode(b)).collect()
}

/// Encode a buffer as A-law.
pub fn alaw_encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| alaw_encode(s)).collect()
}

/// Decode an A-law buffer.
pub fn alaw_decode_all(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| alaw_decode(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_mulaw_codeword_round_trips() {
        for b in 0..=255u8 {
            let decoded = mulaw_decode(b);
            // 0x7F and 0xFF both mean zero; every other code maps back to itself.
            let again = mulaw_encode(decoded);
            assert_eq!(mulaw_decode(again), decoded, "byte {b:#x}");
        }
    }

    #[test]
    fn every_alaw_codeword_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(b)), b, "byte {b:#x}");
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(mulaw_encode(0), 0xFF);
        assert_eq!(mulaw_decode(0xFF), 0);
        assert_eq!(mulaw_decode(0x00), -32124);
        assert_eq!(mulaw_decode(0x80), 32124);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
    }

    proptest! {
        // Companding error grows with amplitude: at most half a quantization step of the segment.
        #[test]
        fn mulaw_error_is_bounded(s in any::<i16>()) {
            let back = mulaw_decode(mulaw_encode(s)) as i32;
            let err = (back - s as i32).abs();
            let bound = (s as i32).abs().max(256) / 16 + 8;
            prop_assert!(err <= bound, "{s} -> {back}");
        }

        #[test]
        fn alaw_error_is_bounded(s in any::<i16>()) {
            let back = alaw_decode(alaw_encode(s)) as i32;
            let err = (back - s as i32).abs();
            let bound = (s as i32).abs().max(256) / 16 + 8;
            prop_assert!(err <= bound, "{s} -> {back}");
        }
    }
}
