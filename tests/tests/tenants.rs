//! Tenants through the real binary: keys made over the admin API and with the CLI, every
//! resource of one tenant invisible (404) to another, scopes, revocation, expiry and the
//! per-session limit (tests/python/tenant_isolation.py drives the HTTP side with httpx and
//! the official `openai` SDK). Tenant A's document must not reach tenant B's prompt.

use std::ffi::OsStr;

use switchboard_e2e::gateway::{Gateway, TestDatabase};
use switchboard_e2e::python::run_sdk_script;
use switchboard_e2e::run;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

const OPERATOR_KEY: &str = "op-test-key-0123456789";

fn isolation_suite(database_url: Option<&str>) {
    let llm = ScriptedLlm::start(Script::default());
    let mut env = vec![
        ("SWITCHBOARD_API_KEYS", OPERATOR_KEY),
        ("SWITCHBOARD_RATE_PER_SESSION", "3/10s"),
    ];
    if let Some(url) = database_url {
        env.push(("SWITCHBOARD_DATABASE_URL", url));
    }
    let gw = Gateway::start(&[llm.base_url()], &env);
    run_sdk_script(
        "tenant_isolation.py",
        &[
            OsStr::new(&format!("http://{}/v1", gw.addr)),
            OsStr::new(OPERATOR_KEY),
        ],
    );
    let prompt_of = |marker: &str| {
        llm.requests()
            .into_iter()
            .find(|r| r.to_string().contains(marker))
            .unwrap_or_else(|| panic!("no request with {marker}"))
            .to_string()
    };
    assert!(
        prompt_of("A asks").contains("ZEBRA-4471"),
        "tenant A's own document should reach its prompt"
    );
    assert!(
        !prompt_of("B asks").contains("ZEBRA-4471"),
        "tenant A's document reached tenant B's prompt"
    );
    let metrics = gw.metrics();
    assert!(
        metrics.contains(r#"switchboard_rate_limited_total{rule="session"} 1"#),
        "{metrics}"
    );
}

#[test]
fn tenants_are_isolated_on_sqlite() {
    isolation_suite(None);
}

#[test]
fn tenants_are_isolated_on_postgres() {
    let db = TestDatabase::new("tenants");
    isolation_suite(Some(&db.url));
}

/// `switchboard keys create|list|revoke` on the database a gateway then serves from.
#[test]
fn keys_made_with_the_cli_open_and_close_the_gateway() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let out = run(&[
        "keys",
        "create",
        "--tenant",
        "initech",
        "--scopes",
        "chat",
        "--data-dir",
        dir,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(key.starts_with("sb_"), "{key}");
    let listed = run(&["keys", "list", "--tenant", "initech", "--data-dir", dir]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["scopes"], "chat");
    assert!(
        !listed.to_string().contains(&key[20..]),
        "the secret is never listed"
    );
    let bad = run(&["keys", "create", "--scopes", "root", "--data-dir", dir]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope 'root'"));

    // A stored key closes open mode: anonymous requests are refused, the key works.
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_DATA_DIR", dir)]);
    let (status, _) = gw.get_with_key("/v1/models", None);
    assert_eq!(status, 401);
    let (status, body) = gw.get_with_key("/v1/models", Some(&key));
    assert_eq!(status, 200, "{body}");
    let (status, _) = gw.get_with_key("/v1/sessions", Some(&key));
    assert_eq!(status, 403, "a chat key has no admin scope");

    let out = run(&["keys", "revoke", &id, "--data-dir", dir]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Other processes see a revocation within the 5 s key cache.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    loop {
        let (status, _) = gw.get_with_key("/v1/models", Some(&key));
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "revoked key still works"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// JWTs from an identity provider: RS256 with the JWKS served over HTTP (a stand-in for the
/// provider's `/.well-known/jwks.json`), HS256 with a shared secret.
#[test]
fn jwt_bearer_tokens_carry_their_tenant_and_scopes() {
    let testdata =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/src/auth/testdata");
    let jwks = std::fs::read_to_string(testdata.join("jwks.json")).unwrap();
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&fetches);
    let idp = switchboard_e2e::serve_on_thread(axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = jwks.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    ));
    let llm = ScriptedLlm::start(Script::default());
    let jwks_url = format!("http://{idp}/.well-known/jwks.json");
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_JWT_JWKS", jwks_url.as_str()),
            ("SWITCHBOARD_JWT_HS256_SECRET", "hs-shared-secret"),
            ("SWITCHBOARD_JWT_ISSUER", "https://idp.example"),
            ("SWITCHBOARD_JWT_AUDIENCE", "switchboard"),
            ("SWITCHBOARD_JWT_TENANT_CLAIM", "org"),
        ],
    );
    run_sdk_script(
        "jwt_tokens.py",
        &[
            OsStr::new(&format!("http://{}/v1", gw.addr)),
            testdata.join("rsa_pkcs8.der").as_os_str(),
            OsStr::new("hs-shared-secret"),
        ],
    );
    // Fetched at first use and once more for the unknown key id, not per request.
    let n = fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=2).contains(&n), "{n} JWKS fetches");
}

/// An HS256 token for `org`, issued to `sub`, made by PyJWT as an identity provider would.
fn hs256_token(secret: &str, org: &str, sub: &str) -> String {
    let script = "import jwt,sys,time; print(jwt.encode({'org': sys.argv[2], 'sub': sys.argv[3], 'scope': 'chat', 'exp': int(time.time()) + 600}, sys.argv[1], algorithm='HS256'))";
    let out = std::process::Command::new("python3")
        .args(["-c", script, secret, org, sub])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn each_jwt_subject_has_its_own_rate_limit() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(
        &[llm.base_url()],
        &[
            ("SWITCHBOARD_JWT_HS256_SECRET", "hs-shared-secret"),
            ("SWITCHBOARD_JWT_TENANT_CLAIM", "org"),
            ("SWITCHBOARD_RATE_PER_KEY", "3/1m"),
        ],
    );
    let alice = hs256_token("hs-shared-secret", "acme", "alice");
    let bob = hs256_token("hs-shared-secret", "acme", "bob");
    let models = |token: &str| gw.get_with_key("/v1/models", Some(token)).0;
    for _ in 0..3 {
        assert_eq!(models(&alice), 200);
    }
    assert_eq!(models(&alice), 429, "alice used her three");
    // Same tenant, another user: a bucket of their own.
    for _ in 0..3 {
        assert_eq!(models(&bob), 200);
    }
    assert_eq!(models(&bob), 429);
}
