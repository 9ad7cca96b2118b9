//! FLAC encoding (lossless, 16-bit mono), as a stream: the `fLaC` marker and STREAMINFO go
//! first, with the total length and MD5 left "unknown" as the format allows, then one frame
//! per 4,096 samples as soon as they are there; `finish` writes the shorter last frame.
//!
//! Each frame's one subframe is the cheapest of: constant, FLAC's fixed predictors of order
//! 0 to 4 with Rice-coded residuals (partitioned, parameter chosen per partition), or
//! verbatim. No LPC: speech compresses to about half with the fixed predictors already, and
//! they cost next to nothing to search.

use std::ops::Range;

use super::{AudioError, pcm};

/// Samples per frame (all frames but the last).
const BLOCK: usize = 4_096;
/// The largest Rice parameter of FLAC's 4-bit parameter method (15 means "escape").
const MAX_RICE: u32 = 14;
/// Partitions per frame at most: 2^8 (16 samples each at the full block).
const MAX_PARTITION_ORDER: u32 = 8;

/// A mono 16-bit FLAC stream at a fixed sample rate.
#[derive(Debug)]
pub struct FlacEncoder {
    sample_rate: u32,
    pending: Vec<i16>,
    frames: u64,
    header_sent: bool,
}

impl FlacEncoder {
    /// `sample_rate` is any rate FLAC can state (1 Hz to 655,350 Hz).
    pub fn new(sample_rate: u32) -> Result<Self, AudioError> {
        if !(1..=655_350).contains(&sample_rate) {
            return Err(AudioError::UnsupportedRate(sample_rate));
        }
        Ok(Self {
            sample_rate,
            pending: Vec::new(),
            frames: 0,
            header_sent: false,
        })
    }

    /// Encode more samples (f32 in [-1, 1]); returns the stream header the first time and
    /// every whole frame completed so far.
    pub fn encode(&mut self, samples: &[f32]) -> Result<Vec<u8>, AudioError> {
        let mut out = self.header();
        self.pending.extend(pcm::f32_to_i16(samples));
        let whole = self.pending.len() / BLOCK * BLOCK;
        for block in self.pending[..whole].chunks(BLOCK) {
            out.extend(frame(block, self.frames, self.sample_rate));
            self.frames += 1;
        }
        self.pending.drain(..whole);
        Ok(out)
    }

    /// The last, shorter frame (and the header, for a stream that never had audio).
    pub fn finish(mut self) -> Result<Vec<u8>, AudioError> {
        let mut out = self.header();
        if !self.pending.is_empty() {
            out.extend(frame(&self.pending, self.frames, self.sample_rate));
        }
        Ok(out)
    }

    fn header(&mut self) -> Vec<u8> {
        if std::mem::replace(&mut self.header_sent, true) {
            return Vec::new();
        }
        let mut w = Bits::default();
        w.bytes.extend(b"fLaC");
        w.put(1, 1); // the last metadata block
        w.put(0, 7); // STREAMINFO
        w.put(34, 24);
        w.put(BLOCK as u64, 16); // minimum block size
        w.put(BLOCK as u64, 16); // maximum block size
        w.put(0, 24); // minimum frame size: unknown
        w.put(0, 24); // maximum frame size: unknown
        w.put(self.sample_rate.into(), 20);
        w.put(0, 3); // one channel
        w.put(15, 5); // 16 bits per sample
        w.put(0, 36); // total samples: unknown (a stream)
        for _ in 0..4 {
            w.put(0, 32); // MD5: not computed
        }
        w.bytes
    }
}

/// A whole clip as one FLAC file.
pub fn encode(audio: &super::MonoAudio) -> Result<Vec<u8>, AudioError> {
    let mut encoder = FlacEncoder::new(audio.sample_rate)?;
    let mut out = encoder.encode(&audio.samples)?;
    out.extend(encoder.finish()?);
    Ok(out)
}

