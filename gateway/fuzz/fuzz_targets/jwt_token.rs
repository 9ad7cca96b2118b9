//! Bearer tokens from anyone: decoding, both signature checks and the claim rules must
//! refuse garbage without panicking, and nothing unsigned may pass.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Siblings at the crate root, as in the gateway's `auth` module (`jwt.rs` uses `super::keys`).
#[allow(dead_code)]
#[path = "../../src/auth/keys.rs"]
mod keys;
#[allow(dead_code)]
#[path = "../../src/auth/jwt.rs"]
mod jwt;

const JWKS: &str = include_str!("../../src/auth/testdata/jwks.json");

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = jwt::looks_like_jwt(&text);
    let _ = jwt::parse_jwks(&text);
    if let Ok(token) = jwt::decode(&text) {
        let keys = jwt::parse_jwks(JWKS).expect("fixture");
        // Without the secret or the private key, no fuzzed token may verify.
        assert!(jwt::verify_hs256(&token, b"fuzz-secret").is_err());
        assert!(jwt::verify_rs256(&token, &keys).is_err());
        let _ = jwt::check_claims(&token, &Default::default(), 1_700_000_000);
    }
});
