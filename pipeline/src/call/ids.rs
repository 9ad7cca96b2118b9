//! Ids for calls, items and responses: unique within the process and unlikely to repeat
//! across restarts (a per-process random-ish prefix from the clock and a counter).

#[derive(Debug)]
pub struct IdGen {
    prefix: String,
    n: u64,
}

impl IdGen {
    pub fn new() -> Self {
        Self {
            prefix: format!("{:016x}", crate::unique::fresh_u64()),
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
