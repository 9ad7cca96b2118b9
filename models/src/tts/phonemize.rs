//! Text to Piper phonemes with espeak-ng, one clause at a time.
//!
//! piper-rs's own phonemization glues clauses together and drops their punctuation
//! ("Hello, your" becomes one word, with no pause). Piper voices were trained on phonemes that
//! keep clause punctuation followed by a space, so we phonemize each clause on its own and put
//! the punctuation back. espeak-ng is not thread-safe: every call goes through one lock.

use std::path::PathBuf;
use std::sync::Mutex;

use super::TtsError;
use super::text::clauses;

static ESPEAK: Mutex<()> = Mutex::new(());

/// The environment variable espeak-rs reads to find `espeak-ng-data`.
pub const ESPEAK_DATA_ENV: &str = "PIPER_ESPEAKNG_DATA_DIRECTORY";

/// Where a system espeak-ng keeps its data (Debian's `espeak-ng-data` package and others).
const SYSTEM_DATA_PARENTS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib",
    "/usr/share",
    "/usr/local/share",
];

/// The directory that holds `espeak-ng-data`: the environment's choice if it has one, else the
/// first system location that exists.
pub fn espeak_data_parent() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(ESPEAK_DATA_ENV) {
        let dir = PathBuf::from(dir);
        return dir.join("espeak-ng-data").is_dir().then_some(dir);
    }
    SYSTEM_DATA_PARENTS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("espeak-ng-data").join("phontab").is_file())
}

/// Point espeak-rs at the system's espeak-ng data when the environment does not already.
///
/// # Safety
/// Changes the process environment: call it before other threads exist (start of `main`).
pub unsafe fn export_espeak_data_dir() {
    if std::env::var_os(ESPEAK_DATA_ENV).is_none()
        && let Some(dir) = espeak_data_parent()
    {
        // SAFETY: the caller guarantees no other thread reads or writes the environment now.
        unsafe { std::env::set_var(ESPEAK_DATA_ENV, dir) };
    }
}

/// IPA phonemes for `text` in Piper's format: clauses separated by their punctuation and a space.
pub fn phonemize(text: &str, voice: &str) -> Result<String, TtsError> {
    if espeak_data_parent().is_none() {
        return Err(TtsError::Phonemize(format!(
            "espeak-ng data not found; install espeak-ng-data or set {ESPEAK_DATA_ENV}"
        )));
    }
    let mut out = String::new();
    let _guard = ESPEAK.lock().unwrap_or_else(|p| p.into_inner());
    for clause in clauses(text) {
        let phonemes = espeak_rs::text_to_phonemes(&clause.text, voice, None)
            .map_err(|e| TtsError::Phonemize(e.to_string()))?
            .join(" ");
        let phonemes = phonemes
            .trim()
            .trim_end_matches(['.', ',', ';', ':', '!', '?']);
        if phonemes.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(phonemes);
        out.push(clause.punctuation.unwrap_or('.'));
    }
    Ok(out)
}
