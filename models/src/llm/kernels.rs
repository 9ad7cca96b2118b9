//! The forward pass's own CPU loops for everything but the matrix products: RMS norm,
//! rotary embedding, causal attention over a token-major KV cache, SwiGLU and the residual
//! add.
//!
//! Done as candle ops these took ~15 ops a layer, each a pass over memory, and candle runs
//! large elementwise ops on its own thread pool, whose worker then spins for a while: on two
//! cores it took a core from the next gemm. Here each is one pass, on rayon (as the gemm is)
//! where there are enough rows, and the loops are compiled for AVX2 where the CPU has it.

use std::sync::Mutex;

use rayon::prelude::*;

/// Rows from which a kernel splits its work across threads.
const PARALLEL_ROWS: usize = 4;

/// Cached positions from which decoding splits one position's heads across threads.
const SPLIT_HEADS_FROM: usize = 64;

/// A function whose body is compiled twice: for AVX2 and FMA, used where the CPU has them
/// (the `#[inline(always)]` loops it calls are compiled into that copy), and as is.
macro_rules! multiversion {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && !portable_forced()
                {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// Tests run the portable copies on a machine with AVX2 too (see `tests::on_both_paths`).
#[cfg(test)]
static FORCE_PORTABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[inline(always)]
#[allow(dead_code)] // not read on targets without the AVX2 copy
fn portable_forced() -> bool {
    #[cfg(test)]
    return FORCE_PORTABLE.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(test))]
    false
}

/// `rows` chunks of `width` of `out`, with their index, on rayon when there are enough.
fn for_rows(out: &mut [f32], width: usize, each: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let rows = out.len() / width.max(1);
    if rows >= PARALLEL_ROWS {
        out.par_chunks_mut(width)
            .enumerate()
            .for_each(|(i, row)| each(i, row));
    } else {
        for (i, row) in out.chunks_mut(width).enumerate() {
            each(i, row);
        }
    }
}

/// Lanes the reductions keep apart, so that they vectorize (f32 addition is not
/// associative, so the compiler will not split one sum by itself).
const LANES: usize = 16;

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn sum_of_squares(a: &[f32]) -> f32 {
    dot(a, a)
}

#[inline(always)]
fn sum_of(a: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = a.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn max_of(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = a.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    for c in chunks {
        for l in 0..LANES {
            acc[l] = acc[l].max(c[l]);
        }
    }
    acc.iter().fold(tail, |m, v| m.max(*v))
}

/// e^x to within a few units in the last place, for x in [-87, 88] (clamped there), in
/// operations that vectorize: 2^n by the exponent bits, and a degree-6 polynomial (Cephes'
/// `expf`) on the remainder.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 × 2^23: adding it rounds to an integer, which lands in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let exponent = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((exponent + 127) as u32) << 23)
}

/// `out = x / rms(x) * weight`, row by row (`x` and `out` are `[rows, weight.len()]`).
pub(super) fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let width = weight.len();
    for_rows(out, width, |i, row| {
        norm_row(&x[i * width..][..width], weight, eps, row);
    });
}

multiversion! {
    fn norm_row(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
        let scale = 1.0 / (sum_of_squares(x) / x.len() as f32 + eps).sqrt();
        for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
            *o = v * scale * w;
        }
    }
}

multiversion! {
    /// `x += y`.
    pub(super) fn add(x: &mut [f32], y: &[f32]) {
        for (a, b) in x.iter_mut().zip(y) {
            *a += b;
        }
    }
}

/// SwiGLU: `gate_up` is `[rows, 2 × width]` (gate, then up); `out[r] = silu(gate) × up`.
pub(super) fn swiglu(gate_up: &[f32], width: usize, out: &mut [f32]) {
    for_rows(out, width, |i, row| {
        swiglu_row(&gate_up[i * 2 * width..][..2 * width], row);
    });
}

multiversion! {
    fn swiglu_row(gate_up: &[f32], out: &mut [f32]) {
        let (gate, up) = gate_up.split_at(out.len());
        for ((o, g), u) in out.iter_mut().zip(gate).zip(up) {
            *o = g * u / (1.0 + exp(-g));
        }
    }
}

/// The shape attention works on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl Heads {
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }

    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// One token's query, key and value, side by side.
    pub fn qkv_width(&self) -> usize {
        self.q_width() + 2 * self.kv_width()
    }
}

/// Rotate query and key pairs `(2d, 2d + 1)` of each row of `qkv` (`[rows, qkv_width]`,
/// row `t` at position `first + t`) by `position × frequency d`: `cos` and `sin` are
/// `[positions, head_dim / 2]`. The values are left as they are.
pub(super) fn rope(qkv: &mut [f32], h: Heads, first: usize, cos: &[f32], sin: &[f32]) {
    let half = h.head_dim / 2;
    let rotated = h.q_width() + h.kv_width();
    for_rows(qkv, h.qkv_width(), |t, row| {
        let at = (first + t) * half;
        rope_row(
            &mut row[..rotated],
            h.head_dim,
            &cos[at..at + half],
            &sin[at..at + half],
        );
    });
}

