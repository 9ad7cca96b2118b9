//! Running the Python client scripts in `tests/python/`.

use std::ffi::OsStr;
use std::process::Command;

/// Run one of `tests/python/*.py` with `args`; it must exit 0 and print a line starting "ok:".
pub fn run_sdk_script(name: &str, args: &[&OsStr]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name);
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "SDK client {name} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("ok:"), "{stdout}");
}
