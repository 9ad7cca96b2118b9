//! JSON Web Tokens as bearer credentials (RFC 7519): HS256 with a shared secret, RS256 with
//! keys from a JWKS. This file is the pure part — parsing, signature and claim checks —
//! needing only `keys.rs` beside it, so the fuzz target can build the two alone.
//!
//! Only those two algorithms exist here; `none` and every other `alg` are refused, and a
//! token is checked only with a key of its own algorithm's kind (an RS256 public key is
//! never used as an HMAC secret).

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Longer tokens are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Allowed clock difference for `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a JWT")]
    Malformed,
    #[error("algorithm '{0}' is not accepted")]
    Algorithm(String),
    #[error("no key for this token")]
    NoKey,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYet,
    #[error("claim '{0}' is missing or wrong")]
    Claim(&'static str),
}

/// A token split and decoded, not yet trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: serde_json::Map<String, Value>,
    /// `header.payload`, the signed bytes.
    pub signed: String,
    pub signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed)
}

/// Whether a bearer token has the shape of a JWT (three base64url parts, a JSON header).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|b| *b == b'.').count() == 2
}

pub fn decode(token: &str) -> Result<Token, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed)?;
    let Value::Object(claims) =
        serde_json::from_slice(&b64(p)?).map_err(|_| JwtError::Malformed)?
    else {
        return Err(JwtError::Malformed);
    };
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?
        .to_owned();
    Ok(Token {
        alg,
        kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
        claims,
        signed: format!("{h}.{p}"),
        signature: b64(s)?,
    })
}

pub fn verify_hs256(token: &Token, secret: &[u8]) -> Result<(), JwtError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| JwtError::NoKey)?;
    mac.update(token.signed.as_bytes());
    mac.verify_slice(&token.signature)
        .map_err(|_| JwtError::Signature)
}

/// An RSA public key from a JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    pub kid: Option<String>,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

/// The RSA signing keys of a JWKS document (`kty` RSA, not marked for encryption only).
pub fn parse_jwks(text: &str) -> Result<Vec<RsaKey>, JwtError> {
    let v: Value = serde_json::from_str(text).map_err(|_| JwtError::Malformed)?;
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwtError::Malformed)?;
    Ok(keys
        .iter()
        .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .filter_map(|k| {
            Some(RsaKey {
                kid: k.get("kid").and_then(Value::as_str).map(str::to_owned),
                n: b64(k.get("n")?.as_str()?).ok()?,
                e: b64(k.get("e")?.as_str()?).ok()?,
            })
        })
        .collect())
}

/// Check an RS256 token with the key its `kid` names (or the only key, when it names none).
pub fn verify_rs256(token: &Token, keys: &[RsaKey]) -> Result<(), JwtError> {
    let key = match &token.kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
    .ok_or(JwtError::NoKey)?;
    ring::signature::RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        token.signed.as_bytes(),
        &token.signature,
    )
    .map_err(|_| JwtError::Signature)
}

/// What a verified token grants: its tenant and its scope names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub tenant: String,
    pub scopes: String,
    /// `sub`: whom the token was issued to, so each user of a tenant has their own rate
    /// limit (`None`: the token names no subject; it counts against its tenant's bucket).
    pub subject: Option<String>,
}

/// The claims every accepted token must satisfy.
#[derive(Debug, Clone, Default)]
pub struct ClaimRules {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The claim naming the tenant (`tenant` by default).
    pub tenant_claim: String,
}

/// `exp` (required), `nbf`, `iss` and `aud` when configured, then the tenant and scopes
/// (`scope` as a space-separated string or `scp` as a list).
pub fn check_claims(token: &Token, rules: &ClaimRules, now: i64) -> Result<Grant, JwtError> {
    let c = &token.claims;
    let exp = c
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(JwtError::Claim("exp"))?;
    if exp + LEEWAY_SECS <= now {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = c.get("nbf") {
        let nbf = nbf.as_i64().ok_or(JwtError::Claim("nbf"))?;
        if nbf - LEEWAY_SECS > now {
            return Err(JwtError::NotYet);
        }
    }
    if let Some(iss) = &rules.issuer
        && c.get("iss").and_then(Value::as_str) != Some(iss.as_str())
    {
        return Err(JwtError::Claim("iss"));
    }
    if let Some(aud) = &rules.audience {
        let ok = match c.get("aud") {
            Some(Value::String(a)) => a == aud,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud.as_str())),
            _ => false,
        };
        if !ok {
            return Err(JwtError::Claim("aud"));
        }
    }
    let claim = if rules.tenant_claim.is_empty() {
        "tenant"
    } else {
        rules.tenant_claim.as_str()
    };
    let tenant = c
        .get(claim)
        .and_then(Value::as_str)
        .filter(|t| super::keys::valid_tenant_id(t))
        .ok_or(JwtError::Claim("tenant"))?
        .to_owned();
    let scopes = match (c.get("scope"), c.get("scp")) {
        (Some(Value::String(s)), _) => s.clone(),
        (_, Some(Value::Array(list))) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    // A subject, when present, must be a usable name (RFC 7519: a string).
    let subject = match c.get("sub") {
        None => None,
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 200 && !s.chars().any(char::is_control) =>
        {
            Some(s.clone())
        }
        Some(_) => return Err(JwtError::Claim("sub")),
    };
    Ok(Grant {
        tenant,
        scopes,
        subject,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    pub fn hs256(claims: &Value, secret: &[u8]) -> String {
        let signed = format!(
            "{}.{}",
            enc(&serde_json::json!({"alg": "HS256", "typ": "JWT"})),
            enc(claims)
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(signed.as_bytes());
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{sig}")
    }

    pub fn rs256(claims: &Value, kid: &str) -> String {
        let key = ring::signature::RsaKeyPair::from_pkcs8(include_bytes!("testdata/rsa_pkcs8.der"))
            .unwrap();
        let signed = format!(
            "{}.{}",
            enc(&serde_json::json!({"alg": "RS256", "kid": kid})),
            enc(claims)
        );
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signed.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!(
            "{signed}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
        )
    }

    pub const JWKS: &str = include_str!("testdata/jwks.json");

    fn rules() -> ClaimRules {
        ClaimRules {
            issuer: Some("https://idp.example".into()),
            audience: Some("switchboard".into()),
            tenant_claim: "tenant".into(),
        }
    }

    fn claims(exp: i64) -> Value {
        serde_json::json!({"iss": "https://idp.example", "aud": ["x", "switchboard"],
            "tenant": "acme", "scope": "chat realtime", "exp": exp})
    }

    #[test]
    fn hs256_tokens_verify_and_their_claims_are_checked() {
        let t = decode(&hs256(&claims(2_000), b"s3cret")).unwrap();
        assert_eq!(verify_hs256(&t, b"s3cret"), Ok(()));
        assert_eq!(verify_hs256(&t, b"other"), Err(JwtError::Signature));
        let g = check_claims(&t, &rules(), 1_000).unwrap();
        assert_eq!(
            g,
            Grant {
                tenant: "acme".into(),
                scopes: "chat realtime".into(),
                subject: None,
            }
        );
        let mut with_sub = claims(2_000);
        with_sub["sub"] = "user-7".into();
        let t = decode(&hs256(&with_sub, b"s3cret")).unwrap();
        let g = check_claims(&t, &rules(), 1_000).unwrap();
        assert_eq!(g.subject.as_deref(), Some("user-7"));
        for bad in [
            serde_json::json!(7),
            serde_json::json!(""),
            serde_json::json!("a\nb"),
        ] {
            with_sub["sub"] = bad;
            let t = decode(&hs256(&with_sub, b"s3cret")).unwrap();
            assert_eq!(
                check_claims(&t, &rules(), 1_000),
                Err(JwtError::Claim("sub"))
            );
        }
        assert_eq!(
            check_claims(&t, &rules(), 2_000 + LEEWAY_SECS),
            Err(JwtError::Expired)
        );
        let mut wrong_aud = rules();
        wrong_aud.audience = Some("nope".into());
        assert_eq!(
            check_claims(&t, &wrong_aud, 1_000),
            Err(JwtError::Claim("aud"))
        );
        let bad_tenant = decode(&hs256(
            &serde_json::json!({"exp": 2_000, "tenant": "A B"}),
            b"k",
        ))
        .unwrap();
        assert_eq!(
            check_claims(&bad_tenant, &ClaimRules::default(), 1_000),
            Err(JwtError::Claim("tenant"))
        );
        let no_exp = decode(&hs256(&serde_json::json!({"tenant": "acme"}), b"k")).unwrap();
        assert_eq!(
            check_claims(&no_exp, &ClaimRules::default(), 1_000),
            Err(JwtError::Claim("exp"))
        );
    }

    #[test]
    fn rs256_tokens_verify_with_the_jwks_key() {
        let keys = parse_jwks(JWKS).unwrap();
        assert_eq!(keys.len(), 1);
        let t = decode(&rs256(&claims(2_000), "test-1")).unwrap();
        assert_eq!(verify_rs256(&t, &keys), Ok(()));
        let unknown = decode(&rs256(&claims(2_000), "other")).unwrap();
        assert_eq!(verify_rs256(&unknown, &keys), Err(JwtError::NoKey));
        // A changed claim breaks the signature.
        let mut forged = t.clone();
        forged.signed = forged.signed.replace('.', ".e");
        assert_eq!(verify_rs256(&forged, &keys), Err(JwtError::Signature));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "eyJ.eyJ.x",
            "!!.!!.!!",
            &"x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        let alg_none = format!(
            "{}.{}.",
            enc(&serde_json::json!({"alg": "none"})),
            enc(&claims(2_000))
        );
        assert_eq!(decode(&alg_none).unwrap().alg, "none");
        assert!(looks_like_jwt(&hs256(&claims(1), b"k")) && !looks_like_jwt("sb_abc"));
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in "[A-Za-z0-9_.=-]{0,300}") {
            let _ = decode(&s);
        }

        #[test]
        fn any_changed_byte_breaks_an_hs256_signature(i in 0usize..200, b in any::<u8>()) {
            let token = hs256(&claims(2_000), b"k");
            let mut bytes = token.into_bytes();
            let i = i % bytes.len();
            prop_assume!(bytes[i] != b && bytes[i] != b'.' && b != b'.');
            bytes[i] = b;
            let changed = String::from_utf8_lossy(&bytes).into_owned();
            prop_assert!(decode(&changed).and_then(|t| verify_hs256(&t, b"k")).is_err());
        }
    }
}
