//! The llama forward pass (SmolLM2 is llama-architecture), written over candle ops so that
//! one KV cache serves two copies of each weight matrix:
//!
//! - f32 for prompts: many rows at once, where gemm is compute-bound and fastest;
//! - Q8_0 for decoding one token at a time, where reading the weights is the whole cost and
//!   Q8_0 reads a quarter of the bytes (candle's AVX2 Q8_0 kernel is picked at run time).
//!
//! The query, key and value projections are one matrix, and so are the MLP's gate and up:
//! one product each instead of three and two.
//!
//! A cache also remembers which tokens it holds: a prompt that starts like the previous one
//! (the same persona, the conversation so far) only computes its new tail, and a cache's
//! start can be copied into another (a fork). The weights are shared; each [`KvCache`] is one
//! sequence (the worker keeps several for live conversations and one for background work, so
//! a summary never evicts a live conversation).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Tensor};

use super::LlmError;

type Result<T> = std::result::Result<T, LlmError>;

/// Rows up to this many go through the Q8_0 weights; longer runs through f32 gemm.
const QUANTIZED_ROWS: usize = 2;

fn fail(e: impl std::fmt::Display) -> LlmError {
    LlmError::Inference(e.to_string())
}

/// The model's shape, from the GGUF metadata.
#[derive(Debug, Clone, Copy)]
struct Shape {
    layers: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f64,
    rope_base: f32,
}

/// A weight matrix (`[out, in]`) in both precisions.
struct Linear {
    full: QMatMul,
    q8: QMatMul,
}

impl Linear {
    fn new(weight: &Tensor) -> Result<Self> {
        let q8 = QTensor::quantize(weight, GgmlDType::Q8_0).map_err(fail)?;
        Ok(Self {
            full: QMatMul::Tensor(weight.clone()),
            q8: QMatMul::QTensor(std::sync::Arc::new(q8)),
        })
    }

    /// `x` is `[.., rows, in]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.elem_count() / x.dim(candle_core::D::Minus1).map_err(fail)?.max(1);
        let w = if rows <= QUANTIZED_ROWS {
            &self.q8
        } else {
            &self.full
        };
        w.forward(x).map_err(fail)
    }
}

struct Layer {
    attn_norm: Tensor,
    /// Query, key and value projections stacked: `[(heads + 2 kv_heads) × head_dim, hidden]`.
    qkv: Linear,
    o: Linear,
    ffn_norm: Tensor,
    /// Gate and up projections stacked: `[2 × intermediate, hidden]`.
    gate_up: Linear,
    down: Linear,
}

/// Positions a new cache has room for; it doubles as its sequence grows (up to the context),
/// so an idle or short sequence holds little memory.
const FIRST_ALLOCATION: usize = 256;

/// The keys and values of one token sequence, per layer (`[1, kv_heads, allocated,
/// head_dim]`, filled up to `cached.len()`), and which tokens they are.
pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    cached: Vec<u32>,
    /// The logits after the last prompt (its length and them): asking the same prompt
    /// again answers from here, with the same numbers as the first time.
    prompt_logits: Option<(usize, Tensor)>,
}

impl KvCache {
    /// Forget the sequence (after a failure its contents no longer match `cached`).
    pub fn clear(&mut self) {
        self.cached.clear();
        self.prompt_logits = None;
    }

    /// The tokens whose keys and values it holds.
    pub fn tokens(&self) -> &[u32] {
        &self.cached
    }

    /// The length of the last prompt run on it (0 when none or after a failure): what it
    /// holds past that are the tokens generated after it.
    pub fn last_prompt(&self) -> usize {
        self.prompt_logits.as_ref().map_or(0, |(len, _)| *len)
    }

    fn allocated(&self) -> usize {
        self.k.first().map_or(0, |k| k.dims()[2])
    }
}

pub struct Llama {
    shape: Shape,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    /// Only the last position's logits are computed: one row, so always the Q8_0 copy.
    lm_head: Linear,
    cos: Tensor,
    sin: Tensor,
    capacity: usize,
}

fn meta_u32(ct: &gguf_file::Content, key: &str) -> Result<usize> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_u32().ok())
        .map(|v| v as usize)
        .ok_or_else(|| LlmError::Model(format!("GGUF metadata has no {key}")))
}

fn meta_f32(ct: &gguf_file::Content, key: &str, default: f32) -> f32 {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_f32().ok())
        .unwrap_or(default)
}