multiversion! {
    fn rope_row(row: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32]) {
        for head in row.chunks_exact_mut(head_dim) {
            for ((pair, c), s) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * c - x1 * s;
                pair[1] = x0 * s + x1 * c;
            }
        }
    }
}

/// Causal attention of the rows of `qkv` (positions `past..past + rows`) over the cache
/// (`keys` and `values`: `[past + rows, kv_width]`, the new rows already appended); each
/// query head reads the key/value head of its group. `out` is `[rows, q_width]`.
pub(super) fn attention(
    qkv: &[f32],
    keys: &[f32],
    values: &[f32],
    h: Heads,
    past: usize,
    out: &mut [f32],
) {
    let q_width = h.q_width();
    if out.len() == q_width && past >= SPLIT_HEADS_FROM {
        // Decoding one position: its heads go to candle's thread pool, whose worker is
        // spinning between the Q8_0 products around this anyway (rayon's would compete).
        let heads: Vec<Mutex<&mut [f32]>> = out.chunks_mut(h.head_dim).map(Mutex::new).collect();
        candle_core::utils::barrier_pool().execute_chunked(h.heads, |range| {
            for head in range {
                let mut o = heads[head].lock().unwrap_or_else(|e| e.into_inner());
                let visible = (past + 1) * h.kv_width();
                attend_head(qkv, &keys[..visible], &values[..visible], h, head, &mut o);
            }
        });
        return;
    }
    for_rows(out, q_width, |t, row| {
        let query = &qkv[t * h.qkv_width()..][..q_width];
        let visible = (past + t + 1) * h.kv_width();
        for (head, o) in row.chunks_exact_mut(h.head_dim).enumerate() {
            attend_head(query, &keys[..visible], &values[..visible], h, head, o);
        }
    });
}

