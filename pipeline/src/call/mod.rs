//! One actor per call. [`spawn_call`] starts it; the [`CallHandle`] is how a channel talks to
//! it: commands in through a bounded sender, events out through a bounded receiver. When the
//! handle is dropped the call's token is cancelled, which stops the actor and everything it
//! spawned (responses, transcriptions).

mod actor;
mod draft;
pub mod end_of_turn;
mod events;
mod idle;
mod ids;
mod input;
mod interrupt;
mod language;
mod mcp;
mod messages;
mod out_of_band;
mod persist;
mod playback;
mod respond;
mod response;
mod response_mcp;
mod turns;

use std::sync::Arc;

use switchboard_models::end_of_turn::SmartTurn;
use switchboard_models::stt::SpeechToText;
use switchboard_models::tts::TextToSpeech;
use switchboard_models::vad::SileroVad;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use events::{
    CallError, CallEvent, CallInput, Command, PartRef, ResponseInput, ResponseOptions,
    ResponseStatus, ResponseSummary,
};
pub use persist::{StoredItem, TurnSink};
pub use playback::{FRAME as PLAYBACK_FRAME, LEAD as PLAYBACK_LEAD};
pub use response::APOLOGY;

use crate::metrics::CallMetrics;
use crate::orchestrator::Orchestrator;
use crate::session::SessionConfig;

/// Commands waiting for the actor. A client that sends faster than the call works waits
/// (its socket reader stops reading), so nothing already accepted is dropped.
pub const COMMAND_QUEUE: usize = 64;
/// Events waiting for the channel's writer. A slow client slows its own call, no one else's.
pub const EVENT_QUEUE: usize = 256;

/// The shared engines a call uses.
#[derive(Clone)]
pub struct CallDeps {
    pub stt: Arc<dyn SpeechToText>,
    pub tts: Arc<dyn TextToSpeech>,
    pub vad: Arc<SileroVad>,
    /// Smart Turn, which hears whether a pausing caller has finished (`semantic_vad`).
    pub end_of_turn: Arc<SmartTurn>,
    /// Persona, context engines and the LLM chain for each response.
    pub orchestrator: Orchestrator,
    pub metrics: CallMetrics,
    /// Who the call belongs to, for the context engines.
    pub tenant: String,
    /// The transport (`realtime`, `webrtc`, `phone`): some tools exist only on phones.
    pub channel: &'static str,
    /// The persona the call uses (`None`: the default).
    pub persona: Option<String>,
    /// The end user, when known (memory and profile are per user).
    pub user: Option<String>,
    /// Where finished turns are stored (`None`: nowhere).
    pub sink: Option<Arc<dyn TurnSink>>,
    /// Draft the reply while the caller pauses, before the silence ends the turn
    /// (`draft.rs`). Costs LLM work for the drafts a caller talks over.
    pub speculate: bool,
}

impl std::fmt::Debug for CallDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallDeps")
            .field("orchestrator", &self.orchestrator)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct CallHandle {
    pub id: String,
    pub commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<CallEvent>,
    /// Cancels the call when dropped.
    pub guard: DropGuard,
    pub task: tokio::task::JoinHandle<()>,
}

/// End a call from its channel: ask the actor to shut down, cancel what it started, and wait
/// until it has finished (its last events sent, its items handed to the sink).
pub async fn end_call(
    commands: &mpsc::Sender<Command>,
    guard: DropGuard,
    task: tokio::task::JoinHandle<()>,
) {
    let _ = commands
        .send(Command {
            event_id: None,
            input: CallInput::Shutdown,
        })
        .await;
    drop(guard);
    let _ = task.await;
}

/// Start a call actor on the current runtime.
pub fn spawn_call(deps: CallDeps, config: SessionConfig) -> CallHandle {
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
    let token = CancellationToken::new();
    let ids = ids::IdGen::new();
    let id = ids.call_id();
    let (actor, feeds) = actor::CallActor::new(id.clone(), ids, deps, config, ev_tx, token.clone());
    let task = tokio::spawn(actor.run(cmd_rx, feeds));
    CallHandle {
        id,
        commands: cmd_tx,
        events: ev_rx,
        guard: token.drop_guard(),
        task,
    }
}
