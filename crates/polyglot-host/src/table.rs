//! What the commands print: aligned tables for people, JSON for programs. Both render the
//! API's messages (`ModuleInfo`, `DeploymentStatus`, `VersionInfo`), so a local runtime
//! and a remote host (`--connect`) print the same.

use std::fmt::Write as _;

use polyglot_core::api::rfc3339;
use polyglot_proto::v1::{DeploymentStatus, ModuleInfo, VersionInfo};

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
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    let mut out = aligned(&header, &rows);
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

/// Rows under a header, each column as wide as its widest cell, two spaces apart.
pub fn aligned(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut cells = cells.zip(&widths).peekable();
        while let Some((c, w)) = cells.next() {
            if cells.peek().is_none() {
                let _ = writeln!(out, "{c}");
            } else {
                let _ = write!(out, "{c:<w$}  ");
            }
        }
    };
    line(&mut header.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}

/// Where a module's calls go, in words: `2.0.0 25%, 1.0.0 75%` (`+ 2.0.0 shadow`).
pub fn traffic(s: &DeploymentStatus) -> String {
    if s.traffic.is_empty() {
        return "-".into();
    }
    s.traffic
        .iter()
        .map(|t| {
            if t.shadow {
                format!("{} (shadow)", t.version)
            } else {
                format!("{} {}%", t.version, trim_percent(t.percent))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn trim_percent(p: f64) -> String {
    let s = format!("{p:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_owned)
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

/// Deployments as a table: active version, the one deploying and how, traffic.
pub fn render_deployments(deployments: &[DeploymentStatus]) -> String {
    let header = [
        "MODULE",
        "ACTIVE",
        "DEPLOYING",
        "STRATEGY",
        "PHASE",
        "VERDICT",
        "TRAFFIC",
    ];
    let rows: Vec<Vec<String>> = deployments
        .iter()
        .map(|d| {
            let r = d.rollout.as_ref();
            vec![
                d.module.clone(),
                dash(&d.active),
                r.map_or("-".into(), |r| r.version.clone()),
                r.map_or("-".into(), |r| r.strategy.clone()),
                r.map_or("-".into(), |r| {
                    let paused = if r.paused { " (paused)" } else { "" };
                    format!("{}{paused}", phase(r))
                }),
                r.map_or("-".into(), |r| r.verdict.clone()),
                traffic(d),
            ]
        })
        .collect();
    aligned(&header, &rows)
}

/// A rollout's phase in a few words: `canary 2/4`, `rolling 1/2 ready`.
pub fn phase(r: &polyglot_proto::v1::Rollout) -> String {
    match r.phase.as_str() {
        "canary" => format!("canary {}/{}", r.stage + 1, r.stages),
        "rolling" => format!("rolling {}/{} ready", r.ready, r.replicas),
        "scheduled" => format!("scheduled for {}", rfc3339(r.scheduled_at_ms)),
        other => other.to_owned(),
    }
}

/// A module's history as a table, oldest first, then the reason of each failure.
pub fn render_history(versions: &[VersionInfo]) -> String {
    let header = [
        "VERSION",
        "STATE",
        "STRATEGY",
        "STAGED",
        "ACTIVATED",
        "ENDED",
        "HEALTH",
        "BY",
        "WHY",
    ];
    let time = |ms: u64| {
        if ms == 0 {
            "-".into()
        } else {
            rfc3339(ms)
        }
    };
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            let state = if v.state == "rolling-out" {
                format!("rolling-out ({}%)", v.percent)
            } else if v.retained && v.state != "active" {
                format!("{} (running)", v.state)
            } else {
                v.state.clone()
            };
            vec![
                v.version.clone(),
                state,
                dash(&v.strategy),
                time(v.staged_at_ms),
                time(v.activated_at_ms),
                time(v.ended_at_ms),
                v.health.clone(),
                dash(&v.by),
                dash(&v.why),
            ]
        })
        .collect();
    let mut out = aligned(&header, &rows);
    for v in versions {
        if !v.reason.is_empty() {
            let _ = writeln!(out, "  {}: {}", v.version, v.reason);
        }
        if !v.health_reason.is_empty() {
            let _ = writeln!(out, "  {} unhealthy: {}", v.version, v.health_reason);
        }
    }
    out
}

fn summary_json(h: &polyglot_proto::v1::HealthSummary) -> serde_json::Value {
    serde_json::json!({
        "calls": h.calls, "errors": h.errors, "timeouts": h.timeouts,
        "errorRate": h.error_rate, "p50Us": h.p50_us, "p90Us": h.p90_us, "p99Us": h.p99_us,
        "compared": h.compared, "mismatches": h.mismatches,
    })
}

fn some(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn some_ms(ms: u64) -> Option<u64> {
    (ms != 0).then_some(ms)
}

/// A deployment status as JSON.
pub fn deployment_json(d: &DeploymentStatus) -> serde_json::Value {
    serde_json::json!({
        "module": d.module,
        "active": some(&d.active),
        "rollout": d.rollout.as_ref().map(|r| serde_json::json!({
            "version": r.version, "from": some(&r.from), "strategy": r.strategy,
            "phase": r.phase, "stage": r.stage, "stages": r.stages, "ready": r.ready,
            "replicas": r.replicas, "batch": r.batch,
            "scheduledAtMs": some_ms(r.scheduled_at_ms), "percent": r.percent,
            "paused": r.paused, "phaseElapsedMs": r.phase_elapsed_ms,
            "verdict": r.verdict, "verdictDetail": r.verdict_detail,
            "health": r.health.as_ref().map(summary_json),
        })),
        "traffic": d.traffic.iter().map(|t| serde_json::json!({
            "version": t.version, "percent": t.percent, "shadow": t.shadow,
        })).collect::<Vec<_>>(),
    })
}

/// A history entry as JSON.
pub fn version_json(v: &VersionInfo) -> serde_json::Value {
    serde_json::json!({
        "version": v.version, "state": v.state,
        "percent": (v.state == "rolling-out").then_some(v.percent),
        "reason": some(&v.reason), "by": v.by, "why": v.why, "strategy": some(&v.strategy),
        "stagedAtMs": v.staged_at_ms, "startedAtMs": some_ms(v.started_at_ms),
        "activatedAtMs": some_ms(v.activated_at_ms), "endedAtMs": some_ms(v.ended_at_ms),
        "health": v.health, "healthReason": some(&v.health_reason),
        "summary": v.summary.as_ref().map(summary_json), "retained": v.retained,
    })
}
