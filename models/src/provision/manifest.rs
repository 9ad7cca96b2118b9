//! `manifest.json` in the models directory: the SHA-256 of every file a fetch placed there.
//! Copied files are also pinned in the catalog; converted files are checked against this record.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ProvisionError, atomic_write};

pub const FILE_NAME: &str = "manifest.json";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Model id -> its entry.
    pub models: BTreeMap<String, ManifestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestEntry {
    /// `package==version` it came from.
    pub source: String,
    /// Relative path -> SHA-256.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// Load the manifest; a missing one is empty, an unreadable one is an error.
    pub fn load(dir: &Path) -> Result<Self, ProvisionError> {
        let path = dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ProvisionError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ProvisionError::Io { path, source }),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), ProvisionError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| ProvisionError::Corrupt {
            path: dir.join(FILE_NAME),
            reason: e.to_string(),
        })?;
        atomic_write(&dir.join(FILE_NAME), &json)
    }
}
