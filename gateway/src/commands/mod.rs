//! One function per subcommand.

mod keys;
mod models;
mod speak;
mod tools;
mod transcribe;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => crate::server::run(args),
        Command::Transcribe(args) => transcribe::run(args),
        Command::Speak {
            text,
            output,
            speed,
            models,
        } => speak::run(&text, &output, speed, &models.dir),
        Command::Models { action } => models::run(action),
        Command::Tools { action } => tools::run(action),
        Command::Keys { action, store } => keys::run(action, &store),
    }
}