multiversion! {
    /// One query head (of `query`, a position's query heads) over the visible keys and
    /// values of its group.
    fn attend_head(
        query: &[f32],
        keys: &[f32],
        values: &[f32],
        h: Heads,
        head: usize,
        out: &mut [f32],
    ) {
        let (hd, kv_width) = (h.head_dim, h.kv_width());
        let q = &query[head * hd..][..hd];
        let kv = head / (h.heads / h.kv_heads) * hd;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut weights: Vec<f32> = keys
            .chunks_exact(kv_width)
            .map(|k| dot(q, &k[kv..kv + hd]) * scale)
            .collect();
        let max = max_of(&weights);
        for w in weights.iter_mut() {
            *w = exp(*w - max);
        }
        let total = sum_of(&weights);
        out.fill(0.0);
        for (w, v) in weights.iter().zip(values.chunks_exact(kv_width)) {
            let w = w / total;
            for (a, v) in out.iter_mut().zip(&v[kv..kv + hd]) {
                *a += w * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Serializes the tests that choose a path; others may run either copy meanwhile, which
    /// computes the same.
    static PATH: Mutex<()> = Mutex::new(());

    /// `run` twice: with the copies the CPU picks (AVX2 where it has it), then with the
    /// portable ones, which CPUs without AVX2 and FMA run.
    fn on_both_paths<E>(mut run: impl FnMut() -> Result<(), E>) -> Result<(), E> {
        use std::sync::atomic::Ordering::Relaxed;
        let _only_us = PATH.lock().unwrap_or_else(|e| e.into_inner());
        for portable in [false, true] {
            FORCE_PORTABLE.store(portable, Relaxed);
            let result = run();
            FORCE_PORTABLE.store(false, Relaxed);
            result?;
        }
        Ok(())
    }

    fn close(a: &[f32], b: &[f64], tolerance: f64) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            prop_assert!(
                (f64::from(*x) - y).abs() <= tolerance * (1.0 + y.abs()),
                "{} against {}",
                x,
                y
            );
        }
        Ok(())
    }

    /// Attention by the book, in f64: scores, softmax over the visible keys, weighted sum.
    fn attention_reference(
        qkv: &[f32],
        keys: &[f32],
        values: &[f32],
        h: Heads,
        past: usize,
    ) -> Vec<f64> {
        let rows = qkv.len() / h.qkv_width();
        let mut out = vec![0f64; rows * h.q_width()];
        for t in 0..rows {
            for head in 0..h.heads {
                let kv = head / (h.heads / h.kv_heads) * h.head_dim;
                let q = &qkv[t * h.qkv_width() + head * h.head_dim..][..h.head_dim];
                let scores: Vec<f64> = (0..=past + t)
                    .map(|j| {
                        let k = &keys[j * h.kv_width() + kv..][..h.head_dim];
                        let s: f64 = q
                            .iter()
                            .zip(k)
                            .map(|(a, b)| f64::from(*a) * f64::from(*b))
                            .sum();
                        s / (h.head_dim as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = e.iter().sum();
                for (j, w) in e.iter().enumerate() {
                    for d in 0..h.head_dim {
                        out[t * h.q_width() + head * h.head_dim + d] +=
                            w / total * f64::from(values[j * h.kv_width() + kv + d]);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_the_true_value() {
        let mut x = -87.0f32;
        while x <= 88.0 {
            let (got, want) = (f64::from(exp(x)), f64::from(x).exp());
            assert!(
                ((got - want) / want).abs() < 3e-7,
                "exp({x}) = {got}, not {want}"
            );
            x += 0.0137;
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1e9), exp(-87.0));
    }

    #[test]
    fn swiglu_is_silu_of_the_gate_times_up() {
        let gate_up = [
            1.0, -2.0, 3.0, 0.5, 0.0, 10.0, -100.0, 4.0, 2.0, 2.0, 1.0, -1.0,
        ];
        let silu = |g: f64| g / (1.0 + (-g).exp());
        let want: Vec<f64> = gate_up
            .chunks(6)
            .flat_map(|r| (0..3).map(move |i| silu(f64::from(r[i])) * f64::from(r[3 + i])))
            .collect();
        on_both_paths(|| {
            let mut out = [0f32; 6];
            swiglu(&gate_up, 3, &mut out);
            close(&out, &want, 1e-6)
        })
        .unwrap();
    }

    #[test]
    fn add_adds_in_place() {
        let y: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        on_both_paths(|| {
            let mut x: Vec<f32> = (0..37).map(|i| 1.0 + i as f32).collect();
            add(&mut x, &y);
            let want: Vec<f64> = (0..37).map(|i| 1.0 + f64::from(i) * 1.5 - 3.0).collect();
            close(&x, &want, 1e-6)
        })
        .unwrap();
    }

    #[test]
    fn rope_rotates_pairs_and_leaves_values() {
        let h = Heads {
            heads: 1,
            kv_heads: 1,
            head_dim: 2,
        };
        // One position, angle 1 at position 1 (tables for positions 0 and 1).
        let (cos, sin) = ([1.0, 1f32.cos()], [0.0, 1f32.sin()]);
        let (c, s) = (1f64.cos(), 1f64.sin());
        on_both_paths(|| {
            let mut qkv = [1.0, 0.0, 0.0, 1.0, 7.0, 8.0];
            rope(&mut qkv, h, 1, &cos, &sin);
            close(&qkv, &[c, s, -s, c, 7.0, 8.0], 1e-6)
        })
        .unwrap();
    }

    proptest! {
        #[test]
        fn attention_matches_the_textbook(
            heads_per_kv in 1usize..4,
            kv_heads in 1usize..3,
            head_dim in prop::sample::select(vec![2usize, 8, 20, 64]),
            past in prop::sample::select(vec![0usize, 1, 5, 11, 63, 64, 90]),
            rows in 1usize..7,
            seed in any::<u64>(),
        ) {
            let h = Heads { heads: heads_per_kv * kv_heads, kv_heads, head_dim };
            let mut state = seed | 1;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 2001) as f32 / 500.0 - 2.0
            };
            let qkv: Vec<f32> = (0..rows * h.qkv_width()).map(|_| next()).collect();
            let keys: Vec<f32> = (0..(past + rows) * h.kv_width()).map(|_| next()).collect();
            let values: Vec<f32> = (0..(past + rows) * h.kv_width()).map(|_| next()).collect();
            let want = attention_reference(&qkv, &keys, &values, h, past);
            on_both_paths(|| {
                let mut out = vec![0f32; rows * h.q_width()];
                attention(&qkv, &keys, &values, h, past, &mut out);
                close(&out, &want, 1e-5)
            })?;
        }

        #[test]
        fn rms_norm_matches_the_definition(
            x in prop::collection::vec(-50f32..50.0, 1..200),
            rows in 1usize..6,
        ) {
            let width = x.len();
            let x: Vec<f32> = (0..rows).flat_map(|r| x.iter().map(move |v| v * (r + 1) as f32)).collect();
            let weight: Vec<f32> = (0..width).map(|i| 0.5 + i as f32 / 100.0).collect();
            let want: Vec<f64> = x
                .chunks(width)
                .flat_map(|row| {
                    let ms = row.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / width as f64;
                    let scale = 1.0 / (ms + 1e-5).sqrt();
                    row.iter().zip(&weight).map(move |(v, w)| f64::from(*v) * scale * f64::from(*w)).collect::<Vec<_>>()
                })
                .collect();
            on_both_paths(|| {
                let mut out = vec![0f32; x.len()];
                rms_norm(&x, &weight, 1e-5, &mut out);
                close(&out, &want, 1e-5)
            })?;
        }
    }
}
