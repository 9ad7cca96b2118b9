//! API keys: their format, scopes, and the hash that is stored instead of the key.
//!
//! A key reads `sb_<16 hex>_<43 base64url>`: the hex digits are its public id (listed as
//! `key_<16 hex>`, used to find it without knowing its tenant), the rest is 32 random bytes
//! of secret. Only SHA-256 of the secret is stored; a 256-bit random secret needs no slow
//! password hash.

use base64::Engine;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sb_";

/// What a key (or token) may do. Every route names the scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Realtime calls (WebSocket, WebRTC, client secrets, hang-up), phone streams.
    Realtime,
    /// Chat completions, the chat socket, knowledge search, models.
    Chat,
    /// Speech synthesis and transcription.
    Audio,
    /// The tenant's sessions, profiles, memories, documents, actions, tools, keys.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Realtime, Scope::Chat, Scope::Audio, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Realtime => "realtime",
            Scope::Chat => "chat",
            Scope::Audio => "audio",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Self {
        Self(Scope::ALL.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn is_subset_of(self, other: Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    /// Scope names separated by spaces or commas; an unknown name is an error naming it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut bits = 0;
        for name in text
            .split([' ', ',', '\t'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    format!("unknown scope '{name}' (known: realtime, chat, audio, admin)")
                })?;
            bits |= scope.bit();
        }
        Ok(Self(bits))
    }

    /// The scope names we know among `text` (a token's `scope` claim also carries the
    /// identity provider's own, like `openid`).
    pub fn parse_known(text: &str) -> Self {
        Self(
            text.split([' ', ','])
                .filter_map(|n| Scope::ALL.into_iter().find(|s| s.name() == n))
                .fold(0, |acc, s| acc | s.bit()),
        )
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::name)
            .collect()
    }

    /// Space-separated, as stored.
    pub fn render(self) -> String {
        self.names().join(" ")
    }
}

/// A newly made key: the full key (shown once), its id and the hash to store.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    pub id: String,
    pub secret_sha256: String,
}

pub fn generate() -> NewKey {
    let id_bytes: [u8; 8] = rand::random();
    let secret_bytes: [u8; 32] = rand::random();
    let hex = to_hex(&id_bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
    NewKey {
        key: format!("{PREFIX}{hex}_{secret}"),
        id: format!("key_{hex}"),
        secret_sha256: sha256_hex(&secret),
    }
}

/// A presented token that has the shape of a stored key: its id and the hash of its secret.
pub fn parse(token: &str) -> Option<(String, String)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (hex, secret) = rest.split_once('_')?;
    let hex_ok = hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (hex_ok && secret_ok).then(|| {
        (
            format!("key_{}", hex.to_ascii_lowercase()),
            sha256_hex(secret),
        )
    })
}

/// Whether a token looks like one of our keys (so a wrong one is refused, not ignored).
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

fn sha256_hex(text: &str) -> String {
    to_hex(&Sha256::digest(text.as_bytes()))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tenant ids: 1 to 64 of `a-z 0-9 - _`, starting with a letter or digit.
pub fn valid_tenant_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && id.as_bytes()[0].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_back_to_its_id_and_hash() {
        let k = generate();
        assert_eq!(k.key.len(), 3 + 16 + 1 + 43);
        let (id, hash) = parse(&k.key).unwrap();
        assert_eq!((id, hash), (k.id.clone(), k.secret_sha256.clone()));
        // One character changed: same id, another hash.
        let mut other = k.key.clone();
        let last = other.pop().unwrap();
        other.push(if last == 'A' { 'B' } else { 'A' });
        assert_ne!(parse(&other).unwrap().1, k.secret_sha256);
        for bad in ["", "sb_", "sb_zz_abc", "sk-test", &k.key[..k.key.len() - 1]] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scopes_parse_render_and_compare() {
        let s = Scopes::parse("chat, realtime").unwrap();
        assert!(s.contains(Scope::Chat) && !s.contains(Scope::Admin));
        assert_eq!(s.render(), "realtime chat");
        assert_eq!(Scopes::parse(&s.render()).unwrap(), s);
        assert!(s.is_subset_of(Scopes::all()) && !Scopes::all().is_subset_of(s));
        assert!(Scopes::parse("chat sudo").unwrap_err().contains("sudo"));
        assert_eq!(Scopes::parse("").unwrap(), Scopes::default());
    }

    #[test]
    fn tenant_ids() {
        for ok in ["acme", "a", "team-2_b"] {
            assert!(valid_tenant_id(ok), "{ok}");
        }
        for bad in ["", "-a", "Acme", "a b", "a/b", &"x".repeat(65)] {
            assert!(!valid_tenant_id(bad), "{bad}");
        }
    }
}
