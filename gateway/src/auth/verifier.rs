//! The configured JWT verifier: which algorithms are on (`SWITCHBOARD_JWT_HS256_SECRET`,
//! `SWITCHBOARD_JWT_JWKS`), the claim rules, and the JWKS keys — read from a file, or
//! fetched from a URL at start, every 10 minutes, and again (at most every 30 s) when a
//! token names a key id not seen yet (the identity provider rotated its keys).

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use clap::Args;

use super::jwt::{self, ClaimRules, Grant, JwtError, RsaKey};

const REFRESH: Duration = Duration::from_secs(600);
const MIN_REFETCH: Duration = Duration::from_secs(30);

#[derive(Debug, Args, Clone, Default)]
pub struct JwtArgs {
    /// Accept HS256 JWTs signed with this shared secret.
    #[arg(long, env = "SWITCHBOARD_JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,
    /// Accept RS256 JWTs signed by a key of this JWKS: a file, or an http(s) URL.
    #[arg(long, env = "SWITCHBOARD_JWT_JWKS")]
    pub jwt_jwks: Option<String>,
    /// Required `iss` claim.
    #[arg(long, env = "SWITCHBOARD_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim (one of the token's audiences).
    #[arg(long, env = "SWITCHBOARD_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The claim that names the tenant.
    #[arg(long, env = "SWITCHBOARD_JWT_TENANT_CLAIM", default_value = "tenant")]
    pub jwt_tenant_claim: String,
}

enum Source {
    File(PathBuf),
    Url(String),
}

pub struct JwtVerifier {
    hs256: Option<Vec<u8>>,
    source: Option<Source>,
    keys: RwLock<(Option<Instant>, Vec<RsaKey>)>,
    fetching: tokio::sync::Mutex<()>,
    rules: ClaimRules,
    /// Made on first fetch (the TLS provider is installed by then: the gateway's outbound
    /// client is built at start).
    http: std::sync::OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("hs256", &self.hs256.is_some())
            .field("jwks", &self.source.is_some())
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// `None` when neither algorithm is configured. A JWKS file that cannot be read or
    /// parsed is an error at start; a URL is fetched on first use.
    pub fn new(args: &JwtArgs) -> anyhow::Result<Option<Self>> {
        let source = args.jwt_jwks.as_ref().map(|s| {
            if s.starts_with("http://") || s.starts_with("https://") {
                Source::Url(s.clone())
            } else {
                Source::File(PathBuf::from(s))
            }
        });
        let hs256 = args
            .jwt_hs256_secret
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec());
        if hs256.is_none() && source.is_none() {
            return Ok(None);
        }
        let mut keys = Vec::new();
        if let Some(Source::File(path)) = &source {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("SWITCHBOARD_JWT_JWKS {}: {e}", path.display()))?;
            keys = jwt::parse_jwks(&text)
                .map_err(|e| anyhow::anyhow!("SWITCHBOARD_JWT_JWKS {}: {e}", path.display()))?;
            if keys.is_empty() {
                anyhow::bail!(
                    "SWITCHBOARD_JWT_JWKS {}: no RSA signing keys",
                    path.display()
                );
            }
        }
        let loaded = matches!(source, Some(Source::File(_))).then(Instant::now);
        Ok(Some(Self {
            hs256,
            source,
            keys: RwLock::new((loaded, keys)),
            fetching: tokio::sync::Mutex::new(()),
            rules: ClaimRules {
                issuer: args.jwt_issuer.clone(),
                audience: args.jwt_audience.clone(),
                tenant_claim: args.jwt_tenant_claim.clone(),
            },
            http: std::sync::OnceLock::new(),
        }))
    }

    /// Verify a token: its tenant and scopes, or why not.
    pub async fn verify(&self, token: &str) -> Result<Grant, JwtError> {
        let t = jwt::decode(token)?;
        match t.alg.as_str() {
            "HS256" => jwt::verify_hs256(&t, self.hs256.as_deref().ok_or(JwtError::NoKey)?)?,
            "RS256" if self.source.is_some() => {
                let keys = self.keys_for(t.kid.as_deref()).await;
                jwt::verify_rs256(&t, &keys)?;
            }
            other => return Err(JwtError::Algorithm(other.to_owned())),
        }
        jwt::check_claims(&t, &self.rules, crate::store::now_ms() / 1000)
    }

    /// The JWKS keys, fetched again when stale or when `kid` is not among them.
    async fn keys_for(&self, kid: Option<&str>) -> Vec<RsaKey> {
        let (fetched, keys) = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let known = kid.is_none_or(|k| keys.iter().any(|key| key.kid.as_deref() == Some(k)));
        let Some(Source::Url(url)) = &self.source else {
            return keys;
        };
        let stale = fetched.is_none_or(|at| at.elapsed() > REFRESH);
        let may_refetch = fetched.is_none_or(|at| at.elapsed() > MIN_REFETCH);
        if !(stale || (!known && may_refetch)) {
            return keys;
        }
        let _one = self.fetching.lock().await;
        match self.fetch(url).await {
            Ok(fresh) => {
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) =
                    (Some(Instant::now()), fresh.clone());
                fresh
            }
            Err(e) => {
                tracing::warn!(%url, error = %e, "JWKS fetch failed; keeping the keys we have");
                // Do not ask again for MIN_REFETCH.
                let mut guard = self.keys.write().unwrap_or_else(|p| p.into_inner());
                guard.0 = Some(Instant::now() - REFRESH + MIN_REFETCH);
                guard.1.clone()
            }
        }
    }

    async fn fetch(&self, url: &str) -> anyhow::Result<Vec<RsaKey>> {
        let http = self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default()
        });
        let text = http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(jwt::parse_jwks(&text)?)
    }
}
