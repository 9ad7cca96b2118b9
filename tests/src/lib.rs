//! Harness for end-to-end tests: finds the release `switchboard` binary that `make build` made.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test: `SWITCHBOARD_BIN`, else `switchboard` next to this test's target dir.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/release/deps/<test> -> target/release/switchboard
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("switchboard");
    assert!(
        bin.is_file(),
        "{} not built: run `make build` first (make test does)",
        bin.display()
    );
    bin
}

/// Run the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("switchboard runs")
}
