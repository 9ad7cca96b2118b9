//! What goes into a call and what comes out. Channels translate these to and from their
//! protocol; the names follow the Realtime API because it is the richest protocol we speak.

use serde::Serialize;

use crate::conversation::Item;
use crate::llm::Usage;
use crate::session::SessionConfig;

/// A command to the call, tagged with the client's event id (echoed in errors).
#[derive(Debug)]
pub struct Command {
    pub event_id: Option<String>,
    pub input: CallInput,
}

#[derive(Debug)]
pub enum CallInput {
    UpdateSession(Box<SessionConfig>),
    /// Caller audio at the session's `input_rate`.
    AppendAudio(Vec<f32>),
    CommitAudio,
    ClearAudio,
    CreateItem {
        previous_item_id: Option<String>,
        item: Item,
    },
    /// The client played only `audio_end_ms` of an assistant item's audio.
    TruncateItem {
        item_id: String,
        content_index: u32,
        audio_end_ms: u32,
    },
    DeleteItem {
        item_id: String,
    },
    RetrieveItem {
        item_id: String,
    },
    CreateResponse(ResponseOptions),
    /// Cancel the response `response_id`, or the one in the conversation (`None`).
    CancelResponse {
        response_id: Option<String>,
    },
    /// Drop reply audio not yet sent (WebRTC `output_audio_buffer.clear`).
    ClearOutputAudio,
    /// End the call: cancel everything and stop.
    Shutdown,
}

/// Per-response overrides (`response.create`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ResponseOptions {
    pub instructions: Option<String>,
    /// `Some(false)` for a text-only response.
    pub audio_output: Option<bool>,
    pub tool_choice: Option<crate::llm::ToolChoice>,
    /// Function tools for this response instead of the session's (`response.tools`); the
    /// session's MCP servers stay offered.
    pub tools: Option<Vec<crate::llm::ToolSpec>>,
    /// MCP servers this response declares (`response.tools`, `"type": "mcp"`), offered
    /// beside the session's; one with a session server's label stands in for it
    /// (`response_mcp.rs`).
    pub mcp: Vec<crate::tools::client_mcp::ClientMcpServer>,
    /// The client's key-value pairs for the response (`response.metadata`), shown back on
    /// it; the orchestrator's (persona, degraded) join them under keys the client left free.
    pub metadata: Vec<(String, String)>,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    /// An answer to a pending action (`action_id`, approve) that this response settles
    /// (our `switchboard.action.confirm` client event).
    pub decision: Option<(String, bool)>,
    /// With a response in progress, start after it instead of refusing (news from outside
    /// the call, such as an action that expired, waits for the agent to finish its sentence).
    pub queue: bool,
    /// Cancel a response in progress instead of refusing (a phone key press interrupts the
    /// agent the way speech does).
    pub interrupt: bool,
    /// The response's context instead of the conversation (`response.input`): items of
    /// its own and references to the conversation's.
    pub input: Option<Vec<ResponseInput>>,
    /// Written to no conversation (`response.conversation: "none"`): it runs beside the
    /// conversation's response, in text (`out_of_band.rs`).
    pub out_of_band: bool,
}

/// One item of a response's own context (`response.input`).
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseInput {
    Item(Item),
    /// A conversation item by id (`item_reference`).
    Reference(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    InProgress,
    Completed,
    Cancelled,
    Failed,
    Incomplete,
}

impl ResponseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::Incomplete => "incomplete",
        }
    }
}

/// The final state of a response (`response.done`).
#[derive(Debug, Clone)]
pub struct ResponseSummary {
    pub id: String,
    pub status: ResponseStatus,
    /// Why it was cancelled or failed (`turn_detected`, `client_cancelled`, an error code).
    pub reason: Option<String>,
    pub error_message: Option<String>,
    pub output: Vec<Item>,
    pub usage: Usage,
    pub audio_output: bool,
    /// String pairs for the Realtime `metadata` (persona, degraded, degrade_reasons).
    pub metadata: Vec<(String, String)>,
    /// In no conversation (`response.conversation: "none"`).
    pub out_of_band: bool,
}

/// Where an output part lives: response, item, output and content indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub content_index: u32,
}

