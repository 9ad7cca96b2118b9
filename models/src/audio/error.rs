use std::path::PathBuf;

/// What can go wrong reading, writing or converting audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: not a readable WAV file: {reason}")]
    InvalidWav { path: PathBuf, reason: String },
    #[error("{path}: contains no audio samples")]
    Empty { path: PathBuf },
    #[error("unsupported WAV sample format: {0}")]
    UnsupportedFormat(String),
    #[error("unsupported sample rate {0} Hz")]
    UnsupportedRate(u32),
    #[error("audio file not decodable: {0}")]
    Undecodable(String),
    #[error("audio encoding failed: {0}")]
    Encode(String),
    #[error("resampling failed: {0}")]
    Resample(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