/// One frame: header, one subframe, padding to a byte, CRC-16.
fn frame(block: &[i16], number: u64, sample_rate: u32) -> Vec<u8> {
    let mut w = Bits::default();
    w.put(0b11_1111_1111_1110, 14); // sync
    w.put(0, 1);
    w.put(0, 1); // fixed block size: frames are numbered
    let size_code = if block.len() == BLOCK { 12 } else { 7 };
    w.put(size_code, 4);
    w.put(rate_code(sample_rate), 4);
    w.put(0, 4); // mono
    w.put(0b100, 3); // 16 bits per sample
    w.put(0, 1);
    for b in utf8_number(number) {
        w.put(b.into(), 8);
    }
    if size_code == 7 {
        w.put(block.len() as u64 - 1, 16);
    }
    let crc = crc8(&w.bytes);
    w.put(crc.into(), 8);
    subframe(&mut w, block);
    w.align();
    let crc = crc16(&w.bytes);
    w.put(crc.into(), 16);
    w.bytes
}

/// The frame header's sample-rate code; 0 ("as in STREAMINFO") for the rates without one.
fn rate_code(rate: u32) -> u64 {
    match rate {
        88_200 => 1,
        176_400 => 2,
        192_000 => 3,
        8_000 => 4,
        16_000 => 5,
        22_050 => 6,
        24_000 => 7,
        32_000 => 8,
        44_100 => 9,
        48_000 => 10,
        96_000 => 11,
        _ => 0,
    }
}

/// A frame number in FLAC's UTF-8-like coding (up to 36 bits).
fn utf8_number(n: u64) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    // With `len` bytes the number has 5 * len + 1 bits.
    let len = (2..=7u32).find(|len| n < 1 << (5 * len + 1)).unwrap_or(7);
    let mut out = vec![0u8; len as usize];
    let mut rest = n;
    for b in out[1..].iter_mut().rev() {
        *b = 0x80 | (rest & 0x3F) as u8;
        rest >>= 6;
    }
    out[0] = (0xFF00u16 >> len) as u8 | rest as u8;
    out
}

/// The cheapest subframe for `block`.
fn subframe(w: &mut Bits, block: &[i16]) {
    if block.iter().all(|&s| s == block[0]) {
        w.put(0, 8); // CONSTANT
        w.put(block[0] as u16 as u64, 16);
        return;
    }
    let verbatim = 16 * block.len() as u64;
    let best = (0..=4usize)
        .filter(|&order| order < block.len())
        .map(|order| {
            let residual = residual(block, order);
            let plan = rice_plan(&residual, order, block.len());
            (order, residual, plan)
        })
        .min_by_key(|(order, _, plan)| 16 * *order as u64 + plan.bits);
    match best {
        Some((order, residual, plan)) if 16 * order as u64 + plan.bits < verbatim => {
            w.put(0b1000 | order as u64, 7); // zero pad bit, FIXED (0b001xxx) of this order
            w.put(0, 1); // no wasted bits
            for &s in &block[..order] {
                w.put(s as u16 as u64, 16);
            }
            write_residual(w, &residual, order, &plan);
        }
        _ => {
            w.put(0b10, 8); // VERBATIM
            for &s in block {
                w.put(s as u16 as u64, 16);
            }
        }
    }
}

/// What a fixed predictor of `order` leaves, after its `order` warm-up samples.
fn residual(x: &[i16], order: usize) -> Vec<i32> {
    let x: Vec<i32> = x.iter().map(|&s| s.into()).collect();
    (order..x.len())
        .map(|i| match order {
            0 => x[i],
            1 => x[i] - x[i - 1],
            2 => x[i] - 2 * x[i - 1] + x[i - 2],
            3 => x[i] - 3 * x[i - 1] + 3 * x[i - 2] - x[i - 3],
            _ => x[i] - 4 * x[i - 1] + 6 * x[i - 2] - 4 * x[i - 3] + x[i - 4],
        })
        .collect()
}

/// How a residual is Rice-coded: the partition order, each partition's parameter, and the
/// bits all that takes (the 6 of method and order included).
#[derive(Debug)]
struct RicePlan {
    partition_order: u32,
    params: Vec<u32>,
    bits: u64,
}

