//! Echo through the runtime against its floor and its peer, measured in one run:
//!
//! - the floor: two C processes ping-ponging 64 bytes over pipes (`peers/pingpong.c`);
//! - the peer: a Node.js parent calling a Node.js child with newline JSON over stdio
//!   (`peers/node_*.js`), the platform polyglot grows from;
//! - polyglot: `Runtime::call` to a Rust worker (release build) over stdio, JSON and
//!   MessagePack;
//! - per language (Rust, Go, C++, Python, TypeScript workers), over stdio and over the gRPC
//!   transport (the Python and TypeScript SDKs serve stdio and sockets only);
//! - the gRPC transport against HashiCorp go-plugin v1.8 in its gRPC mode
//!   (`benches/goplugin`: a Go host calling a Go echo plugin), the same call counts.
//!
//! Prints p50/p99 latency of one call at a time, throughput with 64 calls in flight, the
//! ratios the targets are stated in, and the RSS of an idle `polyglot-host` serving the
//! bundled modules.
//!
//! ```text
//! cargo bench -p polyglot-core --bench echo
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyglot_core::{Runtime, RuntimeConfig, Value};

const ROUNDS: usize = 20_000;
const CALLS: usize = 200_000;
const IN_FLIGHT: usize = 64;

#[derive(Clone)]
struct Row {
    name: String,
    p50_us: f64,
    p99_us: f64,
    calls_per_s: Option<f64>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_row(name: &str, text: &str) -> Row {
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    Row {
        name: name.into(),
        p50_us: v["p50_us"].as_f64().unwrap(),
        p99_us: v["p99_us"].as_f64().unwrap(),
        calls_per_s: v
            .get("calls_per_s")
            .or_else(|| v.get("calls_per_sec"))
            .and_then(|c| c.as_f64()),
    }
}

fn floor(tmp: &Path) -> Row {
    let exe = tmp.join("pingpong");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/pingpong.c");
    run(Command::new("cc").args(["-O2", "-o"]).arg(&exe).arg(src));
    json_row(
        "raw pipe ping-pong (C, floor)",
        &run(Command::new(&exe).arg(ROUNDS.to_string())),
    )
}

fn node() -> Row {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/node_parent.js");
    let out = run(Command::new("node")
        .arg(script)
        .args([ROUNDS, CALLS, IN_FLIGHT].map(|n| n.to_string())));
    json_row("Node parent -> Node child, JSON lines (peer)", &out)
}

fn release_worker() -> PathBuf {
    run(Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "polyglot-worker",
            "--example",
            "test_worker",
        ])
        .current_dir(repo()));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    target.join("release/examples/test_worker")
}

/// A worker program to echo through: its command line and extra environment.
struct WorkerCmd {
    language: &'static str,
    command: PathBuf,
    args: Vec<String>,
    env: serde_json::Value,
}

async fn polyglot(worker: &Path, codec: &str, tmp: &Path) -> Row {
    let w = WorkerCmd {
        language: "rust",
        command: worker.to_path_buf(),
        args: vec![],
        env: serde_json::json!({}),
    };
    echo_through(
        &w,
        codec,
        "stdio",
        tmp,
        &format!("polyglot Runtime::call -> Rust worker, {codec}"),
    )
    .await
}

/// go-plugin v1.8, gRPC mode: its driver calls its echo plugin with the same counts.
fn go_plugin(tmp: &Path) -> Row {
    let out = tmp.join("goplugin/");
    run(Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .args(["./cmd/bench", "./cmd/echo-plugin"])
        .env("GOWORK", "off")
        .current_dir(repo().join("benches/goplugin")));
    let text = run(Command::new(out.join("bench")).args([
        "-warmup".to_owned(),
        "2000".to_owned(),
        "-calls".to_owned(),
        ROUNDS.to_string(),
        "-throughput-calls".to_owned(),
        CALLS.to_string(),
        "-in-flight".to_owned(),
        IN_FLIGHT.to_string(),
    ]));
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    json_row(
        &format!(
            "go-plugin {} gRPC, Go host -> Go plugin",
            v["go_plugin"].as_str().unwrap_or("?")
        ),
        &text,
    )
}

