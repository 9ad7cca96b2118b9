//! Ids for calls, items and responses: unique within the process and unlikely to repeat
//! across restarts (a per-process random-ish prefix from the clock and a counter).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static NEXT_CALL: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub struct IdGen {
    prefix: String,
    n: u64,
}

impl IdGen {
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let call = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        // A cheap mix so ids of consecutive calls do not look alike.
        let mixed = (nanos ^ call.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            prefix: format!("{mixed:016x}"),
            n: 0,
        }
    }

    pub fn call_id(&self) -> String {
        format!("sess_{}", self.prefix)
    }

    pub fn next(&mut self, kind: &str) -> String {
        self.n += 1;
        format!("{kind}_{}{:04}", &self.prefix[..12], self.n)
    }
}
