//! What running as many instances costs a request. Prints Markdown rows for BENCHMARKS.md.
//!
//! 1. The rate-limit check itself: one GCRA script call to Redis on loopback (the gateway's
//!    own `gcra.lua`), and the in-process check's equivalent for scale.
//! 2. End to end: `GET /v1/models` through the real binary with limits off, limits counted
//!    in process, and limits in Redis (per-key and per-tenant checks: two script calls).
//! 3. The session registry's heartbeat for 1,000 live calls of one instance (the gateway's
//!    own `renew.lua`, one script call) and what the records take in Redis.
//!
//! Run: `cargo bench -p switchboard-benches --bench scale` (needs the release binary, the
//! models for readiness, and Redis at 127.0.0.1:6379; `make bench` starts it).

use std::time::Instant;

use switchboard_benches::{latency_row, latency_table, percentiles};
use switchboard_e2e::gateway::{Gateway, http_get};
use switchboard_e2e::redis::RedisServer;

const GCRA: &str = include_str!("../../gateway/src/limits/gcra.lua");
const RENEW: &str = include_str!("../../gateway/src/registry/renew.lua");
const RUNS: usize = 3000;
/// Limits checked on every request but never reached by the benchmark.
const LOOSE_KEY: (&str, &str) = ("SWITCHBOARD_RATE_PER_KEY", "1000000/1000s");
const LOOSE_TENANT: (&str, &str) = ("SWITCHBOARD_RATE_PER_TENANT", "1000000/1000s");

async fn script_checks(redis: &RedisServer) {
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let script = redis::Script::new(GCRA);
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        let started = Instant::now();
        let _: (i64, i64, i64) = script
            .key(format!("sb:rl:key:bench{}", i % 100))
            .arg(10)
            .arg(60_000)
            .invoke_async(&mut conn)
            .await
            .expect("gcra script");
        samples.push(started.elapsed());
    }
    latency_row(
        "rate-limit check in Redis (one GCRA script call, loopback)",
        &mut samples,
        3,
    );
}

async fn end_to_end(redis: &RedisServer) {
    let url = redis.url();
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "GET /v1/models, limits off",
            vec![
                ("SWITCHBOARD_RATE_PER_KEY", "off"),
                ("SWITCHBOARD_RATE_PER_TENANT", "off"),
            ],
        ),
        (
            "GET /v1/models, limits in process",
            vec![LOOSE_KEY, LOOSE_TENANT],
        ),
        (
            "GET /v1/models, limits in Redis (key + tenant)",
            vec![
                LOOSE_KEY,
                LOOSE_TENANT,
                ("SWITCHBOARD_REDIS_URL", url.as_str()),
            ],
        ),
    ];
    for (what, env) in cases {
        let gw = Gateway::start(&[], &env);
        // One loopback connection per request (the harness's plain client), the same in
        // every case, so the differences are the limiter's.
        let get = || http_get(gw.addr, "/v1/models").expect("answers");
        for _ in 0..200 {
            get();
        }
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            let (status, _) = get();
            samples.push(started.elapsed());
            assert_eq!(status, 200);
        }
        latency_row(what, &mut samples, 3);
    }
}

async fn heartbeat(redis: &RedisServer) {
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let used = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut c = conn.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("memory")
                .query_async(&mut c)
                .await
                .expect("INFO memory");
            info.lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse::<i64>().ok())
                .expect("used_memory in INFO")
        }
    };
    let before = used(&mut conn).await;
    let script = redis::Script::new(RENEW);
    let mut samples = Vec::new();
    for _ in 0..60 {
        let mut inv = script.prepare_invoke();
        inv.arg(30_000).arg("bench-instance");
        for i in 0..1000 {
            let (id, tenant) = (format!("sess_{i:016x}"), format!("tenant{}", i % 10));
            inv.key(format!("sb:call:{id}"))
                .key(format!("sb:tenant_calls:{tenant}"));
            inv.arg(&id)
                .arg(&tenant)
                .arg("realtime")
                .arg(1_764_000_000_000i64)
                .arg("");
        }
        let started = Instant::now();
        let n: i64 = inv.invoke_async(&mut conn).await.expect("renew script");
        samples.push(started.elapsed());
        assert_eq!(n, 1000);
    }
    latency_row(
        "registry heartbeat, 1,000 calls (one script call)",
        &mut samples,
        3,
    );
    let after = used(&mut conn).await;
    println!(
        "\nRedis memory for 1,000 call records and 10 tenant sets: {} KiB ({} B a call); \
         at one heartbeat per 10 s that is {:.2} ms of Redis time per second per 1,000 calls.",
        (after - before) / 1024,
        (after - before) / 1000,
        percentiles(&mut samples).0 / 10.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let redis = RedisServer::start();
    latency_table("what");
    script_checks(&redis).await;
    end_to_end(&redis).await;
    heartbeat(&redis).await;
}
