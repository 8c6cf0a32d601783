//! The `polyglot-host` binary, run for real: one-shot calls, the module list, serving
//! until SIGTERM, and no worker left behind when the host is killed with SIGKILL.

#[path = "../../polyglot-core/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{alive, Lang, Modules};

fn host(mods: &Modules) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_polyglot-host"));
    c.arg("--modules").arg(mods.dir());
    c
}

fn fixture() -> Modules {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({"instances": 2}));
    mods
}

#[test]
fn call_prints_the_result_as_json() {
    let mods = fixture();
    let out = host(&mods)
        .args(["call", "calc", "add", "[40, 2]"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, json!(42));

    let out = host(&mods)
        .args(["call", "calc", "echo", r#"[{"$bytes": "AAE="}]"#, "--meta"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], json!({"$bytes": "AAE="}));
    assert_eq!(v["servedBy"], json!("calc"));
    assert_eq!(v["fallback"], json!(false));
}

#[test]
fn a_failed_call_exits_non_zero_with_the_error_on_stderr() {
    let mods = fixture();
    let out = host(&mods)
        .args(["call", "calc", "fail", r#"["NOPE", "not today"]"#])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("calc.fail failed: NOPE: not today"), "{err}");

    let out = host(&mods)
        .args(["call", "calc", "teleport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no method \"teleport\""));

    let out = host(&mods)
        .args(["call", "calc", "add", "[1,"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));

    let out = Command::new(env!("CARGO_BIN_EXE_polyglot-host"))
        .args(["--modules", "/nonexistent/modules", "modules"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/modules"));
}

#[test]
fn modules_lists_versions_instances_and_health() {
    let mods = fixture();
    mods.add_raw("broken", r#"{"name": "broken"}"#);
    let out = host(&mods).arg("modules").output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("calc"))
        .unwrap_or_else(|| panic!("{table}"));
    for cell in ["1.0.0", "rust", "running", "healthy", "2/2"] {
        assert!(row.contains(cell), "{row:?} lacks {cell}");
    }
    // The broken manifest is reported, naming its file and what is missing.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken/module.json") && err.contains("language"),
        "{err}"
    );

    let out = host(&mods).args(["modules", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["name"], json!("calc"));
    assert_eq!(v[0]["instances"].as_array().unwrap().len(), 2);
}

#[test]
fn help_names_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_polyglot-host"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "call", "modules", "--modules"] {
        assert!(text.contains(word), "{text}");
    }
}

/// Starts `serve` and returns it once the module table is printed.
fn serve(mods: &Modules) -> std::process::Child {
    // Port 0: tests run in parallel, each host on its own free port.
    let mut child = host(mods)
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in lines.by_ref() {
        if line.unwrap().contains("Ctrl-C") {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    if let Ok(Some(status)) = child.try_wait() {
        panic!("the host exited before serving: {status:?}");
    }
    // Keep reading stdout so the host never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// The pids whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            let after = stat.rsplit(')').next().unwrap_or("");
            let ppid: u32 = after
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if ppid == pid {
                out.push(p);
            }
        }
    }
    out
}

fn wait_gone(pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "{what}: workers still running: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_stops_its_workers_on_sigterm() {
    let mods = fixture();
    let mut child = serve(&mods);
    let workers = children(child.id());
    assert_eq!(workers.len(), 2, "two worker processes");
    unsafe_kill(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    wait_gone(&workers, "after SIGTERM");
}

#[test]
fn no_worker_outlives_a_host_killed_with_sigkill() {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({"instances": 2}));
    mods.add("py", Lang::Python, json!({}));
    let mut child = serve(&mods);
    let workers = children(child.id());
    assert_eq!(workers.len(), 3, "three worker processes: {workers:?}");
    child.kill().unwrap(); // SIGKILL: the host cannot clean up
    child.wait().unwrap();
    wait_gone(&workers, "after SIGKILL of the host");
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: u32, sig: i32) {
    // SAFETY: kill takes plain integers and touches no memory.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// With `--log-format json` every line is a JSON object, and a worker's lines carry its
/// module, version and instance (the `worker` span).
#[test]
fn json_logs_name_the_module_version_and_instance() {
    let mods = fixture();
    let out = host(&mods)
        .args(["--log-format", "json", "call", "calc", "add", "[1, 2]"])
        .env("POLYGLOT_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let ready: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "worker ready")
        .collect();
    assert_eq!(ready.len(), 2, "one per instance: {stderr}");
    let mut instances: Vec<u64> = ready
        .iter()
        .map(|l| {
            let span = &l["span"];
            assert_eq!(span["name"], "worker", "{l}");
            assert_eq!(
                (&span["module"], &span["version"]),
                (&json!("calc"), &json!("1.0.0"))
            );
            span["instance"].as_u64().unwrap()
        })
        .collect();
    instances.sort_unstable();
    assert_eq!(instances, [0, 1]);
}