#[derive(Debug, Clone)]
pub enum CallEvent {
    SessionUpdated(Box<SessionConfig>),
    SpeechStarted {
        audio_start_ms: u64,
        item_id: String,
    },
    SpeechStopped {
        audio_end_ms: u64,
        item_id: String,
    },
    /// No speech for `idle_timeout_ms` after the last reply: the silence from `audio_start_ms`
    /// to `audio_end_ms` is committed as the user item `item_id`, and a response follows.
    IdleTimeout {
        audio_start_ms: u64,
        audio_end_ms: u64,
        item_id: String,
    },
    AudioCommitted {
        item_id: String,
        previous_item_id: Option<String>,
    },
    AudioCleared,
    ItemCreated {
        previous_item_id: Option<String>,
        item: Item,
    },
    ItemRetrieved {
        item: Item,
    },
    ItemDeleted {
        item_id: String,
    },
    ItemTruncated {
        item_id: String,
        content_index: u32,
        audio_end_ms: u32,
    },
    InputTranscriptCompleted {
        item_id: String,
        content_index: u32,
        transcript: String,
        /// Seconds of audio transcribed (usage is billed by duration in the Realtime API).
        audio_seconds: f64,
        /// The transcript's tokens and their log probabilities.
        tokens: Vec<switchboard_models::stt::Token>,
    },
    InputTranscriptFailed {
        item_id: String,
        content_index: u32,
        message: String,
    },
    ResponseCreated {
        response_id: String,
        audio_output: bool,
        /// The client's `response.metadata`.
        metadata: Vec<(String, String)>,
        /// In no conversation (`response.conversation: "none"`).
        out_of_band: bool,
    },
    OutputItemAdded {
        response_id: String,
        output_index: u32,
        item: Item,
    },
    ContentPartAdded {
        part: PartRef,
        audio: bool,
    },
    /// Reply text: the audio transcript when `audio`, else output text.
    TextDelta {
        part: PartRef,
        audio: bool,
        delta: String,
    },
    TextDone {
        part: PartRef,
        audio: bool,
        text: String,
    },
    /// Reply audio at the session's `output_rate`.
    AudioDelta {
        part: PartRef,
        samples: Vec<f32>,
    },
    AudioDone {
        part: PartRef,
    },
    ContentPartDone {
        part: PartRef,
        audio: bool,
        text: String,
    },
    FunctionCallArgumentsDelta {
        part: PartRef,
        call_id: String,
        delta: String,
    },
    FunctionCallArgumentsDone {
        part: PartRef,
        call_id: String,
        name: String,
        arguments: String,
    },
    /// A client-declared MCP server's tools are being listed (`in_progress`), or were
    /// (`completed`, `failed`: `item` holds them).
    McpListTools {
        item: crate::conversation::Item,
        status: &'static str,
    },
    /// An `mcp_call` item's arguments, whole (the gateway runs the call itself).
    McpCallArguments {
        part: PartRef,
        arguments: String,
    },
    /// An `mcp_call` item's progress: `in_progress`, `completed`, `failed`.
    McpCallStatus {
        part: PartRef,
        status: &'static str,
    },
    OutputItemDone {
        response_id: String,
        output_index: u32,
        item: Item,
    },
    ResponseDone(Box<ResponseSummary>),
    /// The channel's playback of reply audio started, stopped (all played) or was cleared.
    PlaybackStarted {
        response_id: String,
    },
    PlaybackStopped {
        response_id: String,
    },
    PlaybackCleared {
        response_id: String,
    },
    Error(CallError),
    /// The agent's own tools: a confirmation asked for, an action settled, a tool run.
    Action(crate::llm::ActionNotice),
}

/// An error reported to the client; the call goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    /// `invalid_request_error` or `server_error`.
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub event_id: Option<String>,
}

impl CallError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: "invalid_request_error",
            code,
            message: message.into(),
            param: None,
            event_id: None,
        }
    }

    pub fn server(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: "server_error",
            ..Self::invalid(code, message)
        }
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    pub fn with_event_id(mut self, event_id: Option<String>) -> Self {
        self.event_id = event_id;
        self
    }
}