impl Llama {
    /// Load a llama GGUF; `capacity` is the most tokens the cache holds (the context).
    pub fn load<R: std::io::Read + std::io::Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        capacity: usize,
    ) -> Result<Self> {
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(LlmError::Model(format!(
                "architecture {arch:?}: only llama models are supported"
            )));
        }
        let hidden = meta_u32(ct, "llama.embedding_length")?;
        let heads = meta_u32(ct, "llama.attention.head_count")?;
        let shape = Shape {
            layers: meta_u32(ct, "llama.block_count")?,
            heads,
            kv_heads: meta_u32(ct, "llama.attention.head_count_kv").unwrap_or(heads),
            head_dim: hidden / heads.max(1),
            eps: f64::from(meta_f32(ct, "llama.attention.layer_norm_rms_epsilon", 1e-5)),
            rope_base: meta_f32(ct, "llama.rope.freq_base", 10_000.0),
        };
        if heads == 0
            || !hidden.is_multiple_of(heads)
            || shape.kv_heads == 0
            || !heads.is_multiple_of(shape.kv_heads)
        {
            return Err(LlmError::Model(format!(
                "unsupported head layout {shape:?}"
            )));
        }
        let dev = Device::Cpu;
        let mut tensor = |name: &str| -> Result<Tensor> {
            ct.tensor(reader, name, &dev)
                .and_then(|q| q.dequantize(&dev))
                .map_err(|e| LlmError::Model(format!("tensor {name}: {e}")))
        };
        let embed = tensor("token_embd.weight")?;
        // SmolLM2 ties the output projection to the embedding.
        let lm_head = match ct.tensor_infos.contains_key("output.weight") {
            true => tensor("output.weight")?,
            false => embed.clone(),
        };
        let lm_head = Linear::new(&lm_head)?;
        let norm = tensor("output_norm.weight")?;
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let attn_norm = tensor(&format!("blk.{i}.attn_norm.weight"))?;
            let ffn_norm = tensor(&format!("blk.{i}.ffn_norm.weight"))?;
            let mut stacked = |parts: &[&str]| -> Result<Linear> {
                let parts = parts
                    .iter()
                    .map(|part| tensor(&format!("blk.{i}.{part}.weight")))
                    .collect::<Result<Vec<_>>>()?;
                Linear::new(&Tensor::cat(&parts, 0).map_err(fail)?)
            };
            layers.push(Layer {
                qkv: stacked(&["attn_q", "attn_k", "attn_v"])?,
                o: stacked(&["attn_output"])?,
                gate_up: stacked(&["ffn_gate", "ffn_up"])?,
                down: stacked(&["ffn_down"])?,
                attn_norm,
                ffn_norm,
            });
        }
        let (cos, sin) = rope_tables(shape.head_dim, shape.rope_base, capacity)?;
        Ok(Self {
            shape,
            embed,
            layers,
            norm,
            lm_head,
            cos,
            sin,
            capacity,
        })
    }

    /// Run a whole prompt, reusing the cache for the part it shares with what the cache
    /// holds. Returns the logits for the next token and how many prompt tokens came from
    /// the cache.
    pub fn prompt(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<(Tensor, usize)> {
        if tokens.is_empty() || tokens.len() > self.capacity {
            return Err(LlmError::Inference(format!(
                "prompt of {} tokens (the context holds {})",
                tokens.len(),
                self.capacity
            )));
        }
        let shared = cache
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        if let Some((len, logits)) = &cache.prompt_logits
            && *len == tokens.len()
            && shared == tokens.len()
        {
            let logits = logits.clone();
            cache.cached.truncate(shared);
            return Ok((logits, shared));
        }
        // At least the last token runs, to produce its logits.
        let keep = shared.min(tokens.len() - 1);
        cache.cached.truncate(keep);
        cache.prompt_logits = None;
        let logits = self.run(cache, &tokens[keep..])?;
        cache.prompt_logits = Some((tokens.len(), logits.clone()));
        Ok((logits, keep))
    }

    /// Feed one generated token; returns the logits for the one after it.
    pub fn step(&self, cache: &mut KvCache, token: u32) -> Result<Tensor> {
        if cache.cached.len() >= self.capacity {
            return Err(LlmError::Inference("the context is full".into()));
        }
        self.run(cache, &[token])
    }

    /// A new, empty cache for one sequence. It grows with the sequence: ~46 KB per token
    /// for SmolLM2 (30 layers × keys and values × 3 heads × 64 × f32), ~94 MB at 2,048.
    pub fn new_cache(&self) -> Result<KvCache> {
        let s = self.shape;
        Ok(KvCache {
            k: (0..s.layers)
                .map(|_| self.zeros(0))
                .collect::<Result<_>>()?,
            v: (0..s.layers)
                .map(|_| self.zeros(0))
                .collect::<Result<_>>()?,
            cached: Vec::new(),
            prompt_logits: None,
        })
    }

    fn zeros(&self, positions: usize) -> Result<Tensor> {
        let s = self.shape;
        Tensor::zeros(
            (1, s.kv_heads, positions, s.head_dim),
            DType::F32,
            &Device::Cpu,
        )
        .map_err(fail)
    }

    /// Make room in `cache` for `positions` tokens (at most the context), keeping what it
    /// holds: the storage doubles, so a sequence is copied O(log n) times as it grows.
    fn reserve(&self, cache: &mut KvCache, positions: usize) -> Result<()> {
        let allocated = cache.allocated();
        if positions <= allocated {
            return Ok(());
        }
        let grown = positions
            .max(2 * allocated)
            .max(FIRST_ALLOCATION)
            .min(self.capacity);
        let held = cache.cached.len();
        for t in cache.k.iter_mut().chain(cache.v.iter_mut()) {
            let bigger = self.zeros(grown)?;
            copy_start(t, &bigger, held)?;
            *t = bigger;
        }
        Ok(())
    }

    /// Make `into` hold the first `len` tokens of `from` (copying their keys and values), so
    /// a prompt sharing that start continues there while `from` keeps its own sequence.
    pub fn fork(&self, from: &KvCache, into: &mut KvCache, len: usize) -> Result<()> {
        let len = len.min(from.cached.len());
        into.clear();
        self.reserve(into, len)?;
        let pairs = from.k.iter().zip(&into.k).chain(from.v.iter().zip(&into.v));
        for (src, dst) in pairs {
            copy_start(src, dst, len)?;
        }
        into.cached.extend_from_slice(&from.cached[..len]);
        into.prompt_logits = from
            .prompt_logits
            .as_ref()
            .filter(|(prompt, _)| *prompt <= len)
            .cloned();
        Ok(())
    }

    /// Forward `tokens` at the cache's end; on failure the cache is emptied.
    fn run(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Tensor> {
        let result = self
            .reserve(cache, cache.cached.len() + tokens.len())
            .and_then(|()| self.forward(cache, tokens));
        match &result {
            Ok(_) => cache.cached.extend_from_slice(tokens),
            Err(_) => cache.clear(),
        }
        result
    }

    fn forward(&self, cache: &KvCache, tokens: &[u32]) -> Result<Tensor> {
        let n = tokens.len();
        let past = cache.cached.len();
        let s = self.shape;
        let ids = Tensor::new(tokens, &Device::Cpu).map_err(fail)?;
        let mut x = self
            .embed
            .index_select(&ids, 0)
            .and_then(|t| t.unsqueeze(0))
            .map_err(fail)?;
        let cos = self.cos.narrow(0, past, n).map_err(fail)?;
        let sin = self.sin.narrow(0, past, n).map_err(fail)?;
        let mask = causal_mask(n, past, s.heads / s.kv_heads)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, s.eps as f32).map_err(fail)?;
            let kv = (&cache.k[i], &cache.v[i]);
            let attn = attention(layer, kv, &h, s, past, (&cos, &sin), mask.as_ref())?;
            x = (x + attn).map_err(fail)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, s.eps as f32).map_err(fail)?;
            let gate_up = layer.gate_up.forward(&h)?;
            let half = gate_up.dim(2).map_err(fail)? / 2;
            let gate = gate_up.narrow(2, 0, half).and_then(|g| g.silu());
            let up = gate_up.narrow(2, half, half);
            let mlp = gate.and_then(|g| up.and_then(|u| g * u)).map_err(fail)?;
            let mlp = layer.down.forward(&mlp)?;
            x = (x + mlp).map_err(fail)?;
        }
        let last = x.narrow(1, n - 1, 1).map_err(fail)?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, s.eps as f32).map_err(fail)?;
        self.lm_head.forward(&last)?.flatten_all().map_err(fail)
    }
}

