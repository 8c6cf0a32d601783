//! `polyglot-host serve --watch` with real Python workers in a temporary modules folder:
//! an edited module serves its new code while calls run on without one failing, a broken
//! manifest leaves the old version serving, a new folder is loaded and a removed one
//! unloaded, and what a build writes never sets off another build without end.

#[path = "../../polyglot-core/tests/support/mod.rs"]
mod support;

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, json_call, start_with, Host};
use polyglot_proto::v1 as pb;
use serde_json::json;
use support::{Lang, Modules};
use tokio::sync::watch;
use tonic::Code;

/// How long a change may take to be served: the watcher's debounce, a Python worker's
/// start and health check, with room for a loaded machine.
const CHANGE_SERVED_WITHIN: Duration = Duration::from_secs(30);

/// A worker that answers `answer()` with `answer`.
fn worker_code(answer: &str) -> String {
    format!(
        r#"import os
from polyglot_worker import Worker

worker = Worker(os.environ["POLYGLOT_MODULE"], version=os.environ["POLYGLOT_VERSION"])


@worker.method
def answer() -> str:
    return {answer:?}


worker.serve()
"#
    )
}

/// Writes module folder `name` under `root`: its manifest (a Python module, `extra`
/// merged in) and its worker.
fn write_module(root: &Path, name: &str, answer: &str, extra: serde_json::Value) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifest = support::base_manifest(name, Lang::Python);
    support::merge(
        &mut manifest,
        json!({"args": [dir.join("worker.py").display().to_string()]}),
    );
    support::merge(&mut manifest, extra);
    std::fs::write(dir.join("worker.py"), worker_code(answer)).unwrap();
    std::fs::write(
        dir.join("module.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    dir
}

/// Replaces a file the way editors save: a temporary file renamed over it.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn answer(host: &Host, module: &str) -> Result<String, tonic::Status> {
    let mut c = client(host).await;
    let r = c.call(json_call(module, "answer", json!([]))).await?;
    Ok(serde_json::from_slice(&r.into_inner().result).unwrap())
}

