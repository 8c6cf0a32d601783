//! The module table: one row per module.

use std::fmt::Write as _;

use polyglot_core::ModuleStatus;

/// Renders modules as an aligned text table.
pub fn render(modules: &[ModuleStatus]) -> String {
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
                .filter(|i| {
                    matches!(
                        i.state,
                        polyglot_core::InstanceState::Healthy
                            | polyglot_core::InstanceState::Degraded
                    )
                })
                .count();
            [
                m.name.clone(),
                m.version.clone(),
                m.language.clone(),
                format!("{:?}", m.state).to_lowercase(),
                format!("{:?}", m.health).to_lowercase(),
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
        if let Some(e) = &m.last_error {
            let _ = writeln!(out, "  {}: {e}", m.name);
        }
    }
    out
}
