//! Loading the speech engines from the models directory.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use switchboard_models::embed::{MiniLm, TextEmbedder};
use switchboard_models::end_of_turn::SmartTurn;
use switchboard_models::llm::{LocalLlm, LocalLlmConfig};
use switchboard_models::provision::catalog::{
    MINILM_DIR, PIPER_JOE, SILERO_VAD, SMART_TURN, SMOLLM2,
};
use switchboard_models::stt::{WhisperConfig, WhisperEngine};
use switchboard_models::tts::{PiperConfig, PiperEngine};
use switchboard_models::vad::SileroVad;

use crate::cli::SttArgs;

pub fn stt(models_dir: &Path, args: &SttArgs) -> anyhow::Result<WhisperEngine> {
    let path = args.model_path(models_dir);
    if let Some(id) = args.catalog_id().filter(|_| !path.exists()) {
        bail!(
            "Whisper {} is not installed: run `switchboard models fetch {id}`",
            args.stt_model
        );
    }
    let mut cfg = WhisperConfig::new(path).sharing_cores(args.stt_workers, args.stt_workers);
    cfg.use_gpu = !args.stt_cpu;
    WhisperEngine::load(cfg).context("loading speech-to-text")
}

pub fn tts(models_dir: &Path) -> anyhow::Result<PiperEngine> {
    PiperEngine::load(PiperConfig::new(models_dir, models_dir.join(PIPER_JOE)))
        .context("loading text-to-speech")
}

pub fn vad(models_dir: &Path) -> anyhow::Result<Arc<SileroVad>> {
    SileroVad::load(models_dir, &models_dir.join(SILERO_VAD), 2)
        .context("loading voice activity detection")
}

/// Smart Turn, two sessions: an inference is ~40 ms of one core, once per pause of a
/// `semantic_vad` call.
pub fn end_of_turn(models_dir: &Path) -> anyhow::Result<Arc<SmartTurn>> {
    SmartTurn::load(models_dir, &models_dir.join(SMART_TURN), 2)
        .context("loading end-of-turn detection")
}

pub fn llm(models_dir: &Path) -> anyhow::Result<LocalLlm> {
    LocalLlm::load(LocalLlmConfig::new(models_dir.join(SMOLLM2)))
        .context("loading the embedded LLM")
}

/// Requests that may wait for the embedding worker before new ones are refused.
const EMBED_QUEUE: usize = 256;

pub fn embedder(models_dir: &Path) -> anyhow::Result<Arc<dyn TextEmbedder>> {
    Ok(Arc::new(
        MiniLm::load(&models_dir.join(MINILM_DIR), EMBED_QUEUE)
            .context("loading the embedding model")?,
    ))
}

/// Every speech engine the gateway serves with.
pub struct Engines {
    pub stt: Arc<WhisperEngine>,
    pub tts: Arc<PiperEngine>,
    pub vad: Arc<SileroVad>,
    pub end_of_turn: Arc<SmartTurn>,
}

impl Engines {
    pub fn load(models_dir: &Path, stt_args: &SttArgs) -> anyhow::Result<Self> {
        Ok(Self {
            stt: Arc::new(stt(models_dir, stt_args)?),
            tts: Arc::new(tts(models_dir)?),
            vad: vad(models_dir)?,
            end_of_turn: end_of_turn(models_dir)?,
        })
    }
}
