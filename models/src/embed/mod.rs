//! Text embeddings: all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions) run with candle on a
//! worker thread, as sentence-transformers runs it: WordPiece tokens (at most 256), mean
//! pooling over the real tokens, L2 normalisation. Dot products of two embeddings are
//! cosine similarities.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};
use tokio::sync::oneshot;

use crate::job::Job;

/// Dimensions of a MiniLM embedding.
pub const DIM: usize = 384;
/// Longest input in tokens (longer text is truncated, as sentence-transformers does).
pub const MAX_TOKENS: usize = 256;
/// Texts embedded in one forward pass.
const BATCH: usize = 32;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model not usable: {0} (run `switchboard models fetch`)")]
    Model(String),
    #[error("embeddings are overloaded: {0} requests already queued")]
    Overloaded(usize),
    #[error("embedding failed: {0}")]
    Inference(String),
    #[error("the embedding worker stopped")]
    WorkerGone,
}

pub type EmbedJob = Job<Vec<Vec<f32>>, EmbedError>;

/// Anything that turns texts into unit-length vectors of one dimension.
pub trait TextEmbedder: Send + Sync {
    fn dim(&self) -> usize;
    /// Queue `texts`; the answer holds one vector per text, in order.
    fn embed(&self, texts: Vec<String>) -> EmbedJob;
}

struct Request {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>,
}

/// MiniLM on its own thread. Dropping it stops the worker once the queue drains.
pub struct MiniLm {
    tx: SyncSender<Request>,
    queue: usize,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm").finish_non_exhaustive()
    }
}

struct Model {
    bert: BertModel,
    tokenizer: Tokenizer,
}

fn model_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(e.to_string())
}

fn infer_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Inference(e.to_string())
}

impl Model {
    fn load(dir: &Path) -> Result<Self, EmbedError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| model_err(format!("{name}: {e}")))
        };
        let config: Config = serde_json::from_slice(&read("config.json")?).map_err(model_err)?;
        let vb = VarBuilder::from_buffered_safetensors(
            read("model.safetensors")?,
            DType::F32,
            &Device::Cpu,
        )
        .map_err(model_err)?;
        let bert = BertModel::load(vb, &config).map_err(model_err)?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(model_err)?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(model_err)?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        Ok(Self { bert, tokenizer })
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            let enc = self
                .tokenizer
                .encode_batch(batch.to_vec(), true)
                .map_err(infer_err)?;
            let len = enc.first().map_or(0, |e| e.get_ids().len());
            let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
                enc.iter().flat_map(|e| f(e).iter().copied()).collect()
            };
            let shape = (batch.len(), len);
            let ids = Tensor::from_vec(flat(&|e| e.get_ids()), shape, &Device::Cpu);
            let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), shape, &Device::Cpu);
            let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), shape, &Device::Cpu);
            let (ids, types, mask) = (
                ids.map_err(infer_err)?,
                types.map_err(infer_err)?,
                mask.map_err(infer_err)?,
            );
            let hidden = self
                .bert
                .forward(&ids, &types, Some(&mask))
                .map_err(infer_err)?;
            out.extend(mean_pool_normalised(&hidden, &mask).map_err(infer_err)?);
        }
        Ok(out)
    }
}

/// Mean of the token vectors the mask keeps, scaled to unit length.
fn mean_pool_normalised(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f32::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
    mean.broadcast_div(&norm)?.to_vec2::<f32>()
}

impl MiniLm {
    /// Load the model from `dir` (config.json, model.safetensors, tokenizer.json) and start
    /// its worker. `queue` bounds the requests waiting.
    pub fn load(dir: &Path, queue: usize) -> Result<Self, EmbedError> {
        let started = Instant::now();
        let model = Model::load(dir)?;
        tracing::info!(
            dir = %dir.display(),
            secs = started.elapsed().as_secs_f32(),
            "embedding model loaded"
        );
        let (tx, rx) = sync_channel::<Request>(queue);
        std::thread::Builder::new()
            .name("embed".into())
            .spawn(move || worker(model, rx))
            .map_err(|e| model_err(format!("spawning worker: {e}")))?;
        Ok(Self { tx, queue })
    }
}

fn worker(model: Model, rx: Receiver<Request>) {
    while let Ok(req) = rx.recv() {
        if req.reply.is_closed() {
            continue;
        }
        let _ = req.reply.send(model.embed(&req.texts));
    }
}

fn lost() -> EmbedError {
    EmbedError::WorkerGone
}

impl TextEmbedder for MiniLm {
    fn dim(&self) -> usize {
        DIM
    }

    fn embed(&self, texts: Vec<String>) -> EmbedJob {
        if texts.is_empty() {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(Ok(Vec::new()));
            return Job::new(rx, lost);
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Request { texts, reply }) {
            Ok(()) => Job::new(rx, lost),
            Err(TrySendError::Full(_)) => Job::failed(EmbedError::Overloaded(self.queue), lost),
            Err(TrySendError::Disconnected(_)) => Job::failed(EmbedError::WorkerGone, lost),
        }
    }
}

/// An embedding as stored on disk and in databases: little-endian f32s.
pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`to_bytes`] (a trailing partial value is ignored).
pub fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Dot product of two equal-length vectors (cosine similarity for unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_survive_the_byte_round_trip() {
        let v = vec![0.25, -1.5, f32::MIN_POSITIVE, 3.0e7];
        assert_eq!(from_bytes(&to_bytes(&v)), v);
    }
}
