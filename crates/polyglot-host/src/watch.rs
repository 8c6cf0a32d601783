//! `serve --watch`: the modules folder watched for changes, each changed module folder
//! rebuilt and reloaded without downtime ([`Runtime::reload`]), a new folder loaded
//! ([`Runtime::load_module`]), a removed one drained and stopped ([`Runtime::unload`]).
//!
//! How a change becomes a reload:
//! - Every folder of a module is watched (one `inotify` watch per directory, not a
//!   recursive one) except what builds and runs write: [`IGNORED_DIRS`], hidden folders,
//!   [`ignored_file`]s, and the manifest's own `build.output` (with its temporaries).
//!   A build writing into a watched place would otherwise trigger the next build, forever.
//! - A folder's events are debounced ([`DEBOUNCE`]): an editor's save, a `git checkout`
//!   or a copy is one change, acted on once its files are quiet.
//! - Then the folder's content is fingerprinted (each file's hash), and compared with the
//!   content last acted on: a touched file, a rewritten identical file (a deterministic
//!   build's output in an unexpected place) or an editor's temporary file that came and
//!   went is no change.
//! - A change attributed to the watcher's own work (it arrived during a reload, or within
//!   [`SETTLE`] after it) that keeps coming back is a build or a worker writing into its
//!   own folder: after [`MAX_SELF_RELOADS`] such reloads in a row the watcher stops
//!   reacting to it, and says which files.
//!
//! A failed build, a bad manifest or a worker that does not start leaves the running
//! version serving (`Runtime::reload` deploys the new one only once it is ready) and is
//! logged; the next change tries again. A module served in the host's own process (a
//! builtin) is not reloaded: its handler is compiled in.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::hash::Hasher;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use notify::{EventKind, RecursiveMode, Watcher as _};
use polyglot_core::{Manifest, Runtime, MANIFEST_FILE};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// A folder is acted on once no event came for it for this long: an editor's save (a
/// temporary file, a rename, a metadata change) or a `git checkout` takes a few
/// milliseconds to tens of them; a person saving again takes longer.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// Changes that arrive this long after a reload of the folder ended are attributed to
/// it (the new workers starting up and writing files) when deciding whether the folder
/// rewrites itself: the time a worker takes to start and settle.
pub const SETTLE: Duration = Duration::from_secs(2);

/// After this many reloads in a row caused only by changes attributed to the reloads
/// themselves, a folder's self-made changes are taken as its own output and not acted on:
/// a deterministic build settles after one, so three is a loop.
pub const MAX_SELF_RELOADS: u32 = 3;

/// Files larger than this are fingerprinted by size and modification time, not by
/// content: hashing a model's weights at every change costs more than the reload.
pub const HASH_LIMIT: u64 = 64 << 20;

/// On shutdown, the watcher has this long to finish what it is doing (a reload ends
/// with its new workers ready, or fails) before it is dropped mid-way.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// Folders inside a module folder that hold what builds and package managers produce,
/// never sources: Cargo's and CMake's `target`/`build`, `dist`, `node_modules`,
/// Python's `__pycache__`. Hidden folders (`.venv`, `.git`, `.mypy_cache`, ...) are
/// ignored too.
pub const IGNORED_DIRS: &[&str] = &["target", "build", "dist", "node_modules", "__pycache__"];

/// Whether a file is one no change of which is a change of the module: editors'
/// temporaries and backups, compiled Python, what a running worker writes (logs, pid
/// files, sockets), core dumps.
pub fn ignored_file(name: &str) -> bool {
    name.ends_with('~')
        || name.starts_with(".#")
        || name == "4913" // vim's probe that a folder is writable
        || [".swp", ".swx", ".pyc", ".pyo", ".log", ".pid", ".sock"]
            .iter()
            .any(|ext| name.ends_with(ext))
        || name == "core"
        || name
            .strip_prefix("core.")
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a folder's relative path is one the watcher does not look into.
fn ignored_dir(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') || IGNORED_DIRS.contains(&name.as_ref())
}

/// A running watcher; [`Watch::stop`] ends it.
pub struct Watch {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// Stops watching, after the reload or load in progress (if any) ends, within
    /// [`STOP_WAIT`].
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
            tracing::warn!(
                "the module watcher did not finish its work in time; it is stopped mid-way"
            );
            task.abort();
        }
    }
}

