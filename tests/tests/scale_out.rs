//! Many instances: two gateway processes on one PostgreSQL database and one Redis share
//! their rate limits; Redis killed and restarted mid-test degrades limits to local counting
//! and recovers; SIGTERM drains a live call.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_e2e::gateway::{Gateway, TestDatabase, http, http_get, sample};
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::redis::RedisServer;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

const KEY: &str = "op-scale-key-0123456789";

/// GET /v1/models with the operator key: the status, and Retry-After when refused.
fn models(gw: &Gateway) -> (u16, Option<String>) {
    let auth = format!("Bearer {KEY}");
    let r = http(
        gw.addr,
        "GET",
        "/v1/models",
        &[("Authorization", &auth)],
        None,
    )
    .expect("gateway answers");
    (r.status, r.header("retry-after").map(str::to_owned))
}

fn metric(gw: &Gateway, line_start: &str) -> Option<f64> {
    sample(&gw.metrics(), line_start)
}

/// Two gateways on one fresh PostgreSQL database and one Redis of the test's own, with the
/// operator key and `extra` settings.
struct Pair {
    a: Gateway,
    b: Gateway,
    redis: RedisServer,
    _db: TestDatabase,
}

fn pair(llm: &ScriptedLlm, name: &str, extra: &[(&str, &str)]) -> Pair {
    let db = TestDatabase::new(name);
    let redis = RedisServer::start();
    let url = redis.url();
    let mut env = vec![
        ("SWITCHBOARD_API_KEYS", KEY),
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_REDIS_URL", url.as_str()),
    ];
    env.extend_from_slice(extra);
    let a = Gateway::start(&[llm.base_url()], &env);
    let b = Gateway::start(&[llm.base_url()], &env);
    Pair {
        a,
        b,
        redis,
        _db: db,
    }
}

