//! OpenAI Realtime over WebRTC: `POST /v1/realtime/calls` answers an SDP offer; the caller's
//! Opus audio feeds the call, reply audio returns on our track in paced 20 ms frames, and the
//! Realtime events (the same implementation as the WebSocket's) travel on the `oai-events`
//! data channel.
//!
//! - [`offer`]: the first look at an offer (SDP shape, audio, Opus) with clear errors;
//! - [`peer`]: building the answering peer connection;
//! - [`jitter`], [`codec`]: input reordering and loss concealment, Opus both ways;
//! - [`metrics`]: packets by fate, answer time;
//! - [`call`]: the running call.

pub mod call;
pub mod codec;
pub mod jitter;
pub mod metrics;
pub mod offer;
pub mod peer;

pub use call::{EVENTS_CHANNEL, serve};
pub use metrics::WebRtcMetrics;
pub use offer::{OfferError, check_offer};
pub use peer::{AnswerError, IceServer, Peer, WebRtcConfig, answer};