/// Starts watching the module folders of `dir` for `runtime`, which has loaded them:
/// from when this returns, every change is seen.
///
/// # Errors
/// When the folder cannot be watched (it does not exist, or the system's watch limit is
/// reached).
pub fn start(runtime: Runtime, dir: &Path) -> anyhow::Result<Watch> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (tx, events) = mpsc::unbounded_channel();
    let notify = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        // The receiver is gone only once the watcher stops.
        let _ = tx.send(e);
    })
    .context("cannot start watching files")?;
    let mut w = ModulesWatcher {
        runtime,
        dir: dir.clone(),
        notify,
        watched: HashSet::new(),
        folders: BTreeMap::new(),
        hashes: HashMap::new(),
    };
    w.notify
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    let mut claimed = HashSet::new();
    for folder in w.module_folders() {
        w.track(&folder);
        // As the runtime loaded them: the first folder of a name serves it.
        if let Ok(m) = Manifest::load(&folder) {
            if w.runtime.module(&m.name).is_some() && claimed.insert(m.name.clone()) {
                let f = w.folders.get_mut(&folder).expect("tracked");
                f.module = Some(m.name.clone());
            }
            w.set_ignores(&folder, &m);
        }
        let fp = w.fingerprint(&folder);
        w.folders.get_mut(&folder).expect("tracked").baseline = Some(fp);
    }
    tracing::info!(dir = %dir.display(), folders = w.folders.len(), debounce_ms = DEBOUNCE.as_millis() as u64,
        "watching the module folders: a changed folder is rebuilt and reloaded");
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(w.run(events, stopped));
    Ok(Watch { stop, task })
}

/// What the watcher knows of one module folder.
#[derive(Default)]
struct Folder {
    /// The module it serves in the runtime, once it does.
    module: Option<String>,
    /// The manifest's build output and its temporaries' prefix, ignored.
    output: Option<PathBuf>,
    /// The content last acted on.
    baseline: Option<Fingerprint>,
    /// When the last event came, while the folder has changes not acted on yet.
    pending: Option<Instant>,
    /// Whether every pending event came during or right after the folder's own reload.
    self_made: bool,
    /// Reloads in a row caused only by self-made changes.
    self_reloads: u32,
    /// When the folder's last reload (or load) ended.
    acted_at: Option<Instant>,
}

/// A folder's content: each file (relative path) and its hash.
type Fingerprint = BTreeMap<PathBuf, u64>;

struct ModulesWatcher {
    runtime: Runtime,
    /// The modules folder, absolute.
    dir: PathBuf,
    notify: notify::RecommendedWatcher,
    /// The directories with a watch.
    watched: HashSet<PathBuf>,
    folders: BTreeMap<PathBuf, Folder>,
    /// File hashes by path, valid while the size and modification time are those.
    hashes: HashMap<PathBuf, (u64, Option<SystemTime>, u64)>,
}