#[test]
fn two_instances_share_a_rate_limit_through_redis_which_may_fail_and_return() {
    let llm = ScriptedLlm::start(Script::default());
    // 6 per minute: the test's requests never earn a new one back.
    let Pair {
        a,
        b,
        mut redis,
        _db,
    } = pair(&llm, "scale", &[("SWITCHBOARD_RATE_PER_KEY", "6/1m")]);

    for gw in [&a, &b, &a, &b, &a, &b] {
        assert_eq!(models(gw).0, 200);
    }
    // The seventh, on either instance, is over the key's limit: each instance alone has
    // seen only three.
    for gw in [&a, &b] {
        let (status, retry) = models(gw);
        assert_eq!(status, 429);
        let retry: u64 = retry.expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
    assert_eq!(metric(&a, "switchboard_redis_up"), Some(1.0));

    // Redis dies: requests are still answered, counted locally (each instance's own bucket
    // is fresh), and the metrics say so.
    redis.stop();
    let started = Instant::now();
    assert_eq!(models(&a).0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a Redis outage must not stall requests: {:?}",
        started.elapsed()
    );
    for _ in 0..3 {
        assert_eq!(models(&a).0, 200);
    }
    assert_eq!(metric(&a, "switchboard_redis_up"), Some(0.0));
    assert!(metric(&a, r#"switchboard_rate_limit_local_total{rule="key"}"#).unwrap_or(0.0) >= 4.0);
    assert!(
        metric(&a, r#"switchboard_redis_errors_total{op="#).unwrap_or(0.0) >= 1.0,
        "{}",
        a.metrics()
    );
    // Locally the limit still holds per instance: 6 allowed, then refused.
    for _ in 0..2 {
        assert_eq!(models(&a).0, 200);
    }
    assert_eq!(models(&a).0, 429);

    // Redis returns (empty): after the retry interval both instances share it again.
    redis.restart();
    std::thread::sleep(Duration::from_millis(1200));
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&b, "switchboard_redis_up") != Some(1.0)
        || metric(&a, "switchboard_redis_up") != Some(1.0)
    {
        let _ = models(&a);
        let _ = models(&b);
        assert!(
            Instant::now() < deadline,
            "Redis use did not recover:\n{}",
            a.metrics()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Shared again: whatever the two probes above used, seven more requests across both
    // instances cannot all pass.
    let refused = [&a, &b, &a, &b, &a, &b, &a]
        .iter()
        .filter(|gw| models(gw).0 == 429)
        .count();
    assert!(
        refused >= 1,
        "the shared limit is not enforced after Redis returned"
    );
}

#[test]
fn sigterm_turns_unready_refuses_new_calls_and_lets_a_live_call_finish() {
    let llm = ScriptedLlm::start(Script {
        reply: "Still here.".into(),
        ..Script::default()
    });
    let mut gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_DRAIN_SECS", "60")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut call = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        gw.terminate();
        // Unready at once, so a load balancer stops sending.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let (status, body) = http_get(gw.addr, "/readyz").expect("still answers");
            if status == 503 {
                assert!(body.contains("draining"), "{body}");
                break;
            }
            assert!(Instant::now() < deadline, "still ready after SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A new call is refused; the live one goes on and is answered.
        assert!(RealtimeClient::connect(&gw.ws_url()).await.is_err());
        call.send(
            json!({"type": "conversation.item.create", "item": {"type": "message",
            "role": "user", "content": [{"type": "input_text", "text": "Are you there?"}]}}),
        )
        .await
        .unwrap();
        call.send(json!({"type": "response.create"})).await.unwrap();
        let done = call
            .wait_for("response.done", Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            done.event["response"]["status"], "completed",
            "{}",
            done.event
        );
        assert!(
            gw.wait_exit(Duration::from_millis(300)).is_none(),
            "exited with a live call"
        );
        call.close().await;
    });
    // The call over, the process ends by itself, cleanly.
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the drain");
    assert!(status.success(), "{status}");
}

/// POST a JSON body with a bearer key: status and body.
fn post(gw: &Gateway, path: &str, key: &str, body: serde_json::Value) -> (u16, String) {
    let auth = format!("Bearer {key}");
    let r = http(
        gw.addr,
        "POST",
        path,
        &[("Authorization", &auth)],
        Some(&body.to_string()),
    )
    .expect("gateway answers");
    (r.status, r.body)
}

fn live_calls(gw: &Gateway, key: &str) -> Vec<serde_json::Value> {
    let auth = format!("Bearer {key}");
    let r = http(
        gw.addr,
        "GET",
        "/v1/calls",
        &[("Authorization", &auth)],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    v["data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn control_sent_to_one_instance_reaches_a_call_on_the_other() {
    let llm = ScriptedLlm::start(Script {
        reply: "Hello from the first instance.".into(),
        ..Script::default()
    });
    let Pair {
        a,
        b,
        redis: _redis,
        _db,
    } = pair(&llm, "registry", &[]);
    // Another tenant, with a key of its own.
    assert_eq!(
        post(&b, "/v1/admin/tenants", KEY, json!({"id": "rival"})).0,
        201
    );
    let (status, made) = post(
        &b,
        "/v1/admin/keys",
        KEY,
        json!({"tenant": "rival", "name": "r"}),
    );
    assert_eq!(status, 201, "{made}");
    let made: serde_json::Value = serde_json::from_str(&made).unwrap();
    let rival = made["key"].as_str().unwrap().to_owned();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut call = RealtimeClient::connect_with_key(&a.ws_url(), Some(KEY))
            .await
            .unwrap();
        let id = call.log[0].event["session"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // B lists the call, held by A's instance.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listed = loop {
            if let Some(c) = live_calls(&b, KEY)
                .into_iter()
                .find(|c| c["id"] == id.as_str())
            {
                break c;
            }
            assert!(
                Instant::now() < deadline,
                "the call never appeared in the registry"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(listed["channel"], "realtime");
        let (_, ready_b) = http_get(b.addr, "/readyz").unwrap();
        assert!(
            !ready_b.contains(listed["instance"].as_str().unwrap()),
            "listed on the wrong instance"
        );

        // The other tenant neither sees nor touches it.
        assert!(
            live_calls(&b, &rival)
                .iter()
                .all(|c| c["id"] != id.as_str())
        );
        let hangup = format!("/v1/calls/{id}/hangup");
        let (status, body) = post(&b, &hangup, &rival, json!({}));
        assert_eq!(status, 404, "{body}");

        // A message injected through B is answered on A's call.
        let (status, body) = post(
            &b,
            &format!("/v1/calls/{id}/messages"),
            KEY,
            json!({"role": "user", "text": "Please say hello.", "respond": true}),
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("remote"), "{body}");
        let done = call
            .wait_for("response.done", Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            done.event["response"]["status"], "completed",
            "{}",
            done.event
        );
        let asked = llm.requests().last().unwrap().to_string();
        assert!(asked.contains("Please say hello."), "{asked}");

        // A hang-up sent to B ends the call on A.
        let (status, body) = post(&b, &hangup, KEY, json!({}));
        assert_eq!(status, 200, "{body}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while call.next(Duration::from_secs(5)).await.is_some() {
            assert!(Instant::now() < deadline, "the call did not end");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while live_calls(&b, KEY).iter().any(|c| c["id"] == id.as_str()) {
            assert!(
                Instant::now() < deadline,
                "the ended call stayed registered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, _) = post(&b, &hangup, KEY, json!({}));
        assert_eq!(status, 404);
    });
    assert!(
        b.metrics()
            .contains(r#"switchboard_call_controls_total{action="hangup",route="remote"} 1"#),
        "{}",
        b.metrics()
    );
}

/// `SWITCHBOARD_MAX_CALLS_PER_TENANT` holds across instances: with one call of the tenant
/// live on A, a second on B is refused (429) until the first ends.
#[test]
fn calls_per_tenant_are_capped_across_instances() {
    let llm = ScriptedLlm::start(Script::default());
    let Pair {
        a,
        b,
        redis: _redis,
        _db,
    } = pair(
        &llm,
        "callcap",
        &[("SWITCHBOARD_MAX_CALLS_PER_TENANT", "1")],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let first = RealtimeClient::connect_with_key(&a.ws_url(), Some(KEY))
            .await
            .unwrap();
        let refused = RealtimeClient::connect_with_key(&b.ws_url(), Some(KEY)).await;
        let err = refused
            .err()
            .expect("a second call of the tenant is refused")
            .to_string();
        assert!(err.contains("429"), "{err}");
        first.close().await;
        // The place comes back once the first call is gone from the registry.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match RealtimeClient::connect_with_key(&b.ws_url(), Some(KEY)).await {
                Ok(c) => {
                    c.close().await;
                    break;
                }
                Err(e) => assert!(Instant::now() < deadline, "still refused: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// One chat completion with the operator key: the status, the reply's total tokens (or the
/// error) as JSON, and the named response header.
fn chat(gw: &Gateway, header: &str) -> (u16, serde_json::Value, Option<String>) {
    let auth = format!("Bearer {KEY}");
    let body = json!({"model": "switchboard", "messages": [{"role": "user", "content": "Say something."}]});
    let r = http(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        &[("Authorization", &auth)],
        Some(&body.to_string()),
    )
    .expect("gateway answers");
    let json = serde_json::from_str(&r.body).unwrap_or_default();
    (r.status, json, r.header(header).map(str::to_owned))
}

#[test]
fn a_tenants_token_budget_is_spent_across_instances_then_refused_everywhere() {
    let llm = ScriptedLlm::start(Script {
        reply: "Here is a reply of a dozen words or so for the budget.".into(),
        ..Script::default()
    });
    // An hour to refill 60 tokens: nothing comes back during the test.
    let Pair {
        a,
        b,
        redis: _r,
        _db,
    } = pair(
        &llm,
        "tokens",
        &[
            ("SWITCHBOARD_TOKENS_PER_TENANT", "60/1h"),
            ("SWITCHBOARD_WEBHOOK_SECRET", "wh-secret"),
        ],
    );
    let mut spent = 0;
    let mut answered = 0;
    let refused = loop {
        let gw = if answered % 2 == 0 { &a } else { &b };
        let (status, body, limit) = chat(gw, "x-ratelimit-limit-tokens");
        if status == 429 {
            break (body, limit);
        }
        assert_eq!(status, 200, "{body}");
        spent += body["usage"]["total_tokens"].as_u64().unwrap();
        answered += 1;
        assert!(answered < 20, "never refused after {spent} tokens");
        // Charges land right after the reply; give them a moment.
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(spent >= 60, "refused before the budget was spent: {spent}");
    assert!(
        answered >= 2,
        "both instances answered before the budget ran out"
    );
    let (body, limit) = refused;
    assert_eq!(body["error"]["type"], "tokens", "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(limit.as_deref(), Some("60"));
    // Spent for the whole tenant: both instances refuse, with a wait they can name.
    for gw in [&a, &b] {
        let (status, _, retry) = chat(gw, "retry-after");
        assert_eq!(status, 429);
        let retry: u64 = retry.expect("Retry-After").parse().unwrap();
        assert!(retry > 60, "{retry}");
    }
    // A live call of the tenant is answered with the refusal, not by the LLM.
    let asked_before = llm.requests().len();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut call = RealtimeClient::connect_with_key(&a.ws_url(), Some(KEY))
            .await
            .unwrap();
        call.send(
            json!({"type": "conversation.item.create", "item": {"type": "message",
            "role": "user", "content": [{"type": "input_text", "text": "Hello?"}]}}),
        )
        .await
        .unwrap();
        call.send(json!({"type": "response.create", "response": {"output_modalities": ["text"]}}))
            .await
            .unwrap();
        let done = call
            .wait_for("response.done", Duration::from_secs(20))
            .await
            .unwrap();
        let response = &done.event["response"];
        assert_eq!(response["status"], "failed", "{response}");
        assert_eq!(
            response["status_details"]["error"]["code"],
            "rate_limit_exceeded"
        );
        // The call's `rate_limits.updated` reports the tenant's spent budget.
        let limits = call
            .wait_for("rate_limits.updated", Duration::from_secs(5))
            .await
            .unwrap()
            .event;
        let tokens = limits["rate_limits"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["name"] == "tokens"))
            .unwrap_or_else(|| panic!("no tokens limit: {limits}"));
        assert_eq!(
            (tokens["limit"].as_u64(), tokens["remaining"].as_u64()),
            (Some(60), Some(0)),
            "{limits}"
        );
        assert!(
            tokens["reset_seconds"].as_f64().is_some_and(|s| s > 60.0),
            "{limits}"
        );
    });
    assert_eq!(llm.requests().len(), asked_before, "the LLM was not asked");
    let refusals = |gw: &Gateway| {
        metric(gw, r#"switchboard_rate_limited_total{rule="tokens"}"#).unwrap_or(0.0)
    };
    assert!(refusals(&a) >= 1.0);

    // A webhook message is accepted and waits for the budget (not retried every few seconds).
    let before = refusals(&a) + refusals(&b);
    let message = |gw: &Gateway| {
        let body = json!({"id": "m-1", "conversation": "c-1", "text": "Hello?",
            "callback_url": "http://callback.invalid/in"})
        .to_string();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let sig = switchboard_e2e::signing::switchboard("wh-secret", ts, &body);
        let ts = ts.to_string();
        let r = http(
            gw.addr,
            "POST",
            "/v1/webhooks/messages",
            &[
                ("X-Switchboard-Timestamp", &ts),
                ("X-Switchboard-Signature", &sig),
            ],
            Some(&body),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        (
            r.status,
            v["status"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(message(&a).0, 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    while refusals(&a) + refusals(&b) <= before {
        assert!(Instant::now() < deadline, "the message was never tried");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Past the 5 s retry of a message no provider answered.
    std::thread::sleep(Duration::from_millis(6_000));
    assert_eq!(
        message(&b),
        (200, "pending".to_owned()),
        "it waits, unanswered"
    );
    assert_eq!(llm.requests().len(), asked_before, "the LLM was not asked");
    assert!(
        refusals(&a) + refusals(&b) <= before + 1.0,
        "tried once, then left until the budget refills"
    );
}
