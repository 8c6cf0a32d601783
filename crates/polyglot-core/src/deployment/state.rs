//! The deployment state file: for each module, its deployer's [`Snapshot`] (the active
//! version and the history) and the folder each version came from. Written whole after
//! every deployment event (a temporary file, then a rename: a crash leaves the old file
//! or the new one, never half of one), read once by the first `load_dir`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use polyglot_hotswap::Snapshot;
use serde::{Deserialize, Serialize};

use crate::error::LoadError;

/// The format of state files this build writes and reads.
pub(crate) const STATE_FORMAT: u32 = 1;

/// Where a version came from: enough to start it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Source {
    /// Its module folder.
    pub dir: PathBuf,
    /// The version its manifest declared (the version id may carry a `#n` suffix).
    pub version: String,
}

/// One module in the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PersistedModule {
    /// Its deployer's snapshot.
    pub snapshot: Snapshot,
    /// Each version's folder, by version id.
    pub sources: BTreeMap<String, Source>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StateDoc {
    format: u32,
    written_at_ms: u64,
    modules: BTreeMap<String, PersistedModule>,
}

/// The state file of a runtime.
pub(crate) struct StateStore {
    path: PathBuf,
    /// What the file held and no deployer has taken yet (a module not loaded this time
    /// keeps its entry); `None` until the file was read.
    unclaimed: Mutex<Option<BTreeMap<String, PersistedModule>>>,
    /// One write at a time, each from a fresh collection of the snapshots, so that an
    /// older state never overwrites a newer one.
    pub write_lock: Mutex<()>,
}

impl StateStore {
    pub(crate) fn new(path: PathBuf) -> StateStore {
        StateStore {
            path,
            unclaimed: Mutex::new(None),
            write_lock: Mutex::new(()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn unclaimed(&self) -> MutexGuard<'_, Option<BTreeMap<String, PersistedModule>>> {
        self.unclaimed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the file, once. A missing file is an empty state. A file that cannot be read
    /// as a state file is moved aside to `<file>.corrupt-<ms since the epoch>` and
    /// reported: it is never silently ignored, nor overwritten.
    pub(crate) fn ensure_loaded(&self) -> Option<LoadError> {
        let mut unclaimed = self.unclaimed();
        if unclaimed.is_some() {
            return None;
        }
        let (modules, problem) = match std::fs::read(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (BTreeMap::new(), None),
            Err(e) => (
                BTreeMap::new(),
                Some(format!(
                    "cannot read it ({e}); deployments are not restored"
                )),
            ),
            Ok(bytes) => match parse(&bytes) {
                Ok(m) => (m, None),
                Err(why) => (BTreeMap::new(), Some(self.set_aside(&why))),
            },
        };
        *unclaimed = Some(modules);
        problem.map(|message| {
            tracing::error!(file = %self.path.display(), %message, "deployment state file");
            LoadError::State {
                file: self.path.clone(),
                message,
            }
        })
    }

    /// Moves a corrupt file aside; says what happened.
    fn set_aside(&self, why: &str) -> String {
        let mut aside = self.path.clone().into_os_string();
        aside.push(format!(".corrupt-{}", polyglot_protocol::now_ms()));
        let aside = PathBuf::from(aside);
        match std::fs::rename(&self.path, &aside) {
            Ok(()) => format!(
                "it is not a valid state file ({why}); it was moved aside to {} and every \
                 module starts on the version in its folder",
                aside.display()
            ),
            Err(e) => format!(
                "it is not a valid state file ({why}), and moving it aside to {} failed \
                 ({e}); every module starts on the version in its folder",
                aside.display()
            ),
        }
    }

    /// Takes the entry of `module`, which a deployer now holds.
    pub(crate) fn take(&self, module: &str) -> Option<PersistedModule> {
        self.unclaimed().as_mut().and_then(|m| m.remove(module))
    }

    /// Writes `modules`, and the entries no deployer took, to the file atomically.
    pub(crate) fn write(&self, modules: BTreeMap<String, PersistedModule>) -> std::io::Result<()> {
        if let Some(e) = self.ensure_loaded() {
            // Reported (logged) by `ensure_loaded`; the corrupt file is out of the way.
            let _ = e;
        }
        let mut all = self.unclaimed().clone().unwrap_or_default();
        all.extend(modules);
        let doc = StateDoc {
            format: STATE_FORMAT,
            written_at_ms: polyglot_protocol::now_ms(),
            modules: all,
        };
        let bytes = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
        write_atomic(&self.path, &bytes)
    }
}

fn parse(bytes: &[u8]) -> Result<BTreeMap<String, PersistedModule>, String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let doc: StateDoc = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("at {path}: {}", e.into_inner())
        }
    })?;
    if doc.format != STATE_FORMAT {
        return Err(format!(
            "its format is {}, and this build reads format {STATE_FORMAT}",
            doc.format
        ));
    }
    Ok(doc.modules)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk, and renames it
/// over `path`; then flushes the folder so the rename itself survives a power cut.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    // Best effort: not every file system lets a folder be opened and synced.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_file_is_set_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\"format\": 1, \"modules\": ").unwrap();
        let store = StateStore::new(path.clone());
        let e = store.ensure_loaded().expect("reported").to_string();
        assert!(e.contains("not a valid state file"), "{e}");
        assert!(e.contains("moved aside"), "{e}");
        assert!(!path.exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            aside.iter().any(|n| n.starts_with("state.json.corrupt-")),
            "{aside:?}"
        );
        // Read once: asking again reports nothing more.
        assert!(store.ensure_loaded().is_none());
    }

    #[test]
    fn writes_keep_entries_no_deployer_took() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.json");
        let store = StateStore::new(path.clone());
        assert!(store.ensure_loaded().is_none(), "a missing file is empty");
        let entry = |name: &str| PersistedModule {
            snapshot: Snapshot {
                format: polyglot_hotswap::SNAPSHOT_FORMAT,
                deployment: name.into(),
                taken_at_ms: 1,
                active: None,
                deploying: None,
                versions: Vec::new(),
            },
            sources: BTreeMap::new(),
        };
        store
            .write(BTreeMap::from([
                ("a".to_owned(), entry("a")),
                ("b".to_owned(), entry("b")),
            ]))
            .unwrap();
        let again = StateStore::new(path.clone());
        assert!(again.ensure_loaded().is_none());
        assert!(again.take("a").is_some());
        // "b" was not taken this time: a write keeps it.
        again.write(BTreeMap::new()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"b\""), "{text}");
        assert!(!text.contains("\"a\""), "{text}");
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
