//! OpenAPI import end to end: the order system's own document becomes proposed tools, which
//! do nothing until approved; once approved they are live at once (a lookup runs, a
//! cancellation asks first) and after a restart. The CLI prints the same proposals.

use serde_json::{Value, json};
use switchboard_e2e::fake_orders::{FakeOrders, OPENAPI};
use switchboard_e2e::gateway::{
    Gateway, TestDatabase, chat_completion, http_get, http_post_json, reply_text,
};
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

fn json_of(r: Option<(u16, String)>) -> (u16, Value) {
    let (status, body) = r.expect("the gateway answers");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[test]
fn imported_tools_are_live_only_after_approval() {
    let orders = FakeOrders::start();
    let llm = ScriptedLlm::start(Script::default());
    // On PostgreSQL: the import and installed-tool queries run on both databases (the
    // other tool tests use SQLite).
    let db = TestDatabase::new("openapi");
    let allow = orders.addr.to_string();
    let env = [
        ("SWITCHBOARD_OUTBOUND_ALLOW", allow.as_str()),
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
    ];
    let gw = Gateway::start(&[llm.base_url()], &env);

    // The document is refused with reasons when it cannot become tools.
    for (doc, query, param) in [
        ("{", "", "body"),
        (r#"{"swagger": "2.0", "paths": {}}"#, "", "body"),
        (OPENAPI, "?persona=nobody", "persona"),
    ] {
        let (status, v) = json_of(http_post_json(
            gw.addr,
            &format!("/v1/admin/openapi/import{query}"),
            doc,
        ));
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["param"], param, "{v}");
    }

    // The document's own server is not reachable here: the import names the real base URL.
    let (_, served) =
        http_get(orders.addr, "/openapi.json").expect("the order system serves its document");
    let path = format!("/v1/admin/openapi/import?base_url={}", orders.base_url());
    let (status, import) = json_of(http_post_json(gw.addr, &path, &served));
    assert_eq!(status, 201, "{import}");
    assert_eq!(import["status"], "proposed");
    let effect = |name: &str| {
        import["proposals"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["tool"]["name"] == name)
            .map(|p| p["tool"]["effect"].clone())
    };
    assert_eq!(effect("getOrder"), Some(json!("read")));
    assert_eq!(effect("cancelOrder"), Some(json!("dangerous")), "{import}");
    let id = import["id"].as_str().expect("an import id").to_owned();

    // Proposed is not live.
    llm.call_tool("where", "getOrder", json!({"order_id": "42"}));
    let v = chat_completion(&gw, "s-before", &[("user", "Where is my order?")]);
    assert!(!reply_text(&v).contains("shipped"), "{v}");
    assert!(orders.seen().is_empty(), "no tool ran before approval");

    let (status, approved) = json_of(http_post_json(
        gw.addr,
        &format!("/v1/admin/openapi/imports/{id}/approve"),
        r#"{"tools": ["getOrder", "cancelOrder"]}"#,
    ));
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["installed"].as_array().map(Vec::len), Some(2));

    let v = chat_completion(&gw, "s-after", &[("user", "Where is my order?")]);
    assert!(reply_text(&v).contains("shipped"), "{v}");
    assert_eq!(orders.seen()[0].path, "/orders/42");

    // The imported write still asks first.
    llm.call_tool(
        "cancel",
        "cancelOrder",
        json!({"order_id": "7", "reason": "too late"}),
    );
    let ask = [("user", "Cancel order 7 please.")];
    let v = chat_completion(&gw, "s-cancel", &ask);
    let question = reply_text(&v);
    assert!(question.contains("Shall I go ahead?"), "{question}");
    assert_eq!(orders.status_of("7").as_deref(), Some("processing"));
    let v = chat_completion(
        &gw,
        "s-cancel",
        &[ask[0], ("assistant", &question), ("user", "yes")],
    );
    assert!(reply_text(&v).contains("cancelled"), "{v}");
    assert_eq!(orders.status_of("7").as_deref(), Some("cancelled"));

    // Approved tools survive a restart.
    drop(gw);
    let gw = Gateway::start(&[llm.base_url()], &env);
    let (_, tools) = json_of(http_get(gw.addr, "/v1/admin/tools"));
    let names: Vec<&str> = tools["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["cancelOrder", "getOrder"], "{tools}");
}

#[test]
fn the_cli_prints_proposals_for_review() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("orders.json");
    std::fs::write(&file, OPENAPI).expect("write");
    let out = switchboard_e2e::run(&[
        "tools",
        "import",
        file.to_str().expect("utf-8"),
        "--base-url",
        "http://orders.internal:8080",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proposals: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let get = proposals
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["tool"]["name"] == "getOrder")
        .expect("getOrder proposed");
    assert_eq!(
        get["tool"]["http"]["url"],
        "http://orders.internal:8080/orders/{order_id}"
    );
    assert_eq!(get["operation"], "GET /orders/{order_id}");

    std::fs::write(&file, "openapi: 2.0\n").expect("write");
    let out = switchboard_e2e::run(&["tools", "import", file.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
