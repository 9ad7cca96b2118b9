//! Durable state through the real binary, the same suite on both databases: embedded SQLite
//! and a real PostgreSQL server. Chat turns are stored in their sessions (a hung-up reply
//! marked truncated), names and facts are learned into profile and memory and reach later
//! prompts, and everything survives a restart.

use std::ffi::OsStr;

use switchboard_e2e::gateway::{Gateway, http_get};
use switchboard_e2e::python::run_sdk_script;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

fn suite(database_url: Option<&str>) {
    let llm = ScriptedLlm::start(Script::default());
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let mut env = vec![("SWITCHBOARD_DATA_DIR", data_dir)];
    if let Some(url) = database_url {
        env.push(("SWITCHBOARD_DATABASE_URL", url));
    }
    let gw = Gateway::start(&[llm.base_url()], &env);
    run_sdk_script(
        "sessions_api.py",
        &[OsStr::new(&format!("http://{}/v1", gw.addr))],
    );

    // The prompt of the s-2 turn (the third request) carries profile and memory, in its
    // latest user message before the user's words; the system prompt stays the persona's.
    let requests = llm.requests();
    let messages = requests[2]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let in_system = messages
        .iter()
        .any(|m| m["role"] == "system" && m["content"].to_string().contains("name: Ada"));
    let question = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    assert!(
        question.contains("name: Ada"),
        "no profile in the prompt: {question}"
    );
    assert!(
        question.contains("My name is Ada and I am vegetarian"),
        "no memory in the prompt: {question}"
    );
    assert!(
        question.contains("\n\n## The user's message\n") && !in_system,
        "context outside the user's message: {messages:?}"
    );
    // The long session's last turn sent only its newest message: the rolling summary of
    // the older ones stands in for them in the prompt.
    let dessert = requests
        .iter()
        .rev()
        .find(|r| {
            r["messages"]
                .to_string()
                .contains("And what about dessert?")
        })
        .expect("the dessert turn reached the LLM");
    let system = dessert["messages"][0]["content"].as_str().unwrap_or("");
    assert!(
        system.contains("## Earlier in this conversation"),
        "no summary of older turns in the prompt: {system}"
    );
    // The summaries were asked for as background work with the summary instructions.
    assert!(
        requests.iter().any(|r| r["messages"][0]["content"]
            .as_str()
            .is_some_and(|s| s.starts_with("Update the summary of a conversation"))),
        "no rolling-summary request"
    );
    // Every queued write (audit entries included) lands.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let metrics = loop {
        let m = gw.metrics();
        if m.contains("switchboard_store_pending_writes 0") || std::time::Instant::now() > deadline
        {
            break m;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        metrics.contains("switchboard_store_pending_writes 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switchboard_store_writes_total{kind="messages"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switchboard_store_writes_total{kind="audit"}"#),
        "{metrics}"
    );

    // A restart on the same database keeps every session.
    drop(gw);
    let gw = Gateway::start(&[llm.base_url()], &env);
    let (status, body) = http_get(gw.addr, "/v1/sessions/s-1").expect("answers");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("What should I eat tonight?"), "{body}");
}

#[test]
fn sqlite_stores_sessions_profiles_and_memories() {
    suite(None);
}

#[test]
fn postgres_stores_sessions_profiles_and_memories() {
    // Dropped (after the gateways) when the test ends.
    let db = switchboard_e2e::gateway::TestDatabase::new("test");
    suite(Some(&db.url));
}
