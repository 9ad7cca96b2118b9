//! The llama forward pass (SmolLM2 is llama-architecture): candle for the matrix products,
//! our own loops (`kernels`) for everything between them, and one KV cache serving two
//! copies of each weight matrix:
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
use candle_core::{Device, Module, Tensor};

use super::LlmError;
use super::kernels::{self, Heads};

type Result<T> = std::result::Result<T, LlmError>;

/// Rows up to this many go through the Q8_0 weights; longer runs through f32 gemm.
const QUANTIZED_ROWS: usize = if option_env!("ALLF32").is_some() {
    0
} else {
    2
};

fn fail(e: impl std::fmt::Display) -> LlmError {
    LlmError::Inference(e.to_string())
}

/// The model's shape, from the GGUF metadata.
#[derive(Debug, Clone, Copy)]
struct Shape {
    layers: usize,
    heads: Heads,
    eps: f32,
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

    /// `x` is `[rows, in]`; returns `[rows, out]`.
    fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        let w = if rows <= QUANTIZED_ROWS {
            &self.q8
        } else {
            &self.full
        };
        Tensor::from_slice(x, (rows, x.len() / rows.max(1)), &Device::Cpu)
            .and_then(|x| w.forward(&x))
            .and_then(|y| y.flatten_all())
            .and_then(|y| y.to_vec1())
            .map_err(fail)
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    /// Query, key and value projections stacked: `[(heads + 2 kv_heads) × head_dim, hidden]`.
    qkv: Linear,
    o: Linear,
    ffn_norm: Vec<f32>,
    /// Gate and up projections stacked: `[2 × intermediate, hidden]`.
    gate_up: Linear,
    down: Linear,
}

/// The keys and values of one token sequence, per layer, token by token (`[tokens,
/// kv_heads × head_dim]`), and which tokens they are. Memory grows with the sequence.
pub struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    cached: Vec<u32>,
    /// The logits after the last prompt (its length and them): asking the same prompt
    /// again answers from here, with the same numbers as the first time.
    prompt_logits: Option<(usize, Vec<f32>)>,
    /// Floats per token in each of `k` and `v`.
    width: usize,
}

impl KvCache {
    /// Forget the sequence (after a failure its contents no longer match `cached`).
    pub fn clear(&mut self) {
        self.truncate(0);
        self.prompt_logits = None;
    }

