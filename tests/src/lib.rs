//! Harness for end-to-end tests: the release `switchboard` binary that `make build` made,
//! a scripted LLM server, a Realtime client, and test speech.

pub mod fake_api;
pub mod fake_orders;
pub mod gateway;
pub mod mcp_server;
pub mod phone_client;
pub mod python;
pub mod realtime_client;
pub mod redis;
pub mod scripted_llm;
pub mod signing;
pub mod speech;
pub mod webrtc_client;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test: `SWITCHBOARD_BIN`, else `switchboard` next to this test's target dir.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/release/deps/<test> -> target/release/switchboard
    let mut dir = exe.parent().expect("exe dir");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target dir");
    }
    let bin = dir.join("switchboard");
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

/// Serve `app` on a loopback port from a thread of its own (stand-ins for outside services
/// must not share the test's runtime); its address.
pub fn serve_on_thread(app: axum::Router) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr"))
                .expect("report addr");
            let _ = axum::serve(listener, app).await;
        });
    });
    rx.recv().expect("server started")
}
