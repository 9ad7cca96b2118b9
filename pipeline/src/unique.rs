//! Numbers no earlier draw of this process gave: the clock and a counter, mixed so that
//! consecutive draws do not look alike. For call ids and sampling seeds; not secret.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh number (distinct from every earlier one while the clock does not go back).
pub fn fresh_u64() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // An odd multiplier is a bijection: distinct inputs stay distinct.
    (nanos ^ n.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_differ() {
        let draws: std::collections::HashSet<u64> = (0..1000).map(|_| super::fresh_u64()).collect();
        assert_eq!(draws.len(), 1000);
    }
}
