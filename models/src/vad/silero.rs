//! Silero VAD (v5/v6 ONNX) at 16 kHz: 512-sample frames plus 64 samples of context from the
//! previous frame, and a `[2, 1, 128]` recurrent state carried between frames.

use std::path::Path;
use std::sync::Arc;

use ort::value::Tensor;

use super::{VadError, VoiceActivity};
use crate::onnx::{self, SessionPool};

/// 32 ms at 16 kHz.
pub const FRAME_SAMPLES: usize = 512;
const CONTEXT_SAMPLES: usize = 64;
const STATE_LEN: usize = 2 * 128;
const SAMPLE_RATE: i64 = 16_000;

/// The shared Silero model: a few sessions, used by any number of streams.
#[derive(Debug)]
pub struct SileroVad {
    sessions: SessionPool,
}

impl SileroVad {
    /// Load `pool` sessions of the model (one intra-op thread each: a frame is tiny).
    pub fn load(models_dir: &Path, model: &Path, pool: usize) -> Result<Arc<Self>, VadError> {
        onnx::init(models_dir)?;
        Ok(Arc::new(Self {
            sessions: SessionPool::load(model, pool, 1)?,
        }))
    }

    /// A new stream with fresh state.
    pub fn stream(self: &Arc<Self>) -> VadStream {
        VadStream {
            model: Arc::clone(self),
            state: vec![0.0; STATE_LEN],
            context: [0.0; CONTEXT_SAMPLES],
            input: vec![0.0; CONTEXT_SAMPLES + FRAME_SAMPLES],
        }
    }

    fn run(&self, input: &[f32], state: &mut [f32]) -> Result<f32, VadError> {
        let mut guard = self.sessions.lock();
        let fail = |e: ort::Error| VadError::Inference(e.to_string());
        let input_t = Tensor::from_array(([1usize, input.len()], input.to_vec())).map_err(fail)?;
        let state_t = Tensor::from_array(([2usize, 1, 128], state.to_vec())).map_err(fail)?;
        let sr_t = Tensor::from_array(([1usize], vec![SAMPLE_RATE])).map_err(fail)?;
        let outputs = guard
            .run(ort::inputs!["input" => input_t, "state" => state_t, "sr" => sr_t])
            .map_err(fail)?;
        let (_, prob) = outputs["output"]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        let (_, new_state) = outputs["stateN"]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        if new_state.len() != STATE_LEN || prob.is_empty() {
            return Err(VadError::Inference("unexpected output shapes".into()));
        }
        state.copy_from_slice(new_state);
        Ok(prob[0])
    }
}

/// One audio stream's VAD state. Cheap: about 3 KiB.
pub struct VadStream {
    model: Arc<SileroVad>,
    state: Vec<f32>,
    context: [f32; CONTEXT_SAMPLES],
    input: Vec<f32>,
}

impl std::fmt::Debug for VadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VadStream").finish_non_exhaustive()
    }
}

impl VadStream {
    /// Bytes of per-stream state (what each extra call costs, besides the shared model).
    pub const STATE_BYTES: usize =
        (STATE_LEN + CONTEXT_SAMPLES + CONTEXT_SAMPLES + FRAME_SAMPLES) * 4;
}

impl VoiceActivity for VadStream {
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, VadError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(VadError::FrameSize {
                expected: FRAME_SAMPLES,
                got: frame.len(),
            });
        }
        self.input[..CONTEXT_SAMPLES].copy_from_slice(&self.context);
        self.input[CONTEXT_SAMPLES..].copy_from_slice(frame);
        let p = self.model.run(&self.input, &mut self.state)?;
        self.context
            .copy_from_slice(&frame[FRAME_SAMPLES - CONTEXT_SAMPLES..]);
        Ok(p)
    }

    fn reset(&mut self) {
        self.state.fill(0.0);
        self.context.fill(0.0);
    }
}
