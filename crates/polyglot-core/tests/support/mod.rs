//! Fixtures shared by the end-to-end tests: real worker programs in Rust and Python, and
//! module folders written into temporary directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use polyglot_core::{Runtime, RuntimeConfig, Value};
use serde_json::json;

/// The languages every scenario runs in.
pub const LANGUAGES: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Go, Lang::Cpp];

/// The languages whose SDKs serve the gRPC transport.
pub const GRPC_LANGUAGES: [Lang; 3] = [Lang::Rust, Lang::Go, Lang::Cpp];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Go,
    Cpp,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Rust test worker (`crates/polyglot-worker/examples/test_worker.rs`), built once.
pub fn rust_worker() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let path = target.join("examples/test_worker");
    BUILD.call_once(|| {
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "polyglot-worker",
                "--example",
                "test_worker",
            ])
            .current_dir(repo())
            .status()
            .expect("run cargo");
        assert!(status.success(), "building the Rust test worker failed");
    });
    assert!(path.exists(), "no test worker at {}", path.display());
    path
}

/// The target directory this test runs from (`target/debug/deps/<test>` -> `target`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn run(cmd: &mut std::process::Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Go test worker (`go/cmd/polyglot-test-worker`), built once with `go build`.
pub fn go_worker() -> PathBuf {
    static BUILD: Once = Once::new();
    let path = target_dir().join("go/polyglot-test-worker");
    BUILD.call_once(|| {
        run(
            std::process::Command::new("go")
                .args(["build", "-o"])
                .arg(&path)
                .arg("./cmd/polyglot-test-worker")
                .current_dir(repo().join("go")),
            "building the Go test worker",
        );
    });
    path
}

/// The C++ test worker (`cpp/test_worker.cpp`), built once with CMake.
pub fn cpp_worker() -> PathBuf {
    static BUILD: Once = Once::new();
    let build = target_dir().join("cpp");
    BUILD.call_once(|| {
        let mut configure = std::process::Command::new("cmake");
        configure
            .arg("-S")
            .arg(repo().join("cpp"))
            .arg("-B")
            .arg(&build)
            .arg("-DCMAKE_BUILD_TYPE=Debug")
            // The test worker serves the gRPC transport too: a missing gRPC is an error.
            .arg("-DPOLYGLOT_REQUIRE_GRPC=ON");
        if which("ninja") {
            configure.args(["-G", "Ninja"]);
        }
        run(&mut configure, "configuring the C++ SDK");
        run(
            std::process::Command::new("cmake")
                .arg("--build")
                .arg(&build)
                .args(["--target", "polyglot-test-worker"]),
            "building the C++ test worker",
        );
    });
    build.join("polyglot-test-worker")
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The Python interpreter for Python workers: `POLYGLOT_TEST_PYTHON` (the test command
/// points it at the project's venv, which has `msgpack`), else that venv if it exists,
/// else `python3`.
pub fn python() -> String {
    if let Ok(p) = std::env::var("POLYGLOT_TEST_PYTHON") {
        return p;
    }
    let venv = repo().join(".venv/bin/python");
    if venv.exists() {
        return venv.display().to_string();
    }
    "python3".into()
}

/// The TypeScript SDK's folder (`typescript/`), which the runtime finds by itself beside
/// a module folder's parents or in this source tree. It must be built (`npm ci && npm run
/// build` there, as `scripts/test.sh` does): a test that needs it fails saying so.
pub fn typescript_sdk() -> PathBuf {
    let sdk = repo().join("typescript");
    assert!(
        sdk.join("dist/src/run.js").is_file() && sdk.join("node_modules/typescript").is_dir(),
        "the TypeScript SDK is not built: run `npm ci && npm run build` in {} (scripts/test.sh does)",
        sdk.display()
    );
    sdk
}

/// Copies the TypeScript test worker (`tests/workers/typescript_worker.ts`) into module
/// folder `dir` as `file` (e.g. `worker.ts`, `fallback/worker.ts`), where the runtime
/// compiles it; returns its path.
pub fn add_typescript_worker(dir: &Path, file: &str) -> PathBuf {
    typescript_sdk();
    let to = dir.join(file);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(repo().join("tests/workers/typescript_worker.ts"), &to).unwrap();
    to
}

/// A module folder in a temporary directory.
pub struct ModuleDir {
    pub root: tempfile::TempDir,
    pub name: String,
}

impl ModuleDir {
    pub fn path(&self) -> PathBuf {
        self.root.path().join(&self.name)
    }
}

/// A modules directory holding module folders.
pub struct Modules {
    pub root: tempfile::TempDir,
}

impl Modules {
    pub fn new() -> Modules {
        Modules {
            root: tempfile::tempdir().unwrap(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// Writes a module folder whose worker is the test worker in `lang`. `extra` fields
    /// are merged into the manifest (and may override the defaults).
    pub fn add(&self, name: &str, lang: Lang, extra: serde_json::Value) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut manifest = base_manifest(name, lang);
        merge(&mut manifest, extra);
        std::fs::write(
            dir.join("module.json"),
            serde_json::to_string_pretty(&manifest).unwrap(),
        )
        .unwrap();
        dir
    }

    /// Writes a raw manifest text.
    pub fn add_raw(&self, name: &str, text: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("module.json"), text).unwrap();
        dir
    }

    /// Loads every module and returns the runtime; panics on any load error unless
    /// `allow_errors`.
    pub async fn start(&self) -> Runtime {
        let rt = Runtime::new(RuntimeConfig {
            drain_timeout: Duration::from_secs(10),
        });
        let report = rt.load_dir(self.dir()).await;
        assert!(
            report.errors.is_empty(),
            "load errors: {:#?}",
            report.errors
        );
        rt
    }
}

pub fn base_manifest(name: &str, lang: Lang) -> serde_json::Value {
    let common = json!({
        "name": name,
        "version": "1.0.0",
        "timeoutMs": 5000,
        "handshakeTimeoutMs": 5000,
        "healthCheck": {"intervalMs": 200, "timeoutMs": 1000},
        "restart": {"maxRestarts": 50, "windowMs": 60000, "backoffInitialMs": 20, "backoffMaxMs": 200},
        "shutdownGraceMs": 2000,
    });
    let specific = match lang {
        Lang::Rust => json!({"language": "rust", "command": rust_worker().display().to_string()}),
        Lang::Python => json!({
            "language": "python",
            "command": python(),
            "args": [repo().join("tests/workers/python_worker.py").display().to_string()],
            "env": {"PYTHONPATH": repo().join("python").display().to_string(), "PYTHONUNBUFFERED": "1"},
        }),
        Lang::Go => json!({"language": "go", "command": go_worker().display().to_string()}),
        Lang::Cpp => json!({"language": "cpp", "command": cpp_worker().display().to_string()}),
    };
    let mut m = common;
    merge(&mut m, specific);
    m
}

/// Merges `extra` into `base`, recursing into objects (so `env` entries add up).
pub fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, e) => *b = e,
    }
}

pub fn args(items: Vec<Value>) -> Value {
    Value::Array(items)
}

/// Polls `f` every 20 ms until it is true or `within` passes.
pub async fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}