/// Calls `module`'s `answer` until it returns `want` (or `within` passes).
async fn until_answer(host: &Host, module: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = answer(host, module).await;
        if got.as_deref().ok() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{module} does not answer {want:?} yet: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn module_names(host: &Host) -> Vec<String> {
    let mut c = client(host).await;
    let r = c.list_modules(pb::ListModulesRequest {}).await.unwrap();
    r.into_inner().modules.into_iter().map(|m| m.name).collect()
}

#[tokio::test]
async fn an_edited_module_serves_its_new_code_and_no_call_fails_meanwhile() {
    let mods = Modules::new();
    let dir = write_module(mods.dir(), "py", "v1", json!({}));
    let host = start_with(&mods, None, &["--watch"]);
    assert_eq!(answer(&host, "py").await.unwrap(), "v1");

    // Callers call on and on, through the change, each on its own connection.
    let (stop_tx, stop) = watch::channel(false);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let (url, seen, mut stop) = (host.url.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                let mut c = pb::runtime_client::RuntimeClient::connect(url)
                    .await
                    .unwrap();
                let mut mine = Vec::new();
                while !*stop.borrow_and_update() {
                    let r = c.call(json_call("py", "answer", json!([]))).await;
                    let r = r
                        .map(|r| serde_json::from_slice::<String>(&r.into_inner().result).unwrap());
                    mine.push(r.map_err(|s| format!("{:?}: {}", s.code(), s.message())));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                seen.lock().unwrap().push(mine);
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    save(&dir.join("worker.py"), &worker_code("v2"));
    until_answer(&host, "py", "v2", CHANGE_SERVED_WITHIN).await;
    // The old version has drained and stopped; calls keep going to the new one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(true).unwrap();
    drop(stop);
    for c in callers {
        c.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    for results in seen.iter() {
        let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "calls failed during the reload: {failed:?}"
        );
        let answers: Vec<&str> = results.iter().map(|r| r.as_deref().unwrap()).collect();
        // Every caller saw the old code, then the new one, and never the old again.
        let first_new = answers.iter().position(|a| *a == "v2").expect("saw v2");
        assert!(first_new > 0, "saw v1 first: {answers:?}");
        assert!(
            answers[first_new..].iter().all(|a| *a == "v2"),
            "{answers:?}"
        );
    }
}

#[tokio::test]
async fn a_broken_manifest_leaves_the_old_version_serving_until_it_is_fixed() {
    let mods = Modules::new();
    let dir = write_module(mods.dir(), "py", "v1", json!({}));
    let host = start_with(&mods, None, &["--watch"]);
    assert_eq!(answer(&host, "py").await.unwrap(), "v1");

    let manifest = std::fs::read_to_string(dir.join("module.json")).unwrap();
    save(
        &dir.join("module.json"),
        "{ \"name\": \"py\", this is not JSON",
    );
    std::fs::write(dir.join("worker.py"), worker_code("v2")).unwrap();
    // Well past the debounce and a reload's time: still the old version.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(answer(&host, "py").await.unwrap(), "v1");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Fixed, it reloads with the code changed meanwhile.
    save(&dir.join("module.json"), &manifest);
    until_answer(&host, "py", "v2", CHANGE_SERVED_WITHIN).await;
}

#[tokio::test]
async fn a_new_folder_is_loaded_and_a_removed_one_is_unloaded() {
    let mods = Modules::new();
    let a = write_module(mods.dir(), "a", "from a", json!({}));
    let host = start_with(&mods, None, &["--watch"]);
    assert_eq!(answer(&host, "a").await.unwrap(), "from a");
    assert_eq!(answer(&host, "b").await.unwrap_err().code(), Code::NotFound);

    write_module(mods.dir(), "b", "from b", json!({}));
    until_answer(&host, "b", "from b", CHANGE_SERVED_WITHIN).await;
    assert_eq!(module_names(&host).await, ["a", "b"]);

    std::fs::remove_dir_all(&a).unwrap();
    let deadline = Instant::now() + CHANGE_SERVED_WITHIN;
    loop {
        match answer(&host, "a").await {
            Err(s) if s.code() == Code::NotFound => break,
            other => assert!(Instant::now() < deadline, "a is still served: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(module_names(&host).await, ["b"]);
    assert_eq!(answer(&host, "b").await.unwrap(), "from b");
}

/// How many times the module's build ran (it appends a line to `build/runs`).
fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("build/runs"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Waits until the build count has not moved for `quiet`, and returns it.
async fn settled_runs(dir: &Path, quiet: Duration, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let (mut last, mut since) = (runs(dir), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = runs(dir);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            return now;
        }
        assert!(Instant::now() < deadline, "the builds never stop: {now}");
    }
}

#[tokio::test]
async fn what_a_build_writes_does_not_set_off_builds_without_end() {
    // Writes only where the watcher does not look: one build per change.
    let quiet_build = "mkdir -p build target __pycache__ && date +%s%N > build/out \
        && date +%s%N > target/out && date +%s%N > __pycache__/x.pyc && echo run >> build/runs";
    // Also writes a new file beside its sources at every run: the watcher notices that the
    // folder rewrites itself and stops after a few reloads.
    let noisy_build = "mkdir -p build && date +%s%N > stamp.txt && echo run >> build/runs";
    let mods = Modules::new();
    let quiet = write_module(
        mods.dir(),
        "quiet",
        "v1",
        json!({"build": {"command": "sh", "args": ["-c", quiet_build]}}),
    );
    let noisy = write_module(
        mods.dir(),
        "noisy",
        "v1",
        json!({"build": {"command": "sh", "args": ["-c", noisy_build]}}),
    );
    let host = start_with(&mods, None, &["--watch"]);
    assert_eq!((runs(&quiet), runs(&noisy)), (1, 1));

    save(&quiet.join("worker.py"), &worker_code("v2"));
    until_answer(&host, "quiet", "v2", CHANGE_SERVED_WITHIN).await;
    let quiet_runs = settled_runs(&quiet, Duration::from_secs(4), Duration::from_secs(60)).await;
    assert_eq!(quiet_runs, 2, "one build for one change");

    save(&noisy.join("worker.py"), &worker_code("v2"));
    until_answer(&host, "noisy", "v2", CHANGE_SERVED_WITHIN).await;
    let noisy_runs = settled_runs(&noisy, Duration::from_secs(5), Duration::from_secs(90)).await;
    // The change, then at most three reloads for what the builds wrote.
    assert!(
        (2..=5).contains(&noisy_runs),
        "{noisy_runs} builds for one change"
    );
    assert_eq!(answer(&host, "noisy").await.unwrap(), "v2");
    assert_eq!(runs(&quiet), 2, "the other module was not rebuilt");
}
