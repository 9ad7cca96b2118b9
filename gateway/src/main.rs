//! `switchboard`: the gateway server and its command-line tools.

mod actions;
mod audio;
mod auth;
mod call_control;
mod call_page;
mod calls;
mod chat;
mod chat_ws;
mod cli;
mod client_secrets;
mod commands;
mod engines;
mod handoff;
mod inbox;
mod knowledge;
mod limits;
mod llm;
mod metrics;
mod openapi;
mod realtime;
mod redis_link;
mod registry;
mod routes;
mod server;
mod sessions;
mod slack;
mod store;
mod summary;
mod telegram;
mod telephony;
mod tenants;
mod turns;
mod upload;
mod webhook;
mod webrtc;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // SAFETY: first thing in main, before any other thread exists.
    unsafe { switchboard_models::tts::export_espeak_data_dir() };
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: the chain of causes joined.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info,whisper_rs=warn,ort=warn",
        1 => "debug,whisper_rs=info,ort=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours for a terminal only: a log file or journald gets plain text.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
