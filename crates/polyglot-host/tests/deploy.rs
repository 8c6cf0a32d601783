//! Deployments through a real `polyglot-host serve`: the `deploy` command with its live
//! progress against steady traffic, a bad version rolled back and the command saying so,
//! `status` / `history` / `rollback`, an A/B test driven over gRPC with routing keys,
//! the status codes of refused operations, and webhooks that receive every event (and
//! never hold a deployment up when they fail).

#[path = "../../polyglot-core/tests/support/mod.rs"]
mod support;

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, detail, json_call, start_with, Host};
use polyglot_proto::v1 as pb;
use serde_json::json;
use support::{Lang, Modules};
use tokio_stream::StreamExt;
use tonic::Code;

/// Short windows and quick ticks, so a stage is judged within a second: ten calls make
/// a verdict, more than 5% of them failing is unhealthy.
const FAST: &[&str] = &[
    "--min-calls",
    "10",
    "--max-error-rate",
    "0.05",
    "--health-window",
    "3s",
    "--deploy-tick",
    "50ms",
];

/// Module `w` 1.0.0 in a modules folder, and 2.0.0 of it in a release folder of its own.
fn two_versions(v2: serde_json::Value) -> (Modules, Modules, PathBuf) {
    let mods = Modules::new();
    mods.add("w", Lang::Rust, json!({"instances": 2}));
    let releases = Modules::new();
    let mut m = json!({"version": "2.0.0", "instances": 2});
    support::merge(&mut m, v2);
    let dir = releases.add("w", Lang::Rust, m);
    (mods, releases, dir)
}

fn serve(mods: &Modules, extra: &[&str]) -> Host {
    let mut args = FAST.to_vec();
    args.extend_from_slice(extra);
    start_with(mods, None, &args)
}

/// The `polyglot-host` command against `host`.
fn cli(host: &Host, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_polyglot-host"))
        .args(args)
        .args(["--connect", &host.url])
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Callers keeping calls in flight through the host's gRPC API, each with its own routing
/// key, counting answers by version and every failure by its status.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    by_version: Arc<Mutex<HashMap<String, u64>>>,
    failures: Arc<Mutex<Vec<String>>>,
    injected: Arc<AtomicU64>,
}

impl Load {
    async fn start(host: &Host, callers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let by_version = Arc::new(Mutex::new(HashMap::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let injected = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for i in 0..callers {
            let mut c = client(host).await;
            let (stop, by_version, failures, injected) = (
                stop.clone(),
                by_version.clone(),
                failures.clone(),
                injected.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut req = json_call("w", "echo", json!([n]));
                    req.routing_key = format!("caller-{i}-{}", n % 50);
                    match c.call(req).await {
                        Ok(r) => {
                            *by_version
                                .lock()
                                .unwrap()
                                .entry(r.into_inner().version)
                                .or_default() += 1;
                        }
                        Err(s)
                            if polyglot_proto::error_detail(&s)
                                .is_some_and(|d| d.code == "INJECTED") =>
                        {
                            injected.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(s) => failures.lock().unwrap().push(format!(
                            "{:?}: {}",
                            s.code(),
                            s.message()
                        )),
                    }
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }));
        }
        Load {
            stop,
            tasks,
            by_version,
            failures,
            injected,
        }
    }

    /// Stops the callers; returns the answers by version.
    async fn stop(self) -> (HashMap<String, u64>, Vec<String>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let by = self.by_version.lock().unwrap().clone();
        let failures = self.failures.lock().unwrap().clone();
        (by, failures, self.injected.load(Ordering::Relaxed))
    }
}

/// A webhook receiver on loopback: it records each request's JSON body and answers with
/// the status `answer` gives for the request's number (from 0).
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    fn start(answer: impl Fn(usize) -> u16 + Send + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/deploy", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                let status = answer(n);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, bodies }
    }

