//! Phone calls through telephony media streams (Twilio Media Streams, Telnyx media
//! streaming): [`protocol`] parses and renders the providers' WebSocket messages,
//! [`stream`] runs a call over one stream, [`control`] holds a hang-up or transfer until the
//! reply has been heard.

pub mod control;
pub mod protocol;
pub mod signature;
pub mod stream;

pub use control::CallControlHook;
pub use protocol::{Dialect, StreamStart};
pub use stream::{DtmfAction, DtmfMap, serve};
