//! Speech and language model engines (STT, TTS, VAD, text embeddings, the embedded LLM) behind small traits, and everything they stand on:
//! audio primitives, model provisioning (fetch, convert, verify) and the ONNX Runtime loader.
//!
//! Nothing here knows about calls, sockets or HTTP. Blocking inference runs on the engines'
//! own worker threads; callers get futures or channels back and never block an async runtime.

pub mod audio;
pub mod embed;
pub mod end_of_turn;
mod job;
pub mod llm;
pub mod onnx;
pub mod provision;
pub mod queue;
pub mod stt;
pub mod tts;
pub mod vad;

pub use job::Job;
