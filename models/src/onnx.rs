//! ONNX Runtime, opened at run time from the models directory.
//!
//! `ort` is built with `load-dynamic`: nothing is linked or downloaded at build time, and the
//! library that `switchboard models fetch` provisions (checksum-verified, from PyPI's
//! `onnxruntime==1.24.2`) is loaded once per process before the first session is created.
//! `ORT_DYLIB_PATH` overrides the location.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::provision::catalog::ONNXRUNTIME;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxError {
    #[error("ONNX Runtime library not found at {0} (run `switchboard models fetch`)")]
    Missing(PathBuf),
    #[error("could not load ONNX Runtime from {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("{model}: {reason}")]
    Session { model: PathBuf, reason: String },
}

static INIT: OnceLock<Result<PathBuf, OnnxError>> = OnceLock::new();

/// Load ONNX Runtime once for this process; later calls return the first outcome.
pub fn init(models_dir: &Path) -> Result<(), OnnxError> {
    INIT.get_or_init(|| {
        let path = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| models_dir.join(ONNXRUNTIME));
        if !path.is_file() {
            return Err(OnnxError::Missing(path));
        }
        let builder = ort::init_from(&path).map_err(|e| OnnxError::Load {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        builder.with_name("switchboard").commit();
        Ok(path)
    })
    .clone()
    .map(|_| ())
}

/// A session for `model` with `threads` intra-op threads and full graph optimization.
pub fn session(model: &Path, threads: usize) -> Result<ort::session::Session, OnnxError> {
    let fail = |reason: String| OnnxError::Session {
        model: model.to_owned(),
        reason,
    };
    if !model.is_file() {
        return Err(fail(
            "model file not found (run `switchboard models fetch`)".into(),
        ));
    }
    ort::session::Session::builder()
        .map_err(|e| fail(e.to_string()))?
        .with_intra_threads(threads.max(1))
        .map_err(|e| fail(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| fail(e.to_string()))?
        // Idle intra-op threads sleep instead of spinning: Piper's two threads otherwise keep
        // both cores busy between chunks, away from Whisper and other calls' work. Alone it
        // costs nothing measurable; 6 live calls on 2 cores: p95 1321 -> 1100 ms
        // (BENCHMARKS.md "Sleeping thread pools").
        .with_intra_op_spinning(false)
        .map_err(|e| fail(e.to_string()))?
        .commit_from_file(model)
        .map_err(|e| fail(e.to_string()))
}

/// A few interchangeable sessions of one model, shared by any number of callers.
pub struct SessionPool {
    sessions: Vec<Mutex<ort::session::Session>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl SessionPool {
    /// `size` sessions of `model` (at least one), each with `threads` intra-op threads.
    pub fn load(model: &Path, size: usize, threads: usize) -> Result<Self, OnnxError> {
        let sessions = (0..size.max(1))
            .map(|_| session(model, threads).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            sessions,
            next: AtomicUsize::new(0),
        })
    }

    /// A free session if any, else the next in turn once it is free (blocking).
    pub fn lock(&self) -> MutexGuard<'_, ort::session::Session> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.sessions.len();
        (0..n)
            .find_map(|i| self.sessions[(start + i) % n].try_lock().ok())
            .unwrap_or_else(|| {
                self.sessions[start % n]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
            })
    }
}
