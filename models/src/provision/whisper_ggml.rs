//! Convert a CTranslate2 Whisper model into the ggml file whisper.cpp loads.
//!
//! Name mapping (CTranslate2 -> whisper.cpp, which keeps PyTorch's names):
//! fused self-attention `linear_0` rows are q|k|v, fused cross-attention `linear_1` rows are
//! k|v; key projections have no bias in Whisper, so CTranslate2's zero key biases are dropped.
//! Types follow whisper.cpp's own converter: weight matrices in the chosen [`Weights`] (f16,
//! or q8_0 as its `quantize` tool writes), conv kernels f16, f32 for 1-D tensors, positional
//! embeddings and conv biases (reshaped to `[n, 1]`).

use std::io::Write;

use super::ct2::{Ct2DType, Ct2Model, Ct2Variable};
use super::ggml_encoding::{self as enc, TYPE_F16, TYPE_F32};
use super::vocab;
use crate::audio::mel;

pub use super::ggml_encoding::Weights;

pub use super::ggml_summary::{GgmlSummary, summarize};

pub(super) const GGML_MAGIC: u32 = 0x6767_6d6c;
const SAMPLE_RATE: u32 = 16_000;
const N_FFT: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("not a Whisper model: spec {0:?}")]
    NotWhisper(String),
    #[error("model has no variable {0}")]
    Missing(String),
    #[error("variable {name} has shape {shape:?}, expected {expected}")]
    Shape {
        name: String,
        shape: Vec<usize>,
        expected: String,
    },
    #[error("int8 variable {0} has no weight_scale to dequantize it with")]
    NoScale(String),
    #[error(transparent)]
    Vocab(#[from] vocab::VocabError),
    #[error("writing the ggml file: {0}")]
    Io(#[from] std::io::Error),
}

/// Whisper dimensions, in the order whisper.cpp's header stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

impl Hparams {
    fn fields(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }
}

/// A tensor ready to write: PyTorch-order shape, f32 values, and the ggml type to store.
struct Tensor {
    name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
    ty: i32,
}

struct Source<'m, 'a> {
    model: &'m Ct2Model<'a>,
}

impl<'a> Source<'_, 'a> {
    fn var(&self, name: &str) -> Result<&Ct2Variable<'a>, ConvertError> {
        self.model
            .get(name)
            .ok_or_else(|| ConvertError::Missing(name.to_owned()))
    }

    /// Values as f32, dequantizing int8 weights with their per-row scale.
    fn values(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ConvertError> {
        let v = self.var(name)?;
        let mut data = v.to_f32();
        if v.dtype == Ct2DType::I8 {
            let scale_name = format!("{}_scale", name);
            let scale = self
                .model
                .get(&scale_name)
                .ok_or_else(|| ConvertError::NoScale(name.to_owned()))?
                .to_f32();
            let rows = v.shape.first().copied().unwrap_or(1).max(1);
            let cols = data.len() / rows;
            if scale.len() != rows {
                return Err(shape_err(&scale_name, &[scale.len()], &format!("[{rows}]")));
            }
            for (r, s) in scale.iter().enumerate() {
                for x in &mut data[r * cols..(r + 1) * cols] {
                    *x /= s;
                }
            }
        }
        Ok((v.shape.clone(), data))
    }

    fn scalar(&self, name: &str) -> Result<i32, ConvertError> {
        let v = self.var(name)?;
        v.scalar_i64()
            .map(|x| x as i32)
            .ok_or_else(|| shape_err(name, &v.shape, "a scalar"))
    }

    fn rows(&self, name: &str) -> Result<usize, ConvertError> {
        let v = self.var(name)?;
        match v.shape.as_slice() {
            [rows, ..] => Ok(*rows),
            _ => Err(shape_err(name, &v.shape, "at least one dimension")),
        }
    }
}

fn shape_err(name: &str, shape: &[usize], expected: &str) -> ConvertError {
    ConvertError::Shape {
        name: name.to_owned(),
        shape: shape.to_vec(),
        expected: expected.to_owned(),
    }
}

struct Out {
    tensors: Vec<Tensor>,
    weights: Weights,
}

impl Out {
    /// A model tensor in the type whisper.cpp expects for its rank: 1-D f32, weight matrices
    /// in the file's weight type, conv kernels f16.
    fn push(
        &mut self,
        name: String,
        shape: Vec<usize>,
        data: Vec<f32>,
    ) -> Result<(), ConvertError> {
        let ty = match shape.len() {
            0 | 1 => TYPE_F32,
            2 => self.weights.tensor_type(),
            _ => TYPE_F16,
        };
        // ggml's innermost dimension is the last PyTorch one; q8_0 rows are whole blocks.
        if !enc::row_fits(ty, shape.last().copied().unwrap_or(1)) {
            return Err(shape_err(
                &name,
                &shape,
                &format!("rows of a multiple of {} values for q8_0", enc::Q8_0_BLOCK),
            ));
        }
        self.tensors.push(Tensor {
            name,
            shape,
            data,
            ty,
        });
        Ok(())
    }

