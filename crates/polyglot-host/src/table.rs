//! The module list: an aligned table for people, JSON for programs. Both render the API's
//! `ModuleInfo`, so a local runtime and a remote host (`--connect`) print the same.

use std::fmt::Write as _;

use polyglot_proto::v1::ModuleInfo;

/// Renders modules as an aligned text table, then each module's last error.
pub fn render(modules: &[ModuleInfo]) -> String {
    let header = [
        "MODULE",
        "VERSION",
        "LANGUAGE",
        "STATE",
        "HEALTH",
        "INSTANCES",
        "RESTARTS",
        "FALLBACK",
    ];
    let rows: Vec<[String; 8]> = modules
        .iter()
        .map(|m| {
            let up = m
                .instances
                .iter()
                .filter(|i| i.state == "healthy" || i.state == "degraded")
                .count();
            [
                m.name.clone(),
                m.version.clone(),
                m.language.clone(),
                m.state.clone(),
                m.health.clone(),
                if m.in_process {
                    "in-process".into()
                } else {
                    format!("{up}/{}", m.instances.len())
                },
                m.restarts.to_string(),
                if m.fallback.is_empty() {
                    "-".into()
                } else {
                    m.fallback.join(", ")
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                let _ = writeln!(out, "{c}");
            } else {
                let _ = write!(out, "{c:<w$}  ");
            }
        }
    };
    line(&mut out, &header);
    for r in &rows {
        line(&mut out, &r.each_ref().map(String::as_str));
    }
    for m in modules {
        if !m.last_error.is_empty() {
            let _ = writeln!(out, "  {}: {}", m.name, m.last_error);
        }
    }
    out
}

/// Modules as JSON.
pub fn json(modules: &[ModuleInfo]) -> serde_json::Value {
    modules
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name, "implementation": m.implementation, "version": m.version,
                "language": m.language, "inProcess": m.in_process, "state": m.state,
                "health": m.health, "methods": m.methods, "fallback": m.fallback,
                "restarts": m.restarts, "inFlight": m.in_flight,
                "lastError": (!m.last_error.is_empty()).then_some(&m.last_error),
                "instances": m.instances.iter().map(|i| serde_json::json!({
                    "index": i.index, "state": i.state, "pid": (i.pid != 0).then_some(i.pid),
                    "restarts": i.restarts, "inFlight": i.in_flight,
                    "lastError": (!i.last_error.is_empty()).then_some(&i.last_error),
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}
