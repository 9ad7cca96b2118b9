//! Phone calls through telephony media streams (Twilio Media Streams, Telnyx media
//! streaming): [`protocol`] parses and renders the providers' WebSocket messages,
//! [`stream`] runs a call over one stream.

pub mod protocol;
pub mod signature;
pub mod stream;

pub use protocol::{Dialect, StreamStart};
pub use stream::serve;