/// Copy the first `len` positions of one cache tensor into another.
fn copy_start(src: &Tensor, dst: &Tensor, len: usize) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    src.narrow(2, 0, len)
        .and_then(|t| t.contiguous())
        .and_then(|t| dst.slice_set(&t, 2, 0))
        .map_err(fail)
}

/// Self-attention of `n` new positions after `past` cached ones. Grouped-query heads are
/// folded into rows (`[kv_heads, group * n, head_dim]`), so keys and values are never
/// copied per query head.
fn attention(
    layer: &Layer,
    (k_cache, v_cache): (&Tensor, &Tensor),
    h: &Tensor,
    s: Shape,
    past: usize,
    (cos, sin): (&Tensor, &Tensor),
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let (_, n, hidden) = h.dims3().map_err(fail)?;
    let group = s.heads / s.kv_heads;
    let split = |t: Tensor, heads: usize| {
        t.reshape((1, n, heads, s.head_dim))
            .and_then(|t| t.transpose(1, 2))
            .and_then(|t| t.contiguous())
    };
    let qkv = layer.qkv.forward(h)?;
    let (q_width, kv_width) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let part = |start: usize, width: usize, heads: usize| {
        qkv.narrow(2, start, width)
            .and_then(|t| split(t, heads))
            .map_err(fail)
    };
    let q = part(0, q_width, s.heads)?;
    let k = part(q_width, kv_width, s.kv_heads)?;
    let v = part(q_width + kv_width, kv_width, s.kv_heads)?;
    // GGUF llama weights are permuted for interleaved rotary pairs.
    let q = candle_nn::rotary_emb::rope_i(&q, cos, sin).map_err(fail)?;
    let k = candle_nn::rotary_emb::rope_i(&k, cos, sin).map_err(fail)?;
    k_cache.slice_set(&k, 2, past).map_err(fail)?;
    v_cache.slice_set(&v, 2, past).map_err(fail)?;
    let total = past + n;
    let keys = k_cache.narrow(2, 0, total).map_err(fail)?;
    let values = v_cache.narrow(2, 0, total).map_err(fail)?;
    let q = q
        .reshape((1, s.kv_heads, group * n, s.head_dim))
        .map_err(fail)?;
    let scores = q
        .matmul(&keys.t().map_err(fail)?)
        .and_then(|a| a * (1.0 / (s.head_dim as f64).sqrt()))
        .map_err(fail)?;
    let scores = match mask {
        Some(mask) => scores.broadcast_add(mask).map_err(fail)?,
        None => scores,
    };
    let weights = candle_nn::ops::softmax_last_dim(&scores).map_err(fail)?;
    let out = weights
        .matmul(&values)
        .and_then(|o| o.reshape((1, s.heads, n, s.head_dim)))
        .and_then(|o| o.transpose(1, 2))
        .and_then(|o| o.reshape((1, n, hidden)))
        .map_err(fail)?;
    layer.o.forward(&out)
}