impl ModulesWatcher {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
        mut stop: oneshot::Receiver<()>,
    ) {
        loop {
            let due = self
                .folders
                .values()
                .filter_map(|f| f.pending)
                .min()
                .map(|last| last + DEBOUNCE);
            let wait = async {
                match due {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = &mut stop => return,
                e = events.recv() => match e {
                    Some(Ok(e)) => self.on_event(e),
                    Some(Err(e)) => tracing::warn!(error = %e, "the file watcher reported an error"),
                    None => return,
                },
                () = wait => {
                    let now = Instant::now();
                    let ready: Vec<PathBuf> = self
                        .folders
                        .iter()
                        .filter(|(_, f)| f.pending.is_some_and(|t| t + DEBOUNCE <= now))
                        .map(|(p, _)| p.clone())
                        .collect();
                    for folder in ready {
                        self.settle(&folder).await;
                    }
                }
            }
        }
    }

    /// The module folders directly under the modules folder (hidden ones aside).
    fn module_folders(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir() && !hidden(p))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Starts tracking a module folder: watches on it and every folder inside it that
    /// is not ignored.
    fn track(&mut self, folder: &Path) {
        self.folders.entry(folder.to_path_buf()).or_default();
        self.watch_tree(folder);
    }

    fn watch_tree(&mut self, d: &Path) {
        if self.watched.contains(d) {
            return;
        }
        match self.notify.watch(d, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(d.to_path_buf());
            }
            Err(e) => {
                tracing::warn!(dir = %d.display(), error = %e, "cannot watch a folder; its changes go unseen");
                return;
            }
        }
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) && !ignored_dir(&e.file_name()) {
                self.watch_tree(&p);
            }
        }
    }

    /// Records the manifest's build output as ignored in `folder`.
    fn set_ignores(&mut self, folder: &Path, m: &Manifest) {
        if let Some(f) = self.folders.get_mut(folder) {
            f.output = m.build.as_ref().and_then(|b| b.output.clone());
        }
    }

    /// Which module folder `path` is in, and its path inside it (empty for the folder
    /// itself). `None` for the modules folder itself and paths outside it.
    fn locate<'a>(&self, path: &'a Path) -> Option<(PathBuf, &'a Path)> {
        let rel = path.strip_prefix(&self.dir).ok()?;
        let mut parts = rel.components();
        let Some(Component::Normal(first)) = parts.next() else {
            return None;
        };
        Some((self.dir.join(first), parts.as_path()))
    }

    /// Whether `inner` (a path inside `folder`) is one whose change is no change.
    fn ignored(&self, folder: &Path, inner: &Path) -> bool {
        let mut parts: Vec<&OsStr> = inner
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let Some(name) = parts.pop() else {
            return false;
        };
        if parts.iter().any(|p| ignored_dir(p)) {
            return true;
        }
        let name_text = name.to_string_lossy();
        if ignored_file(&name_text) {
            return true;
        }
        // An ignored folder, or one just removed (a file of that name is a source).
        if ignored_dir(name) {
            let p = folder.join(inner);
            if p.is_dir() || !p.exists() {
                return true;
            }
        }
        // The build's output, and its temporaries beside it (`out.tmp`, `out~`).
        let Some(output) = self.folders.get(folder).and_then(|f| f.output.as_ref()) else {
            return false;
        };
        let path = folder.join(inner);
        path.parent() == output.parent()
            && output
                .file_name()
                .is_some_and(|o| name_text.starts_with(&*o.to_string_lossy()))
    }

    fn on_event(&mut self, e: notify::Event) {
        if e.need_rescan() {
            tracing::warn!("the file watcher missed events; looking at every module folder again");
            for folder in self.module_folders() {
                self.track(&folder);
            }
            let now = Instant::now();
            for f in self.folders.values_mut() {
                f.pending = Some(now);
                f.self_made = false;
            }
            return;
        }
        if matches!(e.kind, EventKind::Access(_)) {
            return;
        }
        for path in &e.paths {
            let Some((folder, inner)) = self.locate(path) else {
                continue;
            };
            if hidden(&folder) || self.ignored(&folder, inner) {
                continue;
            }
            if inner.as_os_str().is_empty() && !self.folders.contains_key(&folder) {
                if !folder.is_dir() {
                    continue;
                }
                tracing::info!(dir = %folder.display(), "a new module folder");
            }
            // A folder created or moved in: watch it and what it holds.
            if path.is_dir() {
                self.track(&folder);
                self.watch_tree(path);
            }
            let Some(f) = self.folders.get_mut(&folder) else {
                continue;
            };
            let now = Instant::now();
            let self_made = f
                .acted_at
                .is_some_and(|at| now.saturating_duration_since(at) <= SETTLE);
            f.self_made = if f.pending.is_some() {
                f.self_made && self_made
            } else {
                self_made
            };
            f.pending = Some(now);
        }
    }

    /// Acts on a folder whose changes have settled.
    async fn settle(&mut self, folder: &Path) {
        let Some(f) = self.folders.get_mut(folder) else {
            return;
        };
        f.pending = None;
        let self_made = std::mem::take(&mut f.self_made);
        if !folder.is_dir() {
            self.forget(folder).await;
            return;
        }
        let fp = self.fingerprint(folder);
        let f = self.folders.get_mut(folder).expect("tracked");
        let module = f
            .module
            .clone()
            .filter(|m| self.runtime.module(m).is_some());
        if f.baseline.as_ref() == Some(&fp) {
            tracing::debug!(dir = %folder.display(), "its files are as they were: nothing to do");
            return;
        }
        if self_made {
            f.self_reloads += 1;
            if f.self_reloads > MAX_SELF_RELOADS {
                let changed = changed_files(f.baseline.as_ref(), &fp);
                tracing::warn!(dir = %folder.display(), module = module.as_deref().unwrap_or("-"), files = ?changed,
                    "the folder changes by itself after each reload (its build or its workers write these files): not reloading for them; move them into an ignored folder (build/, target/, a hidden one)");
                f.baseline = Some(fp);
                f.self_reloads = 0;
                return;
            }
        } else {
            f.self_reloads = 0;
        }
        f.baseline = Some(fp);
        if !folder.join(MANIFEST_FILE).is_file() {
            if let Some(name) = &module {
                tracing::error!(module = %name, dir = %folder.display(),
                    "the folder has no module.json any more; the running version keeps serving (remove the folder to unload it)");
            }
            return;
        }
        let manifest = match Manifest::load(folder) {
            Ok(m) => m,
            Err(e) => {
                match &module {
                    Some(name) => tracing::error!(module = %name, error = %e,
                        "the changed manifest is invalid; the running version keeps serving"),
                    None => {
                        tracing::error!(error = %e, "the new module's manifest is invalid; not loaded")
                    }
                }
                self.acted(folder);
                return;
            }
        };
        self.set_ignores(folder, &manifest);
        match module {
            Some(name) => self.reload(folder, &name).await,
            None => self.load(folder, &manifest.name).await,
        }
        self.acted(folder);
    }

    async fn reload(&mut self, folder: &Path, name: &str) {
        tracing::info!(module = %name, dir = %folder.display(), "files changed: rebuilding and reloading");
        match self.runtime.reload(name).await {
            Ok(r) => {
                tracing::info!(module = %name, old_version = %r.old_version, new_version = %r.new_version,
                "reloaded after a change")
            }
            Err(e) => tracing::error!(module = %name, error = %e,
                "reloading after a change failed; the running version keeps serving"),
        }
    }

    async fn load(&mut self, folder: &Path, name: &str) {
        tracing::info!(module = %name, dir = %folder.display(), "loading a new module folder");
        let report = self.runtime.load_module(folder).await;
        for e in &report.errors {
            tracing::error!(module = %name, error = %e, "loading the new module folder");
        }
        // Added (serving, or falling back until a reload fixes it), unless it was a
        // duplicate of another folder's module or its manifest was refused.
        let added = report.ready.iter().any(|r| r == name)
            || (self.runtime.module(name).is_some()
                && !report.errors.iter().any(|e| {
                    matches!(
                        e,
                        polyglot_core::LoadError::Duplicate { .. }
                            | polyglot_core::LoadError::Manifest(_)
                    )
                }));
        if added {
            if let Some(f) = self.folders.get_mut(folder) {
                f.module = Some(name.to_owned());
            }
        }
    }

    /// A folder that is gone: its module is unloaded, its watches dropped.
    async fn forget(&mut self, folder: &Path) {
        let Some(f) = self.folders.remove(folder) else {
            return;
        };
        self.watched.retain(|d| !d.starts_with(folder));
        self.hashes.retain(|p, _| !p.starts_with(folder));
        let Some(name) = f.module else {
            return;
        };
        tracing::info!(module = %name, dir = %folder.display(), "module folder removed: draining its calls, then stopping its workers");
        match self.runtime.unload(&name).await {
            Ok(_) => tracing::info!(module = %name, "unloaded"),
            Err(e) => tracing::warn!(module = %name, error = %e, "unloading the removed module"),
        }
    }

    fn acted(&mut self, folder: &Path) {
        if let Some(f) = self.folders.get_mut(folder) {
            f.acted_at = Some(Instant::now());
        }
    }

    /// The folder's content as it is now, ignored paths aside.
    fn fingerprint(&mut self, folder: &Path) -> Fingerprint {
        let mut fp = Fingerprint::new();
        let mut stack = vec![folder.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let Ok(inner) = path.strip_prefix(folder) else {
                    continue;
                };
                if self.ignored(folder, inner) {
                    continue;
                }
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(path);
                } else if let Some(h) = self.hash(&path, &meta) {
                    fp.insert(inner.to_path_buf(), h);
                }
            }
        }
        fp
    }

    /// A file's hash, from the cache while its size and modification time are unchanged.
    fn hash(&mut self, path: &Path, meta: &std::fs::Metadata) -> Option<u64> {
        let (len, modified) = (meta.len(), meta.modified().ok());
        if let Some((l, m, h)) = self.hashes.get(path) {
            if *l == len && *m == modified {
                return Some(*h);
            }
        }
        let mut hasher = std::hash::DefaultHasher::new();
        if len > HASH_LIMIT {
            hasher.write_u64(len);
            if let Some(t) = modified.and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok()) {
                hasher.write_u128(t.as_nanos());
            }
        } else {
            hasher.write(&std::fs::read(path).ok()?);
        }
        let h = hasher.finish();
        self.hashes.insert(path.to_path_buf(), (len, modified, h));
        Some(h)
    }
}

