//! `module.json` parsing and validation: `Manifest::parse` of polyglot-core (what
//! `Manifest::load` runs on the file's text), compiled from its source by this crate.
//!
//! Properties: a refused manifest gets an error naming the file (and the field, when one
//! is at fault) with a message; an accepted one holds only valid values (the rules of
//! `docs/manifest.md` checked again here, independently), no path it resolves leaves the
//! module folder, parsing is deterministic, and the same JSON written another way (keys
//! reordered, whitespace changed) gives the same manifest.
#![no_main]

use std::path::{Component, Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use polyglot_fuzz::manifest::{Fallback, Manifest, TransportKind, MAX_INSTANCES};
use polyglot_fuzz::MAX_INPUT;

const DIR: &str = "/m/mod";
const FILE: &str = "/m/mod/module.json";

fuzz_target!(|data: &[u8]| {
    // `Manifest::load` reads the file as UTF-8 text first.
    let Ok(text) = std::str::from_utf8(&data[..data.len().min(MAX_INPUT)]) else {
        return;
    };
    let (dir, file) = (Path::new(DIR), Path::new(FILE));
    let m = match Manifest::parse(text, dir, file) {
        Ok(m) => m,
        Err(e) => {
            assert_eq!(e.file, file, "the error names another file");
            assert!(
                !e.message.trim().is_empty(),
                "an error without a message: {e:?}"
            );
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("{FILE}: ")), "{shown}");
            if let Some(field) = &e.field {
                assert!(!field.is_empty(), "an empty field name: {e:?}");
                assert!(shown.contains(&format!("field `{field}`")), "{shown}");
            }
            return;
        }
    };
    check_valid(&m, text);
    assert_eq!(
        Manifest::parse(text, dir, file).as_ref(),
        Ok(&m),
        "parsing is not deterministic"
    );
    let json: serde_json::Value = serde_json::from_str(text).expect("an accepted manifest is JSON");
    for again in [
        serde_json::to_string(&json).unwrap(),
        serde_json::to_string_pretty(&json).unwrap(),
    ] {
        assert_eq!(
            Manifest::parse(&again, dir, file).as_ref(),
            Ok(&m),
            "the same manifest written as {again} parses differently"
        );
    }
});

fn valid_name(s: &str) -> bool {
    s.len() <= 128
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The path with `.` and `..` resolved lexically, as the OS would without symlinks.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn assert_inside(p: &Path, what: &str) {
    assert!(
        normalize(p).starts_with(DIR),
        "{what} {} leaves the module folder {DIR}",
        p.display()
    );
}

/// The rules an accepted manifest must satisfy, checked on the validated value.
fn check_valid(m: &Manifest, text: &str) {
    let raw: serde_json::Value = serde_json::from_str(text).expect("an accepted manifest is JSON");
    let ms = std::time::Duration::from_millis(1);

    assert!(valid_name(&m.name), "invalid name {:?}", m.name);
    assert!(
        !m.version.is_empty()
            && m.version.len() <= 128
            && !m
                .version
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()),
        "invalid version {:?}",
        m.version
    );
    assert!(!m.language.trim().is_empty(), "empty language");
    assert!(
        (1..=MAX_INSTANCES).contains(&m.instances),
        "instances {}",
        m.instances
    );
    for (what, d) in [
        ("timeout", m.timeout),
        ("handshake timeout", m.handshake_timeout),
        ("shutdown grace", m.shutdown_grace),
        ("health interval", m.health_check.interval),
        ("health timeout", m.health_check.timeout),
        ("restart window", m.restart.window),
        ("initial backoff", m.restart.backoff_initial),
        ("longest backoff", m.restart.backoff_max),
    ] {
        assert!(d >= ms, "{what} {d:?} under a millisecond");
    }
    assert!(m.health_check.unhealthy_threshold >= 1);
    assert!(m.restart.backoff_max >= m.restart.backoff_initial);
    assert!((1024..=u32::MAX as usize).contains(&m.max_frame));

    let mut seen = std::collections::HashSet::new();
    for c in &m.capabilities {
        assert!(!c.is_empty() && !c.starts_with('$'), "capability {c:?}");
        assert!(seen.insert(c), "capability {c:?} twice");
    }
    for key in m.env.keys() {
        assert!(
            !key.is_empty() && !key.contains('=') && !key.starts_with("POLYGLOT_"),
            "env key {key:?}"
        );
    }
    for call in &m.smoke {
        assert!(!call.method.is_empty() && !call.method.starts_with('$'));
        assert!(m.capabilities.is_empty() || m.capabilities.contains(&call.method));
    }
    if let Some(b) = &m.builtin {
        assert!(valid_name(b), "builtin {b:?}");
        assert!(m.endpoint.is_none(), "a builtin with an endpoint");
    }

    match &m.endpoint {
        Some(e) => {
            assert_eq!(m.transport, TransportKind::Grpc);
            assert!(m.program.command.as_os_str().is_empty() && m.build.is_none());
            let ok = e.strip_prefix("unix:").is_some_and(|p| p.starts_with('/'))
                || e.strip_prefix("http://").is_some_and(|a| {
                    a.rsplit_once(':').is_some_and(|(host, port)| {
                        !host.is_empty()
                            && !host.contains('/')
                            && port.parse::<u16>().is_ok_and(|p| p > 0)
                    })
                });
            assert!(ok, "endpoint {e:?}");
        }
        None => assert!(
            !m.program.command.as_os_str().is_empty() || m.builtin.is_some(),
            "no program and no builtin"
        ),
    }

    for f in &m.fallback {
        match f {
            Fallback::Module(name) => {
                assert!(
                    valid_name(name) && *name != m.name,
                    "fallback module {name:?}"
                )
            }
            Fallback::File(p) => assert_inside(p, "fallback file"),
        }
    }

    // Paths given relative to the folder stay inside it (absolute commands are an
    // operator's explicit choice, and bare names are looked up on PATH).
    if let Some(p) = raw.get("path").and_then(|p| p.as_str()) {
        if m.endpoint.is_none() {
            let file = Path::new(DIR).join(p);
            assert_inside(&file, "path");
            // With `command`, `path` is its last argument as written (the worker runs in
            // the module folder); alone, the file itself or an interpreter's argument.
            let shown = file.display().to_string();
            assert!(
                m.program.command == file
                    || m.program.args.contains(&shown)
                    || m.program.args.last().map(String::as_str) == Some(p),
                "path {p:?} is not in the program {}",
                m.program
            );
        }
    }
    if let Some(c) = raw.get("command").and_then(|c| c.as_str()) {
        if !Path::new(c).is_absolute() && c.contains('/') {
            assert_inside(&m.program.command, "command");
        }
    }
    if let Some(b) = &m.build {
        let cmd = match &raw["build"] {
            serde_json::Value::String(s) => s.as_str(),
            other => other["command"].as_str().unwrap_or_default(),
        };
        if !Path::new(cmd).is_absolute() && cmd.contains('/') {
            assert_inside(&b.program.command, "build command");
        }
        for p in &b.inputs {
            assert_inside(p, "build input");
        }
        if let Some(p) = &b.output {
            assert_inside(p, "build output");
        }
    }
}
