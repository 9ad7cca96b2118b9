//! Transport adapters (to come): each turns a connection into a call on the pipeline —
//! OpenAI Realtime over WebSocket and WebRTC, telephony media streams, text chat, IM bots —
//! plus their codecs (Opus, G.711 framing). One reader and one writer task per socket.
//!
//! It must not know about tenants, API keys or storage; the gateway resolves those first.
