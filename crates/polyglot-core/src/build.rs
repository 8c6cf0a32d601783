//! A module's build step: run when its output is missing or older than its inputs.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::error::BuildError;
use crate::manifest::{BuildSpec, Manifest};

/// A build that runs longer than this is stopped: long enough for a cold compile of a
/// large worker on two cores, short enough that a hung build does not hang the host.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How many lines of a failed build's output an error shows.
const OUTPUT_TAIL_LINES: usize = 30;

/// Whether `spec` needs to run: its output is missing, an input is newer than the output,
/// or it names no output at all.
pub fn needs_build(spec: &BuildSpec) -> bool {
    let Some(output) = &spec.output else {
        return true;
    };
    // The output itself, not what it links to: a venv's `bin/python` is a link to an
    // interpreter older than any input.
    let Some(built) = std::fs::symlink_metadata(output)
        .and_then(|m| m.modified())
        .ok()
    else {
        return true;
    };
    spec.inputs
        .iter()
        .any(|i| newest(i).is_some_and(|t| t > built))
}

/// Runs the module's build if it needs to. Returns whether it ran.
///
/// # Errors
/// A [`BuildError`] with the command, its exit status and the end of its output.
pub async fn ensure_built(m: &Manifest) -> Result<bool, BuildError> {
    let Some(spec) = &m.build else {
        return Ok(false);
    };
    if !needs_build(spec) {
        return Ok(false);
    }
    let command = spec.program.to_string();
    // One build of a module folder at a time, across threads and processes (two hosts,
    // or a host and a test, on the same folder): builds are not safe to run twice at
    // once. Whoever waited re-checks: the other build may have done the work.
    let lock = lock_folder(&m.dir).await.map_err(|e| BuildError {
        module: m.name.clone(),
        command: command.clone(),
        reason: format!(
            "cannot take the build lock {}: {e}",
            m.dir.join(BUILD_LOCK).display()
        ),
        output: Vec::new(),
    })?;
    if !needs_build(spec) {
        return Ok(false);
    }
    let fail = |reason: String, output: Vec<String>| BuildError {
        module: m.name.clone(),
        command: command.clone(),
        reason,
        output,
    };
    tracing::info!(module = %m.name, command = %command, "building");
    let mut child = Command::new(&spec.program.command)
        .args(&spec.program.args)
        .current_dir(&m.dir)
        .envs(&m.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot be run: {e}"), Vec::new()))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let run = async {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let (ra, rb, status) = tokio::join!(
            out.read_to_end(&mut a),
            err.read_to_end(&mut b),
            child.wait()
        );
        ra.and(rb)?;
        a.extend_from_slice(&b);
        Ok::<_, std::io::Error>((status?, a))
    };
    let (status, output) = match tokio::time::timeout(BUILD_TIMEOUT, run).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(fail(format!("failed: {e}"), Vec::new())),
        Err(_) => {
            return Err(fail(
                format!("did not finish within {} s", BUILD_TIMEOUT.as_secs()),
                Vec::new(),
            ))
        }
    };
    let text = String::from_utf8_lossy(&output);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let tail = lines[lines.len().saturating_sub(OUTPUT_TAIL_LINES)..].to_vec();
    if !status.success() {
        return Err(fail(
            format!("failed with {}", crate::process::describe_exit(&status)),
            tail,
        ));
    }
    if let Some(o) = &spec.output {
        if !o.exists() {
            return Err(fail(
                format!("succeeded but did not produce {}", o.display()),
                tail,
            ));
        }
    }
    tracing::info!(module = %m.name, "built");
    drop(lock);
    Ok(true)
}

/// The lock file a build holds, in the module folder.
pub const BUILD_LOCK: &str = ".polyglot-build.lock";

/// Takes the exclusive lock of a module folder's builds (released when dropped).
async fn lock_folder(dir: &Path) -> std::io::Result<std::fs::File> {
    let path = dir.join(BUILD_LOCK);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The newest modification time of the files under `p` (a file, or a folder walked
/// recursively, skipping hidden entries such as `.venv` and `.git`). Folders' own times
/// do not count: writing the output into `bin/` touches `bin/`, which is no reason to
/// build again.
/// Folders of a module that hold what builds and tools make, not its sources.
pub(crate) const NOT_SOURCES: [&str; 6] = [
    "target",
    "build",
    "dist",
    "node_modules",
    "__pycache__",
    "venv",
];

/// The newest modification time among a module's sources: the files of its folder but
/// its manifest, its build's output, hidden entries and the folders of [`NOT_SOURCES`].
/// Two equal stamps mean its code did not change in between.
pub(crate) fn source_stamp(m: &Manifest) -> Option<SystemTime> {
    fn walk(p: &Path, skip: &[&Path], best: &mut Option<SystemTime>) {
        let Ok(entries) = std::fs::read_dir(p) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            if name.starts_with('.') || skip.contains(&path.as_path()) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if !NOT_SOURCES.contains(&name.as_ref()) {
                    walk(&path, skip, best);
                }
            } else if let Ok(t) = meta.modified() {
                *best = Some(best.map_or(t, |b| b.max(t)));
            }
        }
    }
    if m.dir.as_os_str().is_empty() {
        return None;
    }
    let manifest = m.dir.join(crate::manifest::MANIFEST_FILE);
    let mut skip = vec![manifest.as_path()];
    if let Some(out) = m.build.as_ref().and_then(|b| b.output.as_deref()) {
        skip.push(out);
    }
    let mut best = None;
    walk(&m.dir, &skip, &mut best);
    best
}

fn newest(p: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(p).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let mut best = None;
    for entry in std::fs::read_dir(p).ok()?.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if let Some(t) = newest(&entry.path()) {
            best = Some(best.map_or(t, |b: SystemTime| b.max(t)));
        }
    }
    best
}
