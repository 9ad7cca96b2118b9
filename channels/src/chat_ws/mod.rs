//! Text chat over a WebSocket, for web widgets: a small JSON protocol (`protocol.rs`) and
//! the connection that runs each message through the orchestrator (`socket.rs`).

pub mod protocol;
mod socket;

pub use socket::{ChatSession, serve};
