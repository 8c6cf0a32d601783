//! The HTTP endpoints of a real `polyglot-host serve` on loopback, with real workers:
//! the probes in each state of the host (loading, serving, a required module down,
//! shutting down with a call still running), `/health` in detail, `/metrics` counting
//! calls, outcomes, latencies, restarts, fallbacks and deployments as they happen, and
//! the JSON call API with its statuses, API keys and limits.

#[path = "../../polyglot-core/tests/support/mod.rs"]
mod support;

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{channel, client, start_early, start_with, Host};
use polyglot_proto::v1 as pb;
use serde_json::{json, Value};
use support::{Lang, Modules};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A worker program that does not exist: its module loads, and never starts.
const MISSING: &str = "/nonexistent/polyglot-test-worker";

/// A module whose worker cannot start, given up at once; `extra` merged in.
fn missing(mods: &Modules, name: &str, extra: Value) {
    let mut m = json!({"command": MISSING, "restart": {"maxRestarts": 0}});
    support::merge(&mut m, extra);
    mods.add(name, Lang::Rust, m);
}

fn base(host: &Host) -> String {
    host.http.clone().expect("the host serves HTTP")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET `path`: the status and the body as JSON (or as a JSON string when it is not).
async fn get(host: &Host, path: &str) -> (u16, Value) {
    let r = http()
        .get(format!("{}{path}", base(host)))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// POST `body` to `path` with `headers`: the status, the headers and the body as JSON.
async fn post_with(
    host: &Host,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = http()
        .post(format!("{}{path}", base(host)))
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, headers, json)
}

/// POST a call: the status and the body.
async fn call(host: &Host, module: &str, method: &str, body: &str) -> (u16, Value) {
    let (s, _, v) = post_with(host, &format!("/v1/modules/{module}/{method}"), body, &[]).await;
    (s, v)
}

/// POST a call: the status and the envelope's `result`.
async fn result_of(host: &Host, module: &str, method: &str, body: &str) -> (u16, Value) {
    let (s, v) = call(host, module, method, body).await;
    (s, v["result"].clone())
}

async fn json_of(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn scrape(host: &Host) -> String {
    let r = http()
        .get(format!("{}/metrics", base(host)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain"), "{ct}");
    r.text().await.unwrap()
}

/// The value of the series `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        let matches = n == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        matches.then(|| value.parse().unwrap())
    })
}

/// Polls `f` every 50 ms until it gives `Some`, for up to `within`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    within: Duration,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(host: &Host, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &host.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// While the modules load the host is live but neither started nor ready, and the call
/// API says so; once loaded, it is started and ready.
#[tokio::test]
async fn probes_follow_the_initial_load() {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({"required": true}));
    // A build step that takes its time: the load waits for it.
    mods.add(
        "slow",
        Lang::Rust,
        json!({"build": {"command": "sleep", "args": ["5"]}}),
    );
    let host = start_early(&mods, &[]);
    assert_eq!(get(&host, "/health/live").await.0, 200);
    let (s, body) = get(&host, "/health/startup").await;
    assert_eq!((s, body["status"].as_str()), (503, Some("starting")));
    let (s, body) = get(&host, "/health/ready").await;
    assert_eq!(
        (s, body["status"].as_str()),
        (503, Some("starting")),
        "{body}"
    );
    let (s, body) = call(&host, "calc", "add", "[1, 2]").await;
    assert_eq!((s, body["error"]["kind"].as_str()), (503, Some("starting")));
    let (s, body) = get(&host, "/health").await;
    assert_eq!((s, body["started"].as_bool()), (503, Some(false)));
    assert!(
        scrape(&host).await.contains("# TYPE"),
        "metrics answer while loading"
    );

    until(Duration::from_secs(60), "the host has started", || async {
        (get(&host, "/health/startup").await.0 == 200).then_some(())
    })
    .await;
    let (s, body) = get(&host, "/health/ready").await;
    assert_eq!((s, body), (200, json!({"status": "ready", "reasons": []})));
    assert_eq!(
        result_of(&host, "calc", "add", "[1, 2]").await,
        (200, json!(3))
    );
}