    /// A CTranslate2 linear layer -> `{dst}.weight` and `{dst}.bias`.
    fn linear(&mut self, src: &Source, ct2: &str, dst: &str) -> Result<(), ConvertError> {
        let (shape, w) = src.values(&format!("{ct2}/weight"))?;
        self.push(format!("{dst}.weight"), shape, w)?;
        let (shape, b) = src.values(&format!("{ct2}/bias"))?;
        self.push(format!("{dst}.bias"), shape, b)
    }

    fn layer_norm(&mut self, src: &Source, ct2: &str, dst: &str) -> Result<(), ConvertError> {
        let (shape, g) = src.values(&format!("{ct2}/gamma"))?;
        self.push(format!("{dst}.weight"), shape, g)?;
        let (shape, b) = src.values(&format!("{ct2}/beta"))?;
        self.push(format!("{dst}.bias"), shape, b)
    }

    /// A fused projection whose rows stack `parts.len()` equal blocks; `None` names drop a bias.
    fn split_linear(
        &mut self,
        src: &Source,
        ct2: &str,
        parts: &[(&str, bool)],
    ) -> Result<(), ConvertError> {
        let wname = format!("{ct2}/weight");
        let (shape, w) = src.values(&wname)?;
        let [rows, cols] = shape[..] else {
            return Err(shape_err(&wname, &shape, "2 dimensions"));
        };
        if rows % parts.len() != 0 {
            return Err(shape_err(
                &wname,
                &shape,
                &format!("rows divisible by {}", parts.len()),
            ));
        }
        let n = rows / parts.len();
        let (_, b) = src.values(&format!("{ct2}/bias"))?;
        if b.len() != rows {
            return Err(shape_err(
                &format!("{ct2}/bias"),
                &[b.len()],
                &format!("[{rows}]"),
            ));
        }
        for (i, (dst, keep_bias)) in parts.iter().enumerate() {
            let w_part = w[i * n * cols..(i + 1) * n * cols].to_vec();
            self.push(format!("{dst}.weight"), vec![n, cols], w_part)?;
            if *keep_bias {
                self.push(
                    format!("{dst}.bias"),
                    vec![n],
                    b[i * n..(i + 1) * n].to_vec(),
                )?;
            }
        }
        Ok(())
    }

    /// A block's self-attention (layer norm, fused q|k|v, output) from `{c}` to `{d}`.
    fn self_attention(&mut self, src: &Source, c: &str, d: &str) -> Result<(), ConvertError> {
        self.layer_norm(
            src,
            &format!("{c}/self_attention/layer_norm"),
            &format!("{d}.attn_ln"),
        )?;
        self.split_linear(
            src,
            &format!("{c}/self_attention/linear_0"),
            &[
                (&format!("{d}.attn.query"), true),
                (&format!("{d}.attn.key"), false),
                (&format!("{d}.attn.value"), true),
            ],
        )?;
        self.linear(
            src,
            &format!("{c}/self_attention/linear_1"),
            &format!("{d}.attn.out"),
        )
    }

    /// A block's feed-forward part (layer norm, two linears) from `{c}` to `{d}`.
    fn mlp(&mut self, src: &Source, c: &str, d: &str) -> Result<(), ConvertError> {
        self.layer_norm(src, &format!("{c}/ffn/layer_norm"), &format!("{d}.mlp_ln"))?;
        self.linear(src, &format!("{c}/ffn/linear_0"), &format!("{d}.mlp.0"))?;
        self.linear(src, &format!("{c}/ffn/linear_1"), &format!("{d}.mlp.2"))
    }

    fn f32_tensor(&mut self, name: String, shape: Vec<usize>, data: Vec<f32>) {
        self.tensors.push(Tensor {
            name,
            shape,
            data,
            ty: TYPE_F32,
        });
    }
}

