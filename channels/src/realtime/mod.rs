//! The OpenAI Realtime API: client events in, server events out, over WebSocket (WebRTC's
//! data channel will reuse the same event code).

pub mod client_events;
pub mod server_events;
pub mod session;
pub mod websocket;

pub use session::RealtimeSession;