    /// Keep the first `len` tokens.
    fn truncate(&mut self, len: usize) {
        self.cached.truncate(len);
        let floats = self.cached.len() * self.width;
        for t in self.k.iter_mut().chain(self.v.iter_mut()) {
            t.truncate(floats);
        }
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

    /// Room for `tokens` in all, growing by doubling but never past `capacity` tokens.
    fn reserve(&mut self, tokens: usize, capacity: usize) {
        let width = self.width;
        for t in self.k.iter_mut().chain(self.v.iter_mut()) {
            if t.capacity() < tokens * width {
                let target = tokens.max(2 * t.capacity() / width.max(1)).min(capacity);
                t.reserve_exact(target.max(tokens) * width - t.len());
            }
        }
    }
}

pub struct Llama {
    shape: Shape,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// Only the last position's logits are computed: one row, so always the Q8_0 copy.
    lm_head: Linear,
    /// Rotary tables, `[positions, head_dim / 2]`.
    cos: Vec<f32>,
    sin: Vec<f32>,
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
            heads: Heads {
                heads,
                kv_heads: meta_u32(ct, "llama.attention.head_count_kv").unwrap_or(heads),
                head_dim: hidden / heads.max(1),
            },
            eps: meta_f32(ct, "llama.attention.layer_norm_rms_epsilon", 1e-5),
            rope_base: meta_f32(ct, "llama.rope.freq_base", 10_000.0),
        };
        let kv_heads = shape.heads.kv_heads;
        if heads == 0
            || !hidden.is_multiple_of(heads)
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
            || !shape.heads.head_dim.is_multiple_of(2)
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
        let vector = |t: Tensor| t.flatten_all().and_then(|t| t.to_vec1()).map_err(fail);
        let norm = vector(tensor("output_norm.weight")?)?;
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let attn_norm = vector(tensor(&format!("blk.{i}.attn_norm.weight"))?)?;
            let ffn_norm = vector(tensor(&format!("blk.{i}.ffn_norm.weight"))?)?;
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
        let (cos, sin) = rope_tables(shape.heads.head_dim, shape.rope_base, capacity);
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
    pub fn prompt(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<(Vec<f32>, usize)> {
        if tokens.is_empty() || tokens.len() > self.capacity {
            return Err(LlmError::Inference(format!(
                "prompt of {} tokens (the context holds {})",
                tokens.len(),
                self.capacity
            )));
        }
        let shared = shared_start(&cache.cached, tokens);
        if let Some((len, logits)) = &cache.prompt_logits
            && *len == tokens.len()
            && shared == tokens.len()
        {
            let logits = logits.clone();
            cache.truncate(shared);
            return Ok((logits, shared));
        }
        // At least the last token runs, to produce its logits.
        let keep = shared.min(tokens.len() - 1);
        cache.truncate(keep);
        cache.prompt_logits = None;
        let logits = self.run(cache, &tokens[keep..])?;
        cache.prompt_logits = Some((tokens.len(), logits.clone()));
        Ok((logits, keep))
    }

    /// Feed one generated token; returns the logits for the one after it.
    pub fn step(&self, cache: &mut KvCache, token: u32) -> Result<Vec<f32>> {
        if cache.cached.len() >= self.capacity {
            return Err(LlmError::Inference("the context is full".into()));
        }
        self.run(cache, &[token])
    }

    /// A new, empty cache for one sequence. It grows with the sequence: ~46 KB per token
    /// for SmolLM2 (30 layers × keys and values × 3 heads × 64 × f32), ~94 MB at 2,048.
    pub fn new_cache(&self) -> KvCache {
        let layers = self.shape.layers;
        KvCache {
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
            cached: Vec::new(),
            prompt_logits: None,
            width: self.shape.heads.kv_width(),
        }
    }

    /// Make `into` hold the first `len` tokens of `from` (copying their keys and values), so
    /// a prompt sharing that start continues there while `from` keeps its own sequence.
    pub fn fork(&self, from: &KvCache, into: &mut KvCache, len: usize) {
        let len = len.min(from.cached.len());
        into.clear();
        into.reserve(len, self.capacity);
        let floats = len * from.width;
        let pairs = from.k.iter().zip(&mut into.k);
        for (src, dst) in pairs.chain(from.v.iter().zip(&mut into.v)) {
            dst.extend_from_slice(&src[..floats]);
        }
        into.cached.extend_from_slice(&from.cached[..len]);
        into.prompt_logits = from
            .prompt_logits
            .as_ref()
            .filter(|(prompt, _)| *prompt <= len)
            .cloned();
    }

    /// Forward `tokens` at the cache's end; on failure the cache is emptied.
    fn run(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>> {
        cache.reserve(cache.cached.len() + tokens.len(), self.capacity);
        let result = self.forward(cache, tokens);
        match &result {
            Ok(_) => cache.cached.extend_from_slice(tokens),
            Err(_) => cache.clear(),
        }
        result
    }

    /// The logits after `tokens`, whose keys and values are appended to the cache.
    fn forward(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>> {
        let (n, past) = (tokens.len(), cache.cached.len());
        let (s, h) = (self.shape, self.shape.heads);
        let (hidden, kv_width) = (h.q_width(), h.kv_width());
        let mut x: Vec<f32> = Tensor::new(tokens, &Device::Cpu)
            .and_then(|ids| self.embed.index_select(&ids, 0))
            .and_then(|x| x.flatten_all())
            .and_then(|x| x.to_vec1())
            .map_err(fail)?;
        let mut normed = vec![0f32; n * hidden];
        let mut attended = vec![0f32; n * hidden];
        for (i, layer) in self.layers.iter().enumerate() {
            kernels::rms_norm(&x, &layer.attn_norm, s.eps, &mut normed);
            let mut qkv = layer.qkv.forward(&normed, n)?;
            kernels::rope(&mut qkv, h, past, &self.cos, &self.sin);
            let (keys, values) = (&mut cache.k[i], &mut cache.v[i]);
            for row in qkv.chunks_exact(h.qkv_width()) {
                let (k, v) = row[hidden..].split_at(kv_width);
                keys.extend_from_slice(k);
                values.extend_from_slice(v);
            }
            kernels::attention(&qkv, keys, values, h, past, &mut attended);
            kernels::add(&mut x, &layer.o.forward(&attended, n)?);
            kernels::rms_norm(&x, &layer.ffn_norm, s.eps, &mut normed);
            let gate_up = layer.gate_up.forward(&normed, n)?;
            let width = gate_up.len() / n / 2;
            let mut mlp = vec![0f32; n * width];
            kernels::swiglu(&gate_up, width, &mut mlp);
            kernels::add(&mut x, &layer.down.forward(&mlp, n)?);
        }
        let mut last = vec![0f32; hidden];
        kernels::rms_norm(&x[(n - 1) * hidden..], &self.norm, s.eps, &mut last);
        self.lm_head.forward(&last, 1)
    }
}

/// How many tokens two sequences share from their start.
pub fn shared_start(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// cos/sin tables for interleaved rotary embeddings, `[positions, head_dim / 2]`.
fn rope_tables(head_dim: usize, base: f32, positions: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32))
        .collect();
    let angles: Vec<f32> = (0..positions)
        .flat_map(|p| freqs.iter().map(move |f| p as f32 * f))
        .collect();
    (
        angles.iter().map(|a| a.cos()).collect(),
        angles.iter().map(|a| a.sin()).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::{catalog::SMOLLM2, default_models_dir};

    fn smollm2() -> Llama {
        let path = default_models_dir().join(SMOLLM2);
        let mut file = std::fs::File::open(&path).expect("SmolLM2 fetched (make models)");
        let content = gguf_file::Content::read(&mut file).unwrap();
        Llama::load(&content, &mut file, 512).unwrap()
    }

    /// Kullback-Leibler divergence of the next-token distributions of two logit vectors.
    fn divergence(p: &[f32], q: &[f32]) -> f64 {
        let probabilities = |l: &[f32]| {
            let max = l.iter().fold(f32::MIN, |m, v| m.max(*v));
            let e: Vec<f64> = l.iter().map(|v| f64::from(v - max).exp()).collect();
            let total: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / total)
        };
        probabilities(p)
            .zip(probabilities(q))
            .map(|(p, q)| if p > 0.0 { p * (p / q).ln() } else { 0.0 })
            .sum()
    }

    #[test]
    fn a_prompt_continued_from_the_cache_or_a_fork_gives_the_logits_of_one_pass() {
        let llama = smollm2();
        let tokens: Vec<u32> = (0..90u32).map(|i| 1 + (i * 7919) % 49_000).collect();
        let (whole, _) = llama.prompt(&mut llama.new_cache(), &tokens).unwrap();
        // The first 60 tokens, then the other 30 on top of the cached 60.
        let mut cache = llama.new_cache();
        llama.prompt(&mut cache, &tokens[..60]).unwrap();
        let (continued, cached) = llama.prompt(&mut cache, &tokens).unwrap();
        assert_eq!(cached, 60);
        let kl = divergence(&whole, &continued);
        assert!(kl < 1e-8, "continuing moved the distribution by {kl:e}");
        // A fork of the first 60 continues exactly as its source would.
        let mut fork = llama.new_cache();
        llama.fork(&cache, &mut fork, 60);
        assert_eq!(fork.tokens(), &tokens[..60]);
        assert_eq!(llama.prompt(&mut fork, &tokens).unwrap(), (continued, 60));
    }

    #[test]
    fn decoding_on_q8_0_stays_close_to_the_prompt_path() {
        // The same 3 tokens after a cached prefix: one at a time (Q8_0 weights) against
        // all three as a prompt tail (f32 weights).
        let llama = smollm2();
        let tokens: Vec<u32> = (0..83u32).map(|i| 1 + (i * 7919) % 49_000).collect();
        let mut stepped = llama.new_cache();
        llama.prompt(&mut stepped, &tokens[..80]).unwrap();
        let mut logits = Vec::new();
        for t in &tokens[80..] {
            logits = llama.step(&mut stepped, *t).unwrap();
        }
        let (f32_tail, _) = llama.prompt(&mut llama.new_cache(), &tokens).unwrap();
        let kl = divergence(&f32_tail, &logits);
        assert!(kl < 0.02, "Q8_0 decoding moved the distribution by {kl}");
    }

    #[test]
    fn rotary_tables_start_at_the_identity() {
        let (cos, sin) = rope_tables(8, 10_000.0, 3);
        assert!(cos[..4].iter().all(|c| (*c - 1.0).abs() < 1e-6));
        assert!(sin[..4].iter().all(|s| s.abs() < 1e-6));
        assert!((sin[4] - 1f32.sin()).abs() < 1e-6);
    }
}
