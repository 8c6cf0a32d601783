//! Discovery: every folder under a modules directory that holds a `module.json`.

use std::path::Path;

use crate::error::LoadError;
use crate::manifest::{Manifest, MANIFEST_FILE};

/// Loads the manifest of every module folder directly under `dir`, in name order. Bad
/// manifests are reported and skipped; the others load.
pub fn discover(dir: &Path) -> (Vec<Manifest>, Vec<LoadError>) {
    let mut manifests = Vec::new();
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(LoadError::Directory {
                dir: dir.to_path_buf(),
                message: e.to_string(),
            });
            return (manifests, errors);
        }
    };
    let mut dirs: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join(MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    for d in dirs {
        match Manifest::load(&d) {
            Ok(m) => {
                if let Some(first) = manifests.iter().find(|x: &&Manifest| x.name == m.name) {
                    errors.push(LoadError::Duplicate {
                        name: m.name.clone(),
                        file: m.file.clone(),
                        other: first.file.clone(),
                    });
                } else {
                    manifests.push(m);
                }
            }
            Err(e) => errors.push(e.into()),
        }
    }
    (manifests, errors)
}