fn hidden(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The files added, changed or removed between two fingerprints.
fn changed_files(before: Option<&Fingerprint>, now: &Fingerprint) -> Vec<PathBuf> {
    let empty = Fingerprint::new();
    let before = before.unwrap_or(&empty);
    let keys: BTreeSet<&PathBuf> = before.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != now.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_builds_editors_and_workers_write_is_ignored() {
        for name in [
            "worker.py~",
            ".#worker.py",
            ".worker.py.swp",
            "4913",
            "mod.cpython-311.pyc",
            "worker.log",
            "core",
            "core.12345",
        ] {
            assert!(ignored_file(name), "{name}");
        }
        for name in [
            "worker.py",
            "module.json",
            "core.py",
            "main.go",
            "logger.rs",
        ] {
            assert!(!ignored_file(name), "{name}");
        }
        for name in [
            "target",
            ".venv",
            "__pycache__",
            "node_modules",
            ".git",
            "build",
        ] {
            assert!(ignored_dir(OsStr::new(name)), "{name}");
        }
        assert!(!ignored_dir(OsStr::new("src")));
    }

    #[test]
    fn changed_files_lists_added_changed_and_removed() {
        let before: Fingerprint = [("a".into(), 1), ("b".into(), 2)].into();
        let now: Fingerprint = [("a".into(), 1), ("b".into(), 3), ("c".into(), 4)].into();
        assert_eq!(
            changed_files(Some(&before), &now),
            [PathBuf::from("b"), PathBuf::from("c")]
        );
        let gone: Fingerprint = [("a".into(), 1)].into();
        assert_eq!(changed_files(Some(&before), &gone), [PathBuf::from("b")]);
    }
}