/// Convert a parsed CTranslate2 Whisper model plus its vocabulary and write the ggml file,
/// with weight matrices stored as `weights`.
pub fn convert<W: Write>(
    model: &Ct2Model,
    vocabulary: &str,
    weights: Weights,
    out: &mut W,
) -> Result<Hparams, ConvertError> {
    if model.spec != "WhisperSpec" {
        return Err(ConvertError::NotWhisper(model.spec.clone()));
    }
    let src = Source { model };
    let count_layers = |prefix: &str| {
        (0..)
            .take_while(|i| {
                model
                    .get(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))
                    .is_some()
            })
            .count() as i32
    };
    let (enc_pos_shape, enc_pos) = src.values("encoder/position_encodings/encodings")?;
    let (dec_pos_shape, dec_pos) = src.values("decoder/position_encodings/encodings")?;
    let conv1 = src.var("encoder/conv1/weight")?;
    let n_mels = match conv1.shape[..] {
        [_, mels, _] => mels as i32,
        _ => {
            return Err(shape_err(
                "encoder/conv1/weight",
                &conv1.shape,
                "3 dimensions",
            ));
        }
    };
    let hp = Hparams {
        n_vocab: src.rows("decoder/embeddings/weight")? as i32,
        n_audio_ctx: enc_pos_shape[0] as i32,
        n_audio_state: *enc_pos_shape.last().unwrap_or(&0) as i32,
        n_audio_head: src.scalar("encoder/num_heads")?,
        n_audio_layer: count_layers("encoder"),
        n_text_ctx: dec_pos_shape[0] as i32,
        n_text_state: *dec_pos_shape.last().unwrap_or(&0) as i32,
        n_text_head: src.scalar("decoder/num_heads")?,
        n_text_layer: count_layers("decoder"),
        n_mels,
        ftype: weights.header_ftype(),
    };
    let tokens = vocab::regular_tokens(vocabulary)?;

    let mut t = Out {
        tensors: Vec::new(),
        weights,
    };
    // Encoder.
    t.f32_tensor(
        "encoder.positional_embedding".into(),
        enc_pos_shape,
        enc_pos,
    );
    for conv in ["conv1", "conv2"] {
        let (shape, w) = src.values(&format!("encoder/{conv}/weight"))?;
        t.push(format!("encoder.{conv}.weight"), shape, w)?;
        let (_, b) = src.values(&format!("encoder/{conv}/bias"))?;
        t.f32_tensor(format!("encoder.{conv}.bias"), vec![b.len(), 1], b);
    }
    for i in 0..hp.n_audio_layer {
        let (c, d) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        t.self_attention(&src, &c, &d)?;
        t.mlp(&src, &c, &d)?;
    }
    t.layer_norm(&src, "encoder/layer_norm", "encoder.ln_post")?;

    // Decoder.
    t.f32_tensor(
        "decoder.positional_embedding".into(),
        dec_pos_shape,
        dec_pos,
    );
    let (shape, emb) = src.values("decoder/embeddings/weight")?;
    t.push("decoder.token_embedding.weight".into(), shape, emb)?;
    for i in 0..hp.n_text_layer {
        let (c, d) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        t.self_attention(&src, &c, &d)?;
        t.layer_norm(
            &src,
            &format!("{c}/attention/layer_norm"),
            &format!("{d}.cross_attn_ln"),
        )?;
        t.linear(
            &src,
            &format!("{c}/attention/linear_0"),
            &format!("{d}.cross_attn.query"),
        )?;
        t.split_linear(
            &src,
            &format!("{c}/attention/linear_1"),
            &[
                (&format!("{d}.cross_attn.key"), false),
                (&format!("{d}.cross_attn.value"), true),
            ],
        )?;
        t.linear(
            &src,
            &format!("{c}/attention/linear_2"),
            &format!("{d}.cross_attn.out"),
        )?;
        t.mlp(&src, &c, &d)?;
    }
    t.layer_norm(&src, "decoder/layer_norm", "decoder.ln")?;

    write_file(out, &hp, &tokens, &t.tensors)?;
    Ok(hp)
}

fn write_file<W: Write>(
    out: &mut W,
    hp: &Hparams,
    tokens: &[Vec<u8>],
    tensors: &[Tensor],
) -> std::io::Result<()> {
    out.write_all(&GGML_MAGIC.to_le_bytes())?;
    for f in hp.fields() {
        out.write_all(&f.to_le_bytes())?;
    }
    let bins = N_FFT / 2 + 1;
    out.write_all(&hp.n_mels.to_le_bytes())?;
    out.write_all(&(bins as i32).to_le_bytes())?;
    for v in mel::filterbank(SAMPLE_RATE, N_FFT, hp.n_mels as usize) {
        out.write_all(&v.to_le_bytes())?;
    }
    out.write_all(&(tokens.len() as i32).to_le_bytes())?;
    for tok in tokens {
        out.write_all(&(tok.len() as u32).to_le_bytes())?;
        out.write_all(tok)?;
    }
    let mut buf = Vec::new();
    for t in tensors {
        out.write_all(&(t.shape.len() as i32).to_le_bytes())?;
        out.write_all(&(t.name.len() as i32).to_le_bytes())?;
        out.write_all(&t.ty.to_le_bytes())?;
        // ggml lists dimensions innermost first.
        for &d in t.shape.iter().rev() {
            out.write_all(&(d as i32).to_le_bytes())?;
        }
        out.write_all(t.name.as_bytes())?;
        buf.clear();
        enc::encode(t.ty, &t.data, &mut buf);
        out.write_all(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