/// Additive mask for `n` new positions after `past` cached ones, rows repeated for each
/// query head of a group: position `past + i` sees keys `0..=past + i`. `None` for one row.
fn causal_mask(n: usize, past: usize, group: usize) -> Result<Option<Tensor>> {
    if n == 1 {
        return Ok(None);
    }
    let total = past + n;
    let row =
        |i: usize| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 });
    let data: Vec<f32> = (0..group).flat_map(|_| (0..n).flat_map(row)).collect();
    Tensor::from_vec(data, (group * n, total), &Device::Cpu)
        .map(Some)
        .map_err(fail)
}

/// cos/sin tables for interleaved rotary embeddings, `[positions, head_dim / 2]`.
fn rope_tables(head_dim: usize, base: f32, positions: usize) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32))
        .collect();
    let angles: Vec<f32> = (0..positions)
        .flat_map(|p| freqs.iter().map(move |f| p as f32 * f))
        .collect();
    let angles = Tensor::from_vec(angles, (positions, half), &Device::Cpu).map_err(fail)?;
    let cos = angles.cos().map_err(fail)?;
    let sin = angles.sin().map_err(fail)?;
    Ok((cos, sin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_lets_each_position_see_itself_and_the_past() {
        let mask = causal_mask(2, 1, 2).unwrap().unwrap();
        let rows: Vec<Vec<f32>> = mask.to_vec2().unwrap();
        let open = |r: &Vec<f32>| r.iter().map(|v| v.is_finite()).collect::<Vec<_>>();
        // Two query heads of a group, each with positions 1 and 2 over keys 0..3.
        assert_eq!(open(&rows[0]), [true, true, false]);
        assert_eq!(open(&rows[1]), [true, true, true]);
        assert_eq!(open(&rows[2]), [true, true, false]);
        assert_eq!(open(&rows[3]), [true, true, true]);
        assert!(causal_mask(1, 5, 3).unwrap().is_none());
    }

    #[test]
    fn rotary_tables_start_at_the_identity() {
        let (cos, sin) = rope_tables(8, 10_000.0, 3).unwrap();
        let cos: Vec<Vec<f32>> = cos.to_vec2().unwrap();
        let sin: Vec<Vec<f32>> = sin.to_vec2().unwrap();
        assert!(cos[0].iter().all(|c| (*c - 1.0).abs() < 1e-6));
        assert!(sin[0].iter().all(|s| s.abs() < 1e-6));
        assert!((sin[1][0] - 1f32.sin()).abs() < 1e-6);
    }
}