    fn types(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until an event of `kind` arrived.
    fn wait_for(&self, kind: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.types().iter().any(|t| t == kind) {
            assert!(
                Instant::now() < deadline,
                "no {kind} webhook; got {:?}",
                self.types()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `polyglot-host deploy w --strategy canary` from `dir` against `host` with these
/// stage flags and other flags, off the async threads (the load keeps running).
async fn deploy_canary(host: &Host, dir: &Path, stages: &[&str], more: &[&str]) -> Output {
    let mut args: Vec<String> = ["deploy", "w", "--strategy", "canary", "--path"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.push(dir.display().to_string());
    args.extend(stages.iter().chain(more).map(|a| a.to_string()));
    args.extend(["--connect".to_string(), host.url.clone()]);
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_polyglot-host"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The `deploy` command runs a canary against steady traffic: it prints each stage as it
/// comes and exits 0 when the new version is promoted; no call is lost, both versions
/// served during the rollout, `status` and `history` show the outcome, and a webhook that
/// failed its first delivery received every event (in order) after its retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_from_the_command_line_promotes_and_loses_no_call() {
    let (mods, _releases, v2) = two_versions(json!({}));
    let hook = Receiver::start(|n| if n == 0 { 503 } else { 200 });
    let host = serve(&mods, &["--webhook", &hook.url]);
    let load = Load::start(&host, 8).await;
    let out = deploy_canary(
        &host,
        &v2,
        &["--stages", "20,50,100", "--stage-duration", "400ms"],
        &["--interval", "200ms", "--why", "faster echo"],
    )
    .await;
    let (by_version, failures, _) = load.stop().await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "deploy failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    for line in [
        "deploying w 2.0.0",
        "2.0.0 deployment started (canary, from 1.0.0)",
        "2.0.0 stage 1: 20% of traffic",
        "2.0.0 stage 2: 50% of traffic",
        "2.0.0 promoted: it takes all traffic (was 1.0.0)",
        "2.0.0 deployment succeeded",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    assert!(
        stdout.contains("% of traffic · "),
        "a progress line: {stdout}"
    );
    assert!(failures.is_empty(), "calls lost: {failures:?}");
    assert!(
        by_version.get("1.0.0").is_some_and(|n| *n > 0)
            && by_version.get("2.0.0").is_some_and(|n| *n > 0),
        "both versions served: {by_version:?}"
    );

    let out = cli(&host, &["status", "w", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["active"], "2.0.0", "{v:#}");
    assert!(v[0]["rollout"].is_null(), "{v:#}");

    let out = cli(&host, &["history", "w"]);
    let history = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row = |version: &str| {
        history
            .lines()
            .find(|l| l.starts_with(version))
            .unwrap_or_else(|| panic!("no {version} row in:\n{history}"))
            .to_owned()
    };
    assert!(row("1.0.0").contains("superseded"), "{history}");
    let r2 = row("2.0.0");
    assert!(
        r2.contains("active") && r2.contains("canary") && r2.contains("faster echo"),
        "{history}"
    );

    hook.wait_for("released");
    let types = hook.types();
    let first = types[0].clone();
    assert_eq!(
        types[1], first,
        "the first event is delivered again after a 503: {types:?}"
    );
    let mut expected = vec![
        "staged",
        "started",
        "stage_advanced",
        "stage_advanced",
        "stage_advanced",
        "promoted",
        "succeeded",
    ]
    .into_iter();
    let mut want = expected.next();
    for t in &types[1..] {
        if Some(t.as_str()) == want {
            want = expected.next();
        }
    }
    assert_eq!(want, None, "events in order: {types:?}");
    let bodies = hook.bodies.lock().unwrap().clone();
    let promoted = bodies.iter().find(|b| b["type"] == "promoted").unwrap();
    assert_eq!(promoted["module"], "w");
    assert_eq!(promoted["version"], "2.0.0");
    assert_eq!(promoted["from"], "1.0.0");
    assert!(promoted["time"].as_str().unwrap().ends_with('Z'));
}

/// A version failing 20% of its calls is rolled back during its canary: the command
/// prints why and exits 1, 1.0.0 serves again, the history marks 2.0.0 rolled back and
/// unhealthy, and no call failed but the bad version's own errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_version_is_rolled_back_and_the_command_fails() {
    let (mods, _releases, v2) = two_versions(json!({"env": {"TEST_FAIL_PERCENT": "20"}}));
    let host = serve(&mods, &[]);
    let load = Load::start(&host, 8).await;
    let out = deploy_canary(
        &host,
        &v2,
        &["--stages", "50,100", "--stage-duration", "2s"],
        &[],
    )
    .await;
    let (_, failures, injected) = load.stop().await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("2.0.0 rolled back to 1.0.0"),
        "the rollback is shown:\n{stdout}"
    );
    assert!(
        stdout.contains("calls failed, over the limit of 5.0%"),
        "and why:\n{stdout}"
    );
    assert!(injected > 0, "the bad version took some calls");
    assert!(failures.is_empty(), "calls lost: {failures:?}");

    let mut c = client(&host).await;
    let s = c
        .get_deployment(pb::DeploymentRequest { module: "w".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.active, "1.0.0");
    let h = c
        .get_history(pb::DeploymentRequest { module: "w".into() })
        .await
        .unwrap()
        .into_inner();
    let v2 = h.versions.iter().find(|v| v.version == "2.0.0").unwrap();
    assert_eq!(v2.state, "rolled-back", "{v2:?}");
    assert_eq!(v2.health, "unhealthy", "{v2:?}");
    assert!(v2.health_reason.contains("calls failed"), "{v2:?}");
}

/// An A/B test over gRPC: each routing key stays on one version, the split moves only
/// keys from A to B as B's share grows, and AdvanceDeployment promotes B for every key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ab_test_over_grpc_keeps_each_key_on_one_version() {
    let (mods, _releases, v2) = two_versions(json!({}));
    let host = serve(&mods, &[]);
    let mut c = client(&host).await;
    let r = c
        .deploy(pb::DeployRequest {
            module: "w".into(),
            path: v2.display().to_string(),
            strategy: Some(pb::Strategy {
                kind: Some(pb::strategy::Kind::AbTest(pb::AbTest {
                    percent_b: 30,
                    deadline_ms: 600_000,
                })),
                scheduled_at_ms: None,
            }),
            by: "tester".into(),
            why: "try 2.0.0 on some users".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.version, "2.0.0");
    let rollout = r.status.unwrap().rollout.unwrap();
    assert_eq!(
        (rollout.strategy.as_str(), rollout.phase.as_str()),
        ("ab_test", "ab_test")
    );

    let keys: Vec<String> = (0..300).map(|i| format!("user-{i}")).collect();
    let at30 = versions_by_key(&c, &keys).await;
    let on_b = |m: &HashMap<String, String>| m.values().filter(|v| *v == "2.0.0").count();
    assert!(
        (50..=130).contains(&on_b(&at30)),
        "about 30% on B: {}",
        on_b(&at30)
    );

    let s = c
        .set_split(pb::SetSplitRequest {
            module: "w".into(),
            percent_b: 60,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.rollout.unwrap().percent, 60);
    let at60 = versions_by_key(&c, &keys).await;
    assert!(
        (140..=220).contains(&on_b(&at60)),
        "about 60% on B: {}",
        on_b(&at60)
    );
    for (k, v) in &at30 {
        if v == "2.0.0" {
            assert_eq!(at60[k], "2.0.0", "key {k} left B when B grew");
        }
    }
    let e = c
        .set_split(pb::SetSplitRequest {
            module: "w".into(),
            percent_b: 100,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(detail(&e).code, "invalid_strategy");

    c.advance_deployment(pb::DeploymentRequest { module: "w".into() })
        .await
        .unwrap();
    let after = versions_by_key(&c, &keys).await;
    assert_eq!(on_b(&after), keys.len(), "every key on B after promotion");
}

/// The version each key reaches, calling twice per key: a key that moves between its
/// two calls fails the test.
async fn versions_by_key(
    c: &pb::runtime_client::RuntimeClient<tonic::transport::Channel>,
    keys: &[String],
) -> HashMap<String, String> {
    let mut c = c.clone();
    let mut by_key = HashMap::new();
    for k in keys {
        for _ in 0..2 {
            let mut req = json_call("w", "echo", json!([k]));
            req.routing_key = k.clone();
            let v = c.call(req).await.unwrap().into_inner().version;
            let first = by_key.entry(k.clone()).or_insert_with(|| v.clone());
            assert_eq!(*first, v, "key {k} moved between calls");
        }
    }
    by_key
}

/// Refused and failed operations answer with a deliberate status code and an
/// ErrorDetail saying which case it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_operations_have_status_codes_and_details() {
    let (mods, releases, v2) = two_versions(json!({}));
    let other = releases.add("other", Lang::Rust, json!({}));
    let broken = releases.add_raw("broken", r#"{"name": "w", "version": 2}"#);
    let host = serve(&mods, &[]);
    let mut c = client(&host).await;
    let deploy = |path: &Path, kind: pb::strategy::Kind, at: Option<u64>| pb::DeployRequest {
        module: "w".into(),
        path: path.display().to_string(),
        strategy: Some(pb::Strategy {
            kind: Some(kind),
            scheduled_at_ms: at,
        }),
        by: String::new(),
        why: String::new(),
    };
    let immediate = || pb::strategy::Kind::Immediate(pb::Immediate {});
    let check = |e: tonic::Status, code: Code, kind: &str, case: &str, says: &str| {
        assert_eq!(e.code(), code, "{e:?}");
        let d = detail(&e);
        assert_eq!((d.kind.as_str(), d.code.as_str()), (kind, case), "{e:?}");
        assert!(e.message().contains(says), "{says:?} in {:?}", e.message());
    };

    let e = c
        .deploy(deploy(&broken, immediate(), None))
        .await
        .unwrap_err();
    check(
        e,
        Code::InvalidArgument,
        "invalid_argument",
        "manifest",
        "version",
    );
    let e = c
        .deploy(deploy(&other, immediate(), None))
        .await
        .unwrap_err();
    check(
        e,
        Code::InvalidArgument,
        "invalid_argument",
        "wrong_module",
        "\"other\"",
    );
    let canary = pb::strategy::Kind::Canary(pb::Canary {
        percents: vec![50, 20],
        stage_duration_ms: 1000,
        manual: false,
        stage_deadline_ms: 0,
    });
    let e = c.deploy(deploy(&v2, canary, None)).await.unwrap_err();
    check(
        e,
        Code::InvalidArgument,
        "invalid_argument",
        "invalid_strategy",
        "canary.stages[1].percent",
    );
    let e = c
        .advance_deployment(pb::DeploymentRequest { module: "w".into() })
        .await
        .unwrap_err();
    check(
        e,
        Code::FailedPrecondition,
        "deployment_refused",
        "no_deployment",
        "no deployment is in progress",
    );
    let e = c
        .rollback(pb::RollbackRequest {
            module: "w".into(),
            to: "9.9.9".into(),
        })
        .await
        .unwrap_err();
    check(
        e,
        Code::NotFound,
        "version_not_found",
        "unknown_version",
        "9.9.9",
    );
    let e = c
        .get_history(pb::DeploymentRequest {
            module: "nope".into(),
        })
        .await
        .unwrap_err();
    check(e, Code::NotFound, "module_not_found", "not_found", "nope");

    // A scheduled deployment: advancing early says so; another deploy waits its turn.
    let later = now_ms() + 3_600_000;
    let r = c
        .deploy(deploy(&v2, immediate(), Some(later)))
        .await
        .unwrap();
    assert_eq!(
        r.into_inner().status.unwrap().rollout.unwrap().phase,
        "scheduled"
    );
    let e = c
        .advance_deployment(pb::DeploymentRequest { module: "w".into() })
        .await
        .unwrap_err();
    check(
        e,
        Code::FailedPrecondition,
        "deployment_refused",
        "too_early",
        "activating early is not allowed",
    );
    let e = c.deploy(deploy(&v2, immediate(), None)).await.unwrap_err();
    check(
        e,
        Code::FailedPrecondition,
        "deployment_refused",
        "deployment_in_progress",
        "in progress",
    );
    let s = c
        .abort_deployment(pb::AbortDeploymentRequest {
            module: "w".into(),
            reason: "not tonight".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.active, "1.0.0");
    assert!(s.rollout.is_none());

    // The command line shows the same refusals, and exits 1.
    let out = cli(&host, &["advance", "w"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("error (deployment_refused)"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(
        &host,
        &[
            "deploy",
            "w",
            "--path",
            "/x",
            "--strategy",
            "immediate",
            "--grace",
            "1s",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--grace is for --strategy blue-green, not immediate"));
}

/// Deployments build and start programs on the host: an API reachable from other
/// machines without an API key refuses them (and still serves calls).
#[tokio::test]
async fn an_exposed_host_without_a_key_refuses_deployments() {
    let (mods, _releases, v2) = two_versions(json!({}));
    let mut host = start_with(&mods, None, &["--grpc-addr", "0.0.0.0:0"]);
    host.url = host.url.replace("0.0.0.0", "127.0.0.1");
    let mut c = client(&host).await;
    c.call(json_call("w", "echo", json!([1]))).await.unwrap();
    let e = c.deploy(immediate_request(&v2)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("--api-key"), "{}", e.message());
}

/// Webhooks that refuse connections or never answer do not hold a deployment up: the
/// deployment, the rollback and their events go through while the deliveries retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_webhooks_never_hold_a_deployment_up() {
    let (mods, _releases, v2) = two_versions(json!({}));
    // A port nobody listens on, and a listener that accepts and never answers.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    let good = Receiver::start(|_| 204);
    let hooks = format!("{closed_url},{silent_url},{}", good.url);
    let host = serve(&mods, &["--webhook", &hooks]);
    let mut c = client(&host).await;
    let mut events = c
        .watch_deployments(pb::WatchDeploymentsRequest {
            modules: vec!["w".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let begun = Instant::now();
    let r = c.deploy(immediate_request(&v2)).await.unwrap().into_inner();
    assert_eq!(r.status.unwrap().active, "2.0.0");
    let r = c
        .rollback(pb::RollbackRequest {
            module: "w".into(),
            to: "1.0.0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.version, "1.0.0");
    assert_eq!(r.status.unwrap().active, "1.0.0");
    // Every retry of the dead webhooks would take 5 attempts, up to 5 s each.
    assert!(
        begun.elapsed() < Duration::from_secs(15),
        "the deployments waited for the webhooks: {:?}",
        begun.elapsed()
    );
    let mut seen = Vec::new();
    while !seen.iter().any(|t: &String| t == "rolled_back") {
        let e = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("deployment events keep coming")
            .unwrap()
            .unwrap();
        seen.push(e.r#type);
    }
    good.wait_for("rolled_back");
    drop(silent);
}

/// Deploying `dir` as the next version of `w` by the immediate strategy.
fn immediate_request(dir: &Path) -> pb::DeployRequest {
    pb::DeployRequest {
        module: "w".into(),
        path: dir.display().to_string(),
        strategy: Some(pb::Strategy {
            kind: Some(pb::strategy::Kind::Immediate(pb::Immediate {})),
            scheduled_at_ms: None,
        }),
        by: String::new(),
        why: String::new(),
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `deploy --detach` returns once the rollout started: a blue-green deployment is still
/// in its grace period when the command exits, and `status` shows it there.
#[tokio::test]
async fn deploy_detach_returns_while_the_rollout_goes_on() {
    let (mods, _releases, v2) = two_versions(json!({}));
    let host = serve(&mods, &[]);
    let path = v2.display().to_string();
    let out = cli(
        &host,
        &[
            "deploy",
            "w",
            "--path",
            &path,
            "--strategy",
            "blue-green",
            "--grace",
            "10m",
            "--detach",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("deploying w 2.0.0"), "{stdout}");
    let out = cli(&host, &["status", "w", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["active"], "2.0.0", "{v:#}");
    assert_eq!(v[0]["rollout"]["phase"], "grace", "{v:#}");
    assert_eq!(v[0]["rollout"]["strategy"], "blue_green", "{v:#}");
}
