//! How a ggml Whisper file stores its tensors: the element types whisper.cpp loads (f32, f16,
//! q8_0), their sizes, and the encoders the converter writes them with.
//!
//! q8_0 is ggml's 8-bit block format: every 32 consecutive values of a row share one f16
//! scale `d = max|x| / 127` and are stored as `round(x / d)` in an `i8`, 34 bytes a block.
//! whisper.cpp expects every 2-D weight matrix in the file's weight type; 1-D tensors,
//! positional embeddings and conv biases stay f32, conv kernels f16.

/// ggml's tensor type ids, as the tensor table stores them.
pub const TYPE_F32: i32 = 0;
pub const TYPE_F16: i32 = 1;
pub const TYPE_Q8_0: i32 = 8;

/// Values per q8_0 block, and its size: an f16 scale and 32 `i8`.
pub const Q8_0_BLOCK: usize = 32;
const Q8_0_BLOCK_BYTES: usize = 2 + Q8_0_BLOCK;

/// ggml multiplies the quantization format version into a quantized file's header ftype.
const QNT_VERSION: i32 = 2;
const QNT_VERSION_FACTOR: i32 = 1000;
/// `GGML_FTYPE_MOSTLY_F16` and `GGML_FTYPE_MOSTLY_Q8_0`.
const FTYPE_MOSTLY_F16: i32 = 1;
const FTYPE_MOSTLY_Q8_0: i32 = 7;

/// The type the converter stores a model's weight matrices in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weights {
    /// Half precision, as whisper.cpp's own converter writes (the default).
    #[default]
    F16,
    /// 8-bit blocks: about half the size of f16.
    Q8_0,
}

impl Weights {
    /// The `ftype` field of the file header.
    pub fn header_ftype(self) -> i32 {
        match self {
            Weights::F16 => FTYPE_MOSTLY_F16,
            Weights::Q8_0 => QNT_VERSION * QNT_VERSION_FACTOR + FTYPE_MOSTLY_Q8_0,
        }
    }

    /// The tensor type of 2-D weight matrices.
    pub fn tensor_type(self) -> i32 {
        match self {
            Weights::F16 => TYPE_F16,
            Weights::Q8_0 => TYPE_Q8_0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Weights::F16 => "f16",
            Weights::Q8_0 => "q8_0",
        }
    }
}

impl std::str::FromStr for Weights {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f16" => Ok(Weights::F16),
            "q8_0" => Ok(Weights::Q8_0),
            other => Err(format!("unknown weight type {other:?} (f16 or q8_0)")),
        }
    }
}

/// Can a row of `len` values be stored as `ty`? q8_0 rows must be whole blocks.
pub fn row_fits(ty: i32, len: usize) -> bool {
    ty != TYPE_Q8_0 || len.is_multiple_of(Q8_0_BLOCK)
}

/// Bytes a tensor of `ty` with `dims` (ggml order, innermost first) takes in the file, or
/// `None` for an unknown type, a q8_0 row that is not whole blocks, or an overflow.
pub fn tensor_bytes(ty: i32, dims: &[usize]) -> Option<usize> {
    let n = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
    if !row_fits(ty, dims.first().copied().unwrap_or(1)) {
        return None;
    }
    match ty {
        TYPE_F32 => n.checked_mul(4),
        TYPE_F16 => n.checked_mul(2),
        TYPE_Q8_0 => Some(n / Q8_0_BLOCK * Q8_0_BLOCK_BYTES),
        _ => None,
    }
}

/// Append `values` encoded as `ty` (f32, f16, or q8_0 when `values.len()` is whole blocks).
pub fn encode(ty: i32, values: &[f32], out: &mut Vec<u8>) {
    match ty {
        TYPE_F32 => values.iter().for_each(|v| out.extend(v.to_le_bytes())),
        TYPE_F16 => values
            .iter()
            .for_each(|&v| out.extend(half::f16::from_f32(v).to_le_bytes())),
        TYPE_Q8_0 => quantize_q8_0(values, out),
        other => unreachable!("the converter writes no ggml type {other}"),
    }
}

/// ggml's reference q8_0 quantization of whole blocks.
fn quantize_q8_0(values: &[f32], out: &mut Vec<u8>) {
    debug_assert_eq!(values.len() % Q8_0_BLOCK, 0);
    for block in values.chunks_exact(Q8_0_BLOCK) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let inv = if d == 0.0 { 0.0 } else { 1.0 / d };
        out.extend(half::f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|&v| (v * inv).round() as i8 as u8));
    }
}

/// Decode q8_0 blocks back to f32 (what ggml computes with), for checks and tests.
pub fn dequantize_q8_0(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(Q8_0_BLOCK_BYTES)
        .flat_map(|b| {
            let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            b[2..].iter().map(move |&q| f32::from(q as i8) * d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_and_sizes() {
        assert_eq!(Weights::F16.header_ftype(), 1);
        assert_eq!(Weights::Q8_0.header_ftype(), 2007);
        assert_eq!(tensor_bytes(TYPE_F32, &[3, 2]), Some(24));
        assert_eq!(tensor_bytes(TYPE_F16, &[3, 2]), Some(12));
        assert_eq!(tensor_bytes(TYPE_Q8_0, &[64, 3]), Some(6 * 34));
        assert_eq!(tensor_bytes(TYPE_Q8_0, &[48, 2]), None);
        assert_eq!(tensor_bytes(5, &[32]), None);
        assert_eq!(tensor_bytes(TYPE_F32, &[usize::MAX, 2]), None);
        assert_eq!("q8_0".parse(), Ok(Weights::Q8_0));
        assert!("q4_0".parse::<Weights>().is_err());
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let mut out = Vec::new();
        encode(TYPE_Q8_0, &[0.0; 32], &mut out);
        assert_eq!(out, vec![0u8; 34]);
    }

    proptest! {
        /// Every value comes back within half a quantization step (plus the f16 rounding of
        /// the scale), and the largest magnitude of each block maps to ±127.
        #[test]
        fn q8_0_round_trips_within_half_a_step(
            values in proptest::collection::vec(-100f32..100.0, 32..=32 * 6)
                .prop_map(|mut v| { v.truncate(v.len() / 32 * 32); v })
        ) {
            let mut out = Vec::new();
            encode(TYPE_Q8_0, &values, &mut out);
            prop_assert_eq!(out.len(), values.len() / 32 * 34);
            let back = dequantize_q8_0(&out);
            prop_assert_eq!(back.len(), values.len());
            for (block, (orig, got)) in values.chunks(32).zip(back.chunks(32)).enumerate() {
                let amax = orig.iter().fold(0f32, |m, v| m.max(v.abs()));
                let step = amax / 127.0;
                for (x, y) in orig.iter().zip(got) {
                    prop_assert!((x - y).abs() <= step * 0.5 + amax * 1e-3 + 1e-6,
                        "block {}: {} -> {}", block, x, y);
                }
                let q = &out[block * 34 + 2..(block + 1) * 34];
                if amax > 0.0 {
                    prop_assert!(q.iter().any(|&b| (b as i8).unsigned_abs() == 127));
                }
            }
        }
    }
}
