//! Request signatures shared by the signed channels (Slack, the generic webhook, call
//! hand-off callbacks): HMAC-SHA256 as hex, a freshness window against replays, and
//! comparison in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Signed requests older or newer than this are refused (replays).
pub const MAX_SKEW_SECS: i64 = 300;

/// HMAC-SHA256 of `parts` concatenated, as lower-case hex.
pub fn hmac_sha256_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Equality that takes the same time wherever the inputs differ (secrets, signatures).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A signed request's timestamp is within [`MAX_SKEW_SECS`] of `now_secs` and its signature
/// matches the expected one.
pub fn fresh_and_equal(
    now_secs: i64,
    ts: i64,
    expected: &str,
    presented: &str,
) -> Result<(), &'static str> {
    if now_secs.abs_diff(ts) > MAX_SKEW_SECS.unsigned_abs() {
        return Err("the timestamp is more than 5 minutes from now (replay?)");
    }
    if constant_time_eq(expected.as_bytes(), presented.as_bytes()) {
        Ok(())
    } else {
        Err("the signature does not match")
    }
}

/// Seconds since the Unix epoch, for [`fresh_and_equal`].
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hmac_sha256_hex("Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn stale_or_wrong_signatures_are_refused() {
        assert!(fresh_and_equal(1000, 1000, "v1=ab", "v1=ab").is_ok());
        assert!(fresh_and_equal(1000, 1300, "v1=ab", "v1=ab").is_ok());
        assert!(fresh_and_equal(1000, 1301, "v1=ab", "v1=ab").is_err());
        assert!(fresh_and_equal(1000, 699, "v1=ab", "v1=ab").is_err());
        assert!(fresh_and_equal(0, i64::MIN, "v1=ab", "v1=ab").is_err());
        assert!(fresh_and_equal(1000, 1000, "v1=ab", "v1=ac").is_err());
        assert!(fresh_and_equal(1000, 1000, "v1=ab", "v1=a").is_err());
    }
}