fn zigzag(r: i32) -> u64 {
    ((r << 1) ^ (r >> 31)) as u32 as u64
}

/// The cheapest partition order and parameters for `residual` (of a block of `len` samples
/// whose first `order` are warm-up).
fn rice_plan(residual: &[i32], order: usize, len: usize) -> RicePlan {
    let folded: Vec<u64> = residual.iter().map(|&r| zigzag(r)).collect();
    (0..=MAX_PARTITION_ORDER)
        .take_while(|&p| len.is_multiple_of(1 << p) && len >> p > order)
        .map(|p| {
            let mut params = Vec::new();
            let mut bits = 6u64;
            for range in partitions(len, order, p) {
                let (k, cost) = best_param(&folded[range]);
                params.push(k);
                bits += 4 + cost;
            }
            RicePlan {
                partition_order: p,
                params,
                bits,
            }
        })
        .min_by_key(|plan| plan.bits)
        .unwrap_or(RicePlan {
            partition_order: 0,
            params: vec![0],
            bits: u64::MAX / 2,
        })
}

/// The Rice parameter that codes `part` in the fewest bits, and those bits.
fn best_param(part: &[u64]) -> (u32, u64) {
    let cost = |k: u32| part.iter().map(|&u| (u >> k) + 1 + k as u64).sum::<u64>();
    let sum: u64 = part.iter().sum();
    let mean = sum / part.len().max(1) as u64;
    let guess = (64 - mean.leading_zeros()).min(MAX_RICE);
    (guess.saturating_sub(2)..=(guess + 1).min(MAX_RICE))
        .map(|k| (k, cost(k)))
        .min_by_key(|&(_, bits)| bits)
        .unwrap_or((0, cost(0)))
}

fn write_residual(w: &mut Bits, residual: &[i32], order: usize, plan: &RicePlan) {
    w.put(0, 2); // Rice coding with 4-bit parameters
    w.put(plan.partition_order.into(), 4);
    let parts = partitions(residual.len() + order, order, plan.partition_order);
    for (range, &k) in parts.zip(&plan.params) {
        w.put(k.into(), 4);
        for &r in &residual[range] {
            let u = zigzag(r);
            w.unary(u >> k);
            w.put(u, k);
        }
    }
}

/// Where each of the 2^`p` partitions of a block of `len` samples lies in its residual (the
/// first partition is `order` warm-up samples shorter).
fn partitions(len: usize, order: usize, p: u32) -> impl Iterator<Item = Range<usize>> {
    let size = len >> p;
    (0..1usize << p).map(move |i| {
        let start = (i * size).saturating_sub(order);
        start..(i + 1) * size - order
    })
}

/// Bits written most significant first.
#[derive(Debug, Default)]
struct Bits {
    bytes: Vec<u8>,
    acc: u64,
    held: u32,
}

impl Bits {
    /// The low `n` bits of `value`.
    fn put(&mut self, value: u64, n: u32) {
        if n > 32 {
            self.put(value >> 32, n - 32);
            self.put(value, 32);
            return;
        }
        self.acc = (self.acc << n) | (value & ((1 << n) - 1));
        self.held += n;
        while self.held >= 8 {
            self.held -= 8;
            self.bytes.push((self.acc >> self.held) as u8);
        }
    }

    /// `q` zeros and a one.
    fn unary(&mut self, mut q: u64) {
        while q >= 32 {
            self.put(0, 32);
            q -= 32;
        }
        self.put(1, q as u32 + 1);
    }

    fn align(&mut self) {
        if self.held > 0 {
            self.put(0, 8 - self.held);
        }
    }
}