async fn echo_through(w: &WorkerCmd, codec: &str, transport: &str, tmp: &Path, name: &str) -> Row {
    let dir = tmp
        .join(format!("echo-{}-{codec}-{transport}", w.language))
        .join("echo");
    std::fs::create_dir_all(&dir).unwrap();
    let mut env = serde_json::json!({"TEST_MAX_CONCURRENCY": IN_FLIGHT.to_string()});
    if let (Some(e), Some(extra)) = (env.as_object_mut(), w.env.as_object()) {
        e.extend(extra.clone());
    }
    let mut manifest = serde_json::json!({
        "name": "echo", "language": w.language, "version": "1.0.0",
        "command": w.command.display().to_string(), "args": w.args, "codec": codec, "instances": 1,
        "transport": transport,
        "env": env,
        "healthCheck": {"intervalMs": 60000},
    });
    if w.command.extension().is_some_and(|e| e == "ts") {
        // A TypeScript worker: the runtime compiles it in its module folder (once; the
        // compile is not timed) and runs it through Node and the TypeScript SDK.
        std::fs::copy(&w.command, dir.join("worker.ts")).unwrap();
        let m = manifest.as_object_mut().unwrap();
        m.remove("command");
        m.remove("args");
        m.insert("path".into(), serde_json::json!("worker.ts"));
    }
    std::fs::write(dir.join("module.json"), manifest.to_string()).unwrap();
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(dir.parent().unwrap()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let params = || Value::Array(vec![Value::from("hello")]);
    for _ in 0..2000 {
        rt.call("echo", "echo", params()).await.unwrap();
    }
    let mut lat = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        rt.call("echo", "echo", params()).await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let done = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (rt, done) = (rt.clone(), done.clone());
            tokio::spawn(async move {
                while done.fetch_add(1, Ordering::Relaxed) < CALLS {
                    rt.call("echo", "echo", Value::Array(vec![Value::from("hello")]))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    rt.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
    Row {
        name: name.to_owned(),
        p50_us: lat[ROUNDS / 2],
        p99_us: lat[ROUNDS * 99 / 100],
        calls_per_s: Some(CALLS as f64 / secs),
    }
}

/// RSS of an idle `polyglot-host` (release) serving the bundled modules.
fn host_rss_kib() -> Option<u64> {
    run(Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "polyglot-host"])
        .current_dir(repo()));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let mut child = Command::new(target.join("release/polyglot-host"))
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    use std::io::BufRead;
    let stdout = child.stdout.take()?;
    for line in std::io::BufReader::new(stdout).lines() {
        if line.ok()?.contains("Ctrl-C") {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    rss
}

/// The test workers of the other SDKs, built for speed (Go's default build, C++ Release).
fn other_workers(tmp: &Path) -> Vec<WorkerCmd> {
    let go = tmp.join("go-test-worker");
    run(Command::new("go")
        .args(["build", "-o"])
        .arg(&go)
        .arg("./cmd/polyglot-test-worker")
        .current_dir(repo().join("go")));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let cpp = target.join("cpp-release");
    run(Command::new("cmake")
        .arg("-S")
        .arg(repo().join("cpp"))
        .arg("-B")
        .arg(&cpp)
        .args([
            "-G",
            "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DPOLYGLOT_REQUIRE_GRPC=ON",
        ]));
    run(Command::new("cmake")
        .arg("--build")
        .arg(&cpp)
        .args(["--target", "polyglot-test-worker"]));
    let python = repo().join(".venv/bin/python");
    vec![
        WorkerCmd {
            language: "go",
            command: go,
            args: vec![],
            env: serde_json::json!({}),
        },
        WorkerCmd {
            language: "cpp",
            command: cpp.join("polyglot-test-worker"),
            args: vec![],
            env: serde_json::json!({}),
        },
        WorkerCmd {
            language: "python",
            command: if python.exists() {
                python
            } else {
                PathBuf::from("python3")
            },
            args: vec![repo()
                .join("tests/workers/python_worker.py")
                .display()
                .to_string()],
            env: serde_json::json!({"PYTHONPATH": repo().join("python").display().to_string()}),
        },
        // Node.js 20 and the TypeScript SDK (`typescript/`, built by `npm ci && npm run
        // build` there, as scripts/test.sh does).
        WorkerCmd {
            language: "typescript",
            command: repo().join("tests/workers/typescript_worker.ts"),
            args: vec![],
            env: serde_json::json!({}),
        },
    ]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for names; there is one, this run.
    }
    let tmp = tempfile::tempdir().unwrap();
    let worker = release_worker();
    let floor = floor(tmp.path());
    let node = node();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let json = rt.block_on(polyglot(&worker, "json", tmp.path()));
    let mp = rt.block_on(polyglot(&worker, "msgpack", tmp.path()));
    let rust = WorkerCmd {
        language: "rust",
        command: worker.clone(),
        args: vec![],
        env: serde_json::json!({}),
    };
    let mut languages = vec![(
        Row {
            name: "Rust worker".into(),
            ..mp.clone()
        },
        Some(rt.block_on(echo_through(
            &rust,
            "msgpack",
            "grpc",
            tmp.path(),
            "Rust worker",
        ))),
    )];
    for w in other_workers(tmp.path()) {
        let name = format!("{} worker", w.language);
        let stdio = rt.block_on(echo_through(&w, "msgpack", "stdio", tmp.path(), &name));
        // The Python and TypeScript SDKs serve stdio and sockets only.
        let grpc = (!matches!(w.language, "python" | "typescript"))
            .then(|| rt.block_on(echo_through(&w, "msgpack", "grpc", tmp.path(), &name)));
        languages.push((stdio, grpc));
    }
    let plugin = go_plugin(tmp.path());
    drop(rt);

    println!(
        "\n{:<52} {:>9} {:>9} {:>14}",
        "echo, one call at a time / 64 in flight", "p50 µs", "p99 µs", "calls/s @64"
    );
    for r in [&floor, &node, &json, &mp] {
        let tput = r.calls_per_s.map_or("-".to_owned(), |c| format!("{c:.0}"));
        println!(
            "{:<52} {:>9.1} {:>9.1} {:>14}",
            r.name, r.p50_us, r.p99_us, tput
        );
    }
    let node_tput = node.calls_per_s.unwrap();
    println!("\nratios (target):");
    println!(
        "  p50 json / raw pipe         {:.2}  (<= 2.0)",
        json.p50_us / floor.p50_us
    );
    println!(
        "  p50 msgpack / raw pipe      {:.2}  (<= 2.0)",
        mp.p50_us / floor.p50_us
    );
    println!(
        "  p50 json / Node             {:.2}  (< 1.0)",
        json.p50_us / node.p50_us
    );
    println!(
        "  calls/s json / Node         {:.2}  (>= 1.0)",
        json.calls_per_s.unwrap() / node_tput
    );
    println!(
        "  calls/s msgpack / Node      {:.2}  (>= 1.3)",
        mp.calls_per_s.unwrap() / node_tput
    );
    println!(
        "\n{:<22} {:>10} {:>10} {:>12} {:>10} {:>10} {:>12}",
        "per language, msgpack",
        "stdio p50",
        "stdio p99",
        "stdio /s@64",
        "gRPC p50",
        "gRPC p99",
        "gRPC /s@64"
    );
    let cells = |r: Option<&Row>| match r {
        Some(r) => format!(
            "{:>10.1} {:>10.1} {:>12.0}",
            r.p50_us,
            r.p99_us,
            r.calls_per_s.unwrap_or(0.0)
        ),
        None => format!("{:>10} {:>10} {:>12}", "-", "-", "-"),
    };
    for (stdio, grpc) in &languages {
        println!(
            "{:<22} {} {}",
            stdio.name,
            cells(Some(stdio)),
            cells(grpc.as_ref())
        );
    }
    println!(
        "\n{:<52} {:>9} {:>9} {:>14}",
        "gRPC worker transport vs go-plugin", "p50 µs", "p99 µs", "calls/s @64"
    );
    let grpc_row = |lang: &str| {
        languages
            .iter()
            .find(|(s, _)| s.name.starts_with(lang))
            .and_then(|(_, g)| g.clone())
            .expect("a gRPC row")
    };
    let (go_grpc, rust_grpc) = (grpc_row("go"), grpc_row("Rust"));
    for (name, r) in [
        (plugin.name.clone(), &plugin),
        (
            "polyglot Runtime::call -> Go gRPC worker".to_owned(),
            &go_grpc,
        ),
        (
            "polyglot Runtime::call -> Rust gRPC worker".to_owned(),
            &rust_grpc,
        ),
    ] {
        println!(
            "{:<52} {:>9.1} {:>9.1} {:>14.0}",
            name,
            r.p50_us,
            r.p99_us,
            r.calls_per_s.unwrap_or(0.0)
        );
    }
    let plugin_tput = plugin.calls_per_s.unwrap();
    println!("\nratios (target):");
    for (name, r) in [("Go", &go_grpc), ("Rust", &rust_grpc)] {
        println!(
            "  calls/s {name} gRPC worker / go-plugin   {:.2}  (>= 2.0)",
            r.calls_per_s.unwrap() / plugin_tput
        );
        println!(
            "  p50 {name} gRPC worker / go-plugin       {:.2}  (< 1.0)",
            r.p50_us / plugin.p50_us
        );
    }
    match host_rss_kib() {
        Some(kib) => println!(
            "\nidle polyglot-host RSS with the bundled modules: {:.1} MB (target < 30 MB)",
            kib as f64 / 1024.0
        ),
        None => println!("\nidle polyglot-host RSS: could not be measured"),
    }
}
