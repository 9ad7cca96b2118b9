//! The OpenAI Realtime API: client events in, server events out. One event implementation
//! ([`connection`]) carried by two transports: a WebSocket ([`websocket`]) and a WebRTC data
//! channel (`crate::webrtc`).

pub mod client_events;
pub mod connection;
pub mod fields;
pub mod mcp_tools;
mod response_create;
pub mod server_events;
pub mod session;
pub mod transcription;
pub mod websocket;

pub use connection::{Connection, ConnectionLimits, EventWriter, RateLimit};
pub use server_events::Transport;
pub use session::RealtimeSession;