/// Readiness needs every module marked `required` to be served (by it or a fallback);
/// one that is not names itself and why. An optional module that is down does not count.
#[tokio::test]
async fn readiness_needs_every_required_module() {
    let strict = Modules::new();
    strict.add("calc", Lang::Rust, json!({}));
    missing(&strict, "down", json!({"required": true}));
    let lenient = Modules::new();
    lenient.add("calc", Lang::Rust, json!({}));
    missing(&lenient, "down", json!({}));
    // Required, down itself, and served by its fallback.
    missing(
        &lenient,
        "covered",
        json!({"required": true, "fallback": "calc"}),
    );
    let (strict, lenient) = (
        start_with(&strict, None, &[]),
        start_with(&lenient, None, &[]),
    );

    let (s, body) = get(&strict, "/health/ready").await;
    assert_eq!(
        (s, body["status"].as_str()),
        (503, Some("not_ready")),
        "{body}"
    );
    let reasons = body["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{body}");
    assert_eq!(reasons[0]["module"], "down");
    let why = reasons[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("failed") && why.contains("No such file"),
        "{why}"
    );
    assert_eq!(get(&strict, "/health/live").await.0, 200);
    assert_eq!(get(&strict, "/health/startup").await.0, 200);

    let (s, body) = get(&lenient, "/health/ready").await;
    assert_eq!((s, body["status"].as_str()), (200, Some("ready")), "{body}");
    let (_, health) = get(&lenient, "/health").await;
    let covered = module(&health, "covered");
    assert_eq!(
        (
            covered["required"].as_bool(),
            covered["available"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(covered["servedBy"], "calc");
    assert_eq!(covered["state"], "failed");
    let down = module(&health, "down");
    assert_eq!(
        (down["required"].as_bool(), down["available"].as_bool()),
        (Some(false), Some(false))
    );
}

/// The gRPC health service's overall status.
async fn overall(c: &mut HealthClient<tonic::transport::Channel>) -> ServingStatus {
    let req = HealthCheckRequest {
        service: String::new(),
    };
    let status = c.check(req).await.unwrap().into_inner().status;
    ServingStatus::try_from(status).unwrap()
}

fn module<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no module {name} in {health}"))
}

/// On SIGTERM readiness goes false at once (`/health/ready` and the gRPC health service),
/// while calls are still taken (for the shutdown delay); then new calls are refused, the
/// call in flight finishes and is answered, and the host exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_goes_false_before_calls_are_refused_and_held_calls_finish() {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({"required": true}));
    let mut host = start_with(&mods, None, &["--shutdown-delay", "2s"]);
    assert_eq!(get(&host, "/health/ready").await.0, 200);
    let mut grpc_health = HealthClient::new(channel(&host).await);
    assert_eq!(overall(&mut grpc_health).await, ServingStatus::Serving);
    let held = {
        let url = format!("{}/v1/modules/calc/sleep", base(&host));
        tokio::spawn(async move {
            let r = http().post(url).body("[4000]").send().await.unwrap();
            let status = r.status().as_u16();
            (status, json_of(r).await)
        })
    };
    until(
        Duration::from_secs(10),
        "the held call is in flight",
        || async {
            let (_, h) = get(&host, "/health").await;
            (module(&h, "calc")["inFlight"] == 1).then_some(())
        },
    )
    .await;
    signal(&host, "-TERM");
    let (s, body) = until(Duration::from_secs(5), "readiness is false", || async {
        let r = get(&host, "/health/ready").await;
        (r.0 == 503).then_some(r)
    })
    .await;
    assert_eq!(body["status"], "stopping", "{s} {body}");
    // The gRPC health service says so too.
    assert_eq!(overall(&mut grpc_health).await, ServingStatus::NotServing);
    // Not ready, and still taking calls: a load balancer has time to stop sending them.
    assert_eq!(
        result_of(&host, "calc", "add", "[1, 2]").await,
        (200, json!(3))
    );
    assert_eq!(get(&host, "/health/live").await.0, 200);
    let refused = until(Duration::from_secs(10), "new calls are refused", || async {
        let (s, body) = call(&host, "calc", "add", "[1, 2]").await;
        (s == 503).then_some(body)
    })
    .await;
    assert_eq!(refused["error"]["kind"], "shutting_down", "{refused}");
    assert_eq!(get(&host, "/health/ready").await.0, 503);

    let (status, body) = held.await.unwrap();
    assert_eq!((status, &body["result"]), (200, &json!(4000)), "{body}");
    let exit = tokio::task::spawn_blocking(move || host.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// `/health` shows each module's state, version, instances with their pids and restarts,
/// calls in flight, health and last error, and the deployment in progress; `/metrics`
/// shows the deployment's traffic and stage, and forgets a version's gauges once it is
/// gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_show_modules_and_the_deployment_in_progress() {
    let mods = Modules::new();
    mods.add("w", Lang::Rust, json!({"instances": 2}));
    missing(&mods, "down", json!({}));
    let releases = Modules::new();
    let v2 = releases.add("w", Lang::Rust, json!({"version": "2.0.0", "instances": 2}));
    let host = start_with(&mods, None, &[]);

    let (s, health) = get(&host, "/health").await;
    assert_eq!(
        (s, health["status"].as_str()),
        (200, Some("ready")),
        "{health}"
    );
    assert_eq!(
        health["loadErrors"].as_array().unwrap().len(),
        1,
        "{health}"
    );
    let w = module(&health, "w");
    assert_eq!(
        (
            &w["version"],
            &w["state"],
            &w["health"],
            &w["inFlight"],
            &w["restarts"]
        ),
        (
            &json!("1.0.0"),
            &json!("running"),
            &json!("healthy"),
            &json!(0),
            &json!(0)
        )
    );
    assert_eq!(
        (&w["lastError"], &w["deployment"]),
        (&Value::Null, &Value::Null)
    );
    let instances = w["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    for i in instances {
        assert!(i["pid"].as_u64().unwrap() > 0, "{i}");
        assert_eq!(
            (&i["state"], &i["restarts"]),
            (&json!("healthy"), &json!(0))
        );
    }
    let down = module(&health, "down");
    assert_eq!(
        (&down["state"], &down["health"]),
        (&json!("failed"), &json!("unhealthy"))
    );
    assert!(
        down["lastError"].as_str().unwrap().contains("No such file"),
        "{down}"
    );

    // A canary that waits at 50% for a manual advance.
    let mut c = client(&host).await;
    c.deploy(pb::DeployRequest {
        module: "w".into(),
        path: v2.display().to_string(),
        strategy: Some(pb::Strategy {
            kind: Some(pb::strategy::Kind::Canary(pb::Canary {
                percents: vec![50, 100],
                stage_duration_ms: 600_000,
                manual: true,
                stage_deadline_ms: 0,
            })),
            scheduled_at_ms: None,
        }),
        by: "test".into(),
        why: "health shows it".into(),
    })
    .await
    .unwrap();
    let text = until(Duration::from_secs(20), "the canary takes half", || async {
        let t = scrape(&host).await;
        let share = sample(
            &t,
            "polyglot_deployment_traffic_ratio",
            &[("module", "w"), ("version", "2.0.0")],
        );
        (share == Some(0.5)).then_some(t)
    })
    .await;
    let w_ = [("module", "w")];
    assert_eq!(
        sample(&text, "polyglot_deployment_in_progress", &w_),
        Some(1.0)
    );
    assert_eq!(sample(&text, "polyglot_deployment_stage", &w_), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "polyglot_deployment_traffic_ratio",
            &[("module", "w"), ("version", "1.0.0")]
        ),
        Some(0.5)
    );
    assert_eq!(
        sample(
            &text,
            "polyglot_module_info",
            &[("module", "w"), ("version", "1.0.0"), ("language", "rust")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "polyglot_workers_running", &w_),
        Some(4.0),
        "both versions' workers"
    );
    assert_eq!(
        sample(&text, "polyglot_module_available", &[("module", "down")]),
        Some(0.0)
    );
    let (_, health) = get(&host, "/health").await;
    let rollout = &module(&health, "w")["deployment"]["rollout"];
    assert_eq!(
        (&rollout["version"], &rollout["percent"]),
        (&json!("2.0.0"), &json!(50)),
        "{health}"
    );
    assert_eq!(
        module(&health, "w")["deployment"]["traffic"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    c.abort_deployment(pb::AbortDeploymentRequest {
        module: "w".into(),
        reason: "seen".into(),
    })
    .await
    .unwrap();
    until(
        Duration::from_secs(20),
        "the aborted version's gauges are gone",
        || async {
            let t = scrape(&host).await;
            let gone = sample(
                &t,
                "polyglot_deployment_traffic_ratio",
                &[("version", "2.0.0")],
            )
            .is_none();
            let done = sample(&t, "polyglot_deployment_in_progress", &w_) == Some(0.0);
            (gone && done).then_some(())
        },
    )
    .await;
}

/// Calls move the counters and the latency histogram, by outcome; a fallback and a
/// restart are counted; names that do not exist are not labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_calls_outcomes_fallbacks_and_restarts() {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({}));
    missing(&mods, "down", json!({}));
    missing(&mods, "covered", json!({"fallback": "calc"}));
    let host = start_with(&mods, None, &[]);
    let ok = [
        ("module", "calc"),
        ("method", "add"),
        ("version", "1.0.0"),
        ("outcome", "ok"),
    ];
    let before = scrape(&host).await;
    assert_eq!(sample(&before, "polyglot_calls_total", &ok), None);

    for i in 0..5 {
        assert_eq!(
            call(&host, "calc", "add", &format!("[{i}, 1]")).await.0,
            200
        );
    }
    let text = scrape(&host).await;
    let add = [("module", "calc"), ("method", "add"), ("version", "1.0.0")];
    assert_eq!(sample(&text, "polyglot_calls_total", &ok), Some(5.0));
    assert_eq!(
        sample(&text, "polyglot_call_duration_seconds_count", &add),
        Some(5.0)
    );
    let mut inf = add.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        sample(&text, "polyglot_call_duration_seconds_bucket", &inf),
        Some(5.0)
    );
    assert!(sample(&text, "polyglot_call_duration_seconds_sum", &add).unwrap() > 0.0);
    assert!(
        text.contains("# TYPE polyglot_call_duration_seconds histogram"),
        "{text}"
    );
    assert_eq!(
        sample(&text, "polyglot_workers_running", &[("module", "calc")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "polyglot_calls_in_flight", &[("module", "calc")]),
        Some(0.0)
    );

    assert_eq!(
        call(&host, "calc", "fail", r#"["NOT_READY", "no"]"#)
            .await
            .0,
        422
    );
    assert_eq!(call_timeout(&host).await, 504);
    assert_eq!(call(&host, "down", "add", "[1, 2]").await.0, 503);
    assert_eq!(call(&host, "nope", "add", "[1, 2]").await.0, 404);
    assert_eq!(call(&host, "calc", "teleport", "[]").await.0, 404);
    assert_eq!(
        result_of(&host, "covered", "add", "[1, 2]").await,
        (200, json!(3))
    );
    let text = scrape(&host).await;
    let outcome = |module: &str, method: &str, outcome: &str| {
        sample(
            &text,
            "polyglot_calls_total",
            &[("module", module), ("method", method), ("outcome", outcome)],
        )
    };
    assert_eq!(outcome("calc", "fail", "remote"), Some(1.0));
    assert_eq!(outcome("calc", "sleep", "timeout"), Some(1.0));
    assert_eq!(outcome("down", "add", "unavailable"), Some(1.0));
    assert_eq!(
        outcome("_unknown", "_unknown", "module_not_found"),
        Some(1.0)
    );
    assert_eq!(outcome("calc", "_unknown", "method_not_found"), Some(1.0));
    assert_eq!(outcome("covered", "add", "ok"), Some(1.0));
    assert!(
        !text.contains("nope") && !text.contains("teleport"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "polyglot_fallback_calls_total",
            &[("module", "covered"), ("served_by", "calc")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "polyglot_call_duration_seconds_count",
            &[("method", "sleep")]
        ),
        Some(1.0)
    );

    // Kill the worker: its restart is counted, and it runs again.
    let (_, health) = get(&host, "/health").await;
    let pid = module(&health, "calc")["instances"][0]["pid"]
        .as_u64()
        .unwrap();
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    until(
        Duration::from_secs(20),
        "the restart is counted and the worker runs",
        || async {
            let t = scrape(&host).await;
            let restarts = sample(&t, "polyglot_worker_restarts_total", &[("module", "calc")]);
            let running = sample(&t, "polyglot_workers_running", &[("module", "calc")]);
            (restarts >= Some(1.0) && running == Some(1.0)).then_some(())
        },
    )
    .await;
}

/// A version's circuit breaker shows in `/health` and in the metrics, and an open one
/// makes the call API answer 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_shows_in_health_and_metrics() {
    let mods = Modules::new();
    mods.add(
        "calc",
        Lang::Rust,
        json!({"breaker": {"consecutiveFailures": 2, "cooldownMs": 60000}}),
    );
    let host = start_with(&mods, None, &[]);
    let (_, health) = get(&host, "/health").await;
    assert_eq!(
        module(&health, "calc")["breaker"],
        json!({"state": "closed", "reason": null, "disabled": false})
    );
    let labels = [("module", "calc"), ("version", "1.0.0")];
    assert_eq!(
        sample(&scrape(&host).await, "polyglot_breaker_state", &labels),
        Some(0.0)
    );
    for _ in 0..2 {
        assert_eq!(call_timeout(&host).await, 504);
    }
    let (_, health) = get(&host, "/health").await;
    assert_eq!(
        module(&health, "calc")["breaker"],
        json!({"state": "open", "reason": "2 calls in a row timed out", "disabled": false})
    );
    let text = scrape(&host).await;
    assert_eq!(sample(&text, "polyglot_breaker_state", &labels), Some(2.0));
    let to_open = [("module", "calc"), ("version", "1.0.0"), ("to", "open")];
    assert_eq!(
        sample(&text, "polyglot_breaker_transitions_total", &to_open),
        Some(1.0)
    );
    let (status, body) = call(&host, "calc", "add", "[1, 2]").await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("has its circuit breaker open"), "{body}");
}

/// A call of `calc.sleep [5000]` with a 100 ms deadline: its status.
async fn call_timeout(host: &Host) -> u16 {
    let (s, _, body) = post_with(host, "/v1/modules/calc/sleep?timeoutMs=100", "[5000]", &[]).await;
    assert_eq!(body["error"]["kind"], "timeout", "{body}");
    s
}

/// The call API answers with the response envelope, and maps each error to its status
/// with a JSON error naming the module, the method and the kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_api_answers_envelopes_and_maps_errors_to_statuses() {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({}));
    mods.add("crashy", Lang::Rust, json!({}));
    // One call at a time, none queued, and frames of at most 1 KiB.
    mods.add(
        "tight",
        Lang::Rust,
        json!({"env": {"TEST_MAX_CONCURRENCY": "1"}, "maxQueue": 0, "maxFrameBytes": 1024}),
    );
    missing(&mods, "down", json!({}));
    let host = start_with(&mods, None, &[]);

    let (s, headers, body) = post_with(
        &host,
        "/v1/modules/calc/add",
        "[40, 2]",
        &[("x-request-id", "req-1")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(headers["x-request-id"], "req-1");
    assert_eq!(
        (
            &body["id"],
            &body["result"],
            &body["servedBy"],
            &body["version"],
            &body["fallback"]
        ),
        (
            &json!("req-1"),
            &json!(42),
            &json!("calc"),
            &json!("1.0.0"),
            &json!(false)
        )
    );
    assert!(body["executionTime"].as_u64().unwrap() > 0, "{body}");
    assert!(body["timestamp"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(
        result_of(&host, "calc", "add", r#"{"a": 1, "b": 2}"#).await,
        (200, json!(3))
    );
    let (s, body) = call(&host, "calc", "echo", r#"[{"$bytes": "AAH/"}]"#).await;
    assert_eq!((s, &body["result"]), (200, &json!({"$bytes": "AAH/"})));

    // Each case: the path under /v1/modules, the body, a header, then the status, kind
    // and code the error must have, and a word its details must hold.
    let big = format!("[\"{}\"]", "x".repeat(2000));
    let timeout = Some(("x-timeout-ms", "100"));
    let bad_timeout = Some(("x-timeout-ms", "soon"));
    #[rustfmt::skip]
    let cases = [
        ("nope/add", "[]", None, 404, "module_not_found", "MODULE_NOT_FOUND", "nope"),
        ("calc/teleport", "[]", None, 404, "method_not_found", "METHOD_NOT_FOUND", "\"add\""),
        ("calc/add", r#"["x", 1]"#, None, 400, "remote", "INVALID_PARAMS", "two integers"),
        ("calc/fail", r#"["NOT_READY", "not loaded"]"#, None, 422, "remote", "NOT_READY", "not loaded"),
        ("calc/boom", "[]", None, 500, "remote", "INTERNAL", "boom"),
        ("calc/sleep", "[5000]", timeout, 504, "timeout", "TIMEOUT", "\"timeoutMs\":100"),
        ("down/add", "[]", None, 503, "unavailable", "UNAVAILABLE", "No such file"),
        ("crashy/crash", "[]", None, 502, "worker_exited", "WORKER_EXITED", "exit status 3"),
        ("tight/echo", big.as_str(), None, 413, "frame_too_large", "FRAME_TOO_LARGE", "frame limit"),
        ("calc/add", "[1,\n 2", None, 400, "invalid_argument", "INVALID_ARGUMENT", "at line 2 column"),
        ("calc/add", "[1, 2]", bad_timeout, 400, "invalid_argument", "INVALID_ARGUMENT", "x-timeout-ms"),
    ];
    for (path, body, header, status, kind, code, word) in cases {
        let headers: Vec<_> = header.into_iter().collect();
        let (s, _, body) = post_with(&host, &format!("/v1/modules/{path}"), body, &headers).await;
        let e = &body["error"];
        assert_eq!(
            (s, &e["kind"], &e["code"]),
            (status, &json!(kind), &json!(code)),
            "{path}: {body}"
        );
        let (module, method) = path.split_once('/').unwrap();
        assert_eq!(e["module"], module, "{path}: {body}");
        if kind != "module_not_found" {
            assert_eq!(e["method"], method, "{path}: {body}");
        }
        assert!(e.to_string().contains(word), "{path}: no {word:?} in {e}");
    }
    let held = {
        let url = format!("{}/v1/modules/tight/sleep", base(&host));
        tokio::spawn(async move {
            http()
                .post(url)
                .body("[1500]")
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let (s, headers, body) = until(Duration::from_secs(10), "tight is busy", || async {
        let r = post_with(&host, "/v1/modules/tight/echo", "[1]", &[]).await;
        (r.0 != 200).then_some(r)
    })
    .await;
    assert_eq!(
        (s, &body["error"]["kind"]),
        (429, &json!("overloaded")),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(held.await.unwrap().as_u16(), 200);

    let (s, body) = get(&host, "/v2/nothing").await;
    assert_eq!((s, &body["error"]["kind"]), (404, &json!("not_found")));

    let (s, body) = get(&host, "/v1/modules").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = body["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["calc", "crashy", "down", "tight"]);
    assert_eq!(body["modules"][0]["required"], false);
    let (s, body) = get(&host, "/v1/modules/calc").await;
    assert_eq!(
        (s, &body["name"], &body["available"]),
        (200, &json!("calc"), &json!(true))
    );
    assert_eq!(get(&host, "/v1/modules/nope").await.0, 404);
}

/// A body over the 64 MiB limit is refused with 413 before it is read: the request is
/// written by hand, its headers only.
#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({}));
    let host = start_with(&mods, None, &[]);
    let addr = base(&host).trim_start_matches("http://").to_owned();
    let limit = polyglot_core::api::MAX_MESSAGE_SIZE;
    let response = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /v1/modules/calc/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
             Content-Type: application/json\r\nConnection: close\r\n\r\n[",
            limit + 1
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("payload_too_large"), "{response}");
}

/// With an API key, the call API requires it (as `Authorization: Bearer` or `x-api-key`,
/// like gRPC); probes and metrics never do.
#[tokio::test]
async fn the_call_api_requires_the_api_key() {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({}));
    let host = start_with(&mods, Some("s3cret"), &[]);
    for probe in [
        "/health/live",
        "/health/ready",
        "/health/startup",
        "/health",
    ] {
        assert_eq!(get(&host, probe).await.0, 200, "{probe}");
    }
    let path = "/v1/modules/calc/add";
    let (s, headers, body) = post_with(&host, path, "[1, 2]", &[]).await;
    assert_eq!(
        (s, &body["error"]["kind"]),
        (401, &json!("unauthenticated"))
    );
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (s, _, body) = post_with(&host, path, "[1, 2]", &[("authorization", "Bearer nope")]).await;
    assert_eq!(
        (s, &body["error"]["message"]),
        (401, &json!("wrong API key"))
    );
    let (s, _, body) =
        post_with(&host, path, "[1, 2]", &[("authorization", "Bearer s3cret")]).await;
    assert_eq!((s, &body["result"]), (200, &json!(3)));
    let (s, _, body) = post_with(&host, path, "[1, 2]", &[("x-api-key", "s3cret")]).await;
    assert_eq!((s, &body["result"]), (200, &json!(3)));
    assert_eq!(get(&host, "/v1/modules").await.0, 401);
    let text = scrape(&host).await;
    assert_eq!(
        sample(&text, "polyglot_api_key_refusals_total", &[]),
        Some(3.0)
    );
}

/// An HTTP address reachable from other machines without an API key: the call API is
/// refused, probes and metrics answer.
#[tokio::test]
async fn an_exposed_address_without_a_key_refuses_the_call_api() {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({}));
    let host = start_with(&mods, None, &["--http-addr", "0.0.0.0:0"]);
    let (s, body) = call(&host, "calc", "add", "[1, 2]").await;
    assert_eq!(
        (s, &body["error"]["kind"]),
        (403, &json!("permission_denied"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--api-key"),
        "{body}"
    );
    assert_eq!(get(&host, "/v1/modules").await.0, 403);
    assert_eq!(get(&host, "/health/ready").await.0, 200);
    assert!(scrape(&host).await.contains("polyglot_module_info"));
}
