//! The call pipeline: one actor per call owns turn-taking (VAD), barge-in, the conversation,
//! and the response loop (LLM -> sentence chunks -> streaming TTS -> paced audio).
//!
//! No sockets here: channels (in `switchboard-channels`) feed a call [`call::CallInput`]s and
//! turn its [`call::CallEvent`]s into their protocol. Model inference runs on the engines'
//! own worker threads (`switchboard-models`), never on the async runtime.

pub mod budget;
pub mod call;
pub mod context;
pub mod conversation;
pub mod llm;
pub mod metrics;
pub mod orchestrator;
pub mod outbound;
pub mod persona;
pub mod session;
pub mod tools;
pub mod unique;

pub use call::{CallDeps, CallEvent, CallHandle, CallInput, spawn_call};
pub use session::{Eagerness, NoiseReduction, SessionConfig, TurnDetection};
