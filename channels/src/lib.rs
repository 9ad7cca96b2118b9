//! Channels: transport adapters that turn a connection into a call.
//!
//! Each channel owns its socket (one reader, one writer task), parses the outside protocol
//! into pipeline commands, and renders the call's events back into that protocol. Parsing is
//! strict about shape and forgiving about the connection: a bad message gets an error in the
//! protocol's own form and the call goes on.
//!
//! Now: the OpenAI Realtime API over WebSocket ([`realtime`]) and WebRTC ([`webrtc`]), OpenAI
//! chat completion bodies ([`chat_request`]), text chat for web widgets ([`chat_ws`]), phone
//! calls over telephony media streams ([`telephony`]), and what IM bots and webhooks POST
//! to us ([`im`]: Telegram, Slack, the generic webhook), with the request signatures they
//! share ([`signing`]).

pub mod audio_format;
pub mod chat_request;
pub mod chat_ws;
pub mod im;
pub mod realtime;
pub mod signing;
pub mod telephony;
pub mod webrtc;
