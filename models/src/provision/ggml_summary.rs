//! Reading back the header and tensor table of a ggml Whisper file (the kind
//! [`super::whisper_ggml::convert`] writes): a checked summary, used to validate a model before
//! whisper.cpp loads it. Outside input: it never panics on any bytes.

use super::bytes::{ByteReader, Truncated};
use super::ggml_encoding::tensor_bytes;
use super::whisper_ggml::{GGML_MAGIC, Hparams};

/// What a ggml Whisper file declares: header, vocabulary size and tensor table.
#[derive(Debug)]
pub struct GgmlSummary {
    pub hparams: Hparams,
    pub n_tokens: usize,
    /// (name, shape in ggml order, ggml tensor type).
    pub tensors: Vec<(String, Vec<usize>, i32)>,
}

/// Read back the structure of a ggml Whisper file (header, filters, vocabulary, tensor table).
pub fn summarize(bytes: &[u8]) -> Result<GgmlSummary, String> {
    let truncated = |t: Truncated| format!("truncated ggml file at offset {}", t.offset);
    let mut r = ByteReader::new(bytes);
    let int = |r: &mut ByteReader| r.i32().map_err(truncated);
    let count = |v: i32| usize::try_from(v).map_err(|_| format!("negative count {v}"));
    if int(&mut r)? as u32 != GGML_MAGIC {
        return Err("bad magic: not a ggml file".into());
    }
    let mut f = [0i32; 11];
    for x in &mut f {
        *x = int(&mut r)?;
    }
    let [
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head,
        n_audio_layer,
        n_text_ctx,
        n_text_state,
        n_text_head,
        n_text_layer,
        n_mels,
        ftype,
    ] = f;
    let hparams = Hparams {
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head,
        n_audio_layer,
        n_text_ctx,
        n_text_state,
        n_text_head,
        n_text_layer,
        n_mels,
        ftype,
    };
    let (n_mel, n_fft) = (count(int(&mut r)?)?, count(int(&mut r)?)?);
    let filter_bytes = n_mel.checked_mul(n_fft).and_then(|n| n.checked_mul(4));
    r.take(filter_bytes.ok_or("filter size overflows")?)
        .map_err(truncated)?;
    let n_tokens = count(int(&mut r)?)?;
    for _ in 0..n_tokens {
        let len = count(int(&mut r)?)?;
        r.take(len).map_err(truncated)?;
    }
    let mut tensors = Vec::new();
    while !r.is_empty() {
        let (n_dims, name_len, ftype) = (count(int(&mut r)?)?, count(int(&mut r)?)?, int(&mut r)?);
        if n_dims > 4 {
            return Err(format!("tensor with {n_dims} dimensions"));
        }
        let mut shape = Vec::new();
        for _ in 0..n_dims {
            shape.push(count(int(&mut r)?)?);
        }
        let name = String::from_utf8_lossy(r.take(name_len).map_err(truncated)?).into_owned();
        let n = tensor_bytes(ftype, &shape)
            .ok_or_else(|| format!("{name}: type {ftype} with shape {shape:?} is not loadable"))?;
        r.take(n).map_err(truncated)?;
        tensors.push((name, shape, ftype));
    }
    Ok(GgmlSummary {
        hparams,
        n_tokens,
        tensors,
    })
}