fn crc8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |mut crc, &b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::audio::decode::decode;

    /// Encode `samples` in pieces of `piece` as a stream would, then decode with symphonia's
    /// FLAC decoder (not ours): lossless means the same 16-bit samples back.
    fn round_trip(samples: &[i16], piece: usize, rate: u32) -> (Vec<u8>, Vec<i16>) {
        let f32s = pcm::i16_to_f32(samples);
        let mut enc = FlacEncoder::new(rate).unwrap();
        let mut bytes = Vec::new();
        for chunk in f32s.chunks(piece.max(1)) {
            bytes.extend(enc.encode(chunk).unwrap());
        }
        bytes.extend(enc.finish().unwrap());
        let back = decode(&bytes, Some("flac")).unwrap();
        assert_eq!(back.sample_rate, rate);
        (bytes, pcm::f32_to_i16(&back.samples))
    }

    fn speech_like(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / 24_000.0;
                let env = (t * 3.0 * std::f32::consts::TAU).sin().abs();
                let s = 0.5 * (t * 180.0 * std::f32::consts::TAU).sin()
                    + 0.2 * (t * 720.0 * std::f32::consts::TAU).sin();
                (env * s * 20_000.0) as i16
            })
            .collect()
    }

    #[test]
    fn speech_comes_back_exactly_and_smaller() {
        let samples = speech_like(24_000 * 3 + 1_234);
        let (bytes, back) = round_trip(&samples, 5_000, 24_000);
        assert_eq!(back, samples);
        assert!(
            bytes.len() < samples.len(),
            "{} bytes for {} samples",
            bytes.len(),
            samples.len()
        );
    }

    #[test]
    fn the_header_comes_first_and_frames_as_soon_as_they_are_whole() {
        let mut enc = FlacEncoder::new(24_000).unwrap();
        let first = enc.encode(&[0.1; 100]).unwrap();
        assert_eq!(first.len(), 4 + 4 + 34, "only fLaC and STREAMINFO");
        assert!(first.starts_with(b"fLaC"));
        let second = enc.encode(&[0.1; BLOCK]).unwrap();
        assert!(!second.is_empty(), "a whole block is one frame");
        assert!(
            !enc.finish().unwrap().is_empty(),
            "the rest is the last frame"
        );
        let empty = FlacEncoder::new(24_000).unwrap().finish().unwrap();
        assert_eq!(empty.len(), 42, "a stream with no audio is a valid header");
    }

    #[test]
    fn frame_numbers_use_flacs_utf8_coding() {
        assert_eq!(utf8_number(0x7F), [0x7F]);
        assert_eq!(utf8_number(0x80), [0xC2, 0x80]);
        assert_eq!(utf8_number(0x7FF), [0xDF, 0xBF]);
        assert_eq!(utf8_number(0x800), [0xE0, 0xA0, 0x80]);
        assert_eq!(utf8_number((1 << 36) - 1).len(), 7);
        assert_eq!(utf8_number((1 << 36) - 1)[0], 0xFE);
    }

    #[test]
    fn crcs_match_the_reference_values() {
        // "123456789": CRC-8 (poly 0x07) 0xF4, CRC-16/UMTS (poly 0x8005, init 0) 0xFEE8.
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(crc16(b"123456789"), 0xFEE8);
    }

    #[test]
    fn rates_without_a_code_and_out_of_range_rates() {
        let samples = speech_like(5_000);
        assert_eq!(round_trip(&samples, 5_000, 11_025).1, samples);
        assert!(FlacEncoder::new(0).is_err());
        assert!(FlacEncoder::new(700_000).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Noise, extremes, constants and short blocks all come back exactly, whichever
        /// subframe each frame picks.
        #[test]
        fn any_samples_come_back_exactly(
            samples in prop::collection::vec(
                prop_oneof![any::<i16>(), Just(i16::MIN), Just(i16::MAX), -8i16..8],
                1..9_000,
            ),
            piece in 1usize..6_000,
        ) {
            let (_, back) = round_trip(&samples, piece, 24_000);
            prop_assert_eq!(back, samples);
        }

        #[test]
        fn steady_and_ramped_signals_come_back_exactly(start in any::<i16>(), step in -40i16..40, n in 1usize..10_000) {
            let samples: Vec<i16> = (0..n).map(|i| start.wrapping_add(step.wrapping_mul((i % 700) as i16))).collect();
            let (_, back) = round_trip(&samples, 4_096, 48_000);
            prop_assert_eq!(back, samples);
        }
    }
}
