//! Speech and language model engines behind small traits, and everything they stand on.
pub mod audio;
