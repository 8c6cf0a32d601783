//! What Python sees of modules, deployments, versions and events: the messages of the
//! host's API (`proto/polyglot/v1/runtime.proto`) as dicts, whichever mode produced them.
//!
//! A running host sends these messages; an embedded runtime has the core's types, which
//! are first written into the same messages by the same code as `polyglot-host`'s
//! ([`polyglot_core::api`]), then both go through one conversion to dicts. So a program
//! moves between `polyglot.Runtime` and `polyglot.connect` without a change.
//! Empty strings and zero times of the messages (proto3's "unset") become `None`.

use std::collections::BTreeMap;

use polyglot_core::Value;
use polyglot_proto::v1 as pb;

/// A map under construction.
#[derive(Default)]
struct Dict(BTreeMap<String, Value>);

impl Dict {
    fn set(mut self, key: &str, v: impl Into<Value>) -> Dict {
        self.0.insert(key.to_owned(), v.into());
        self
    }

    /// `None` for proto3's unset string.
    fn text(self, key: &str, s: &str) -> Dict {
        let v = if s.is_empty() {
            Value::Null
        } else {
            Value::from(s)
        };
        self.set(key, v)
    }

    /// `None` for proto3's unset number.
    fn nonzero(self, key: &str, n: u64) -> Dict {
        let v = if n == 0 { Value::Null } else { Value::Uint(n) };
        self.set(key, v)
    }

    fn done(self) -> Value {
        Value::Map(self.0)
    }
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| Value::from(s.as_str())).collect())
}

/// A module: name, implementation, version, language, in_process, state, health,
/// methods, fallback, instances, restarts, in_flight, last_error.
pub fn module_value(m: &pb::ModuleInfo) -> Value {
    let instances = m
        .instances
        .iter()
        .map(|i| {
            Dict::default()
                .set("index", u64::from(i.index))
                .set("state", i.state.as_str())
                .nonzero("pid", u64::from(i.pid))
                .set("restarts", i.restarts)
                .set("in_flight", i.in_flight)
                .text("last_error", &i.last_error)
                .done()
        })
        .collect();
    Dict::default()
        .set("name", m.name.as_str())
        .set("implementation", m.implementation.as_str())
        .set("version", m.version.as_str())
        .set("language", m.language.as_str())
        .set("in_process", m.in_process)
        .set("state", m.state.as_str())
        .set("health", m.health.as_str())
        .set("methods", strings(&m.methods))
        .set("fallback", strings(&m.fallback))
        .set("instances", Value::Array(instances))
        .set("restarts", m.restarts)
        .set("in_flight", m.in_flight)
        .text("last_error", &m.last_error)
        .done()
}

fn health_value(h: &pb::HealthSummary) -> Value {
    Dict::default()
        .set("calls", h.calls)
        .set("errors", h.errors)
        .set("timeouts", h.timeouts)
        .set("error_rate", h.error_rate)
        .set("p50_us", h.p50_us)
        .set("p90_us", h.p90_us)
        .set("p99_us", h.p99_us)
        .set("compared", h.compared)
        .set("mismatches", h.mismatches)
        .done()
}

/// A deployment: module, active, rollout (None when none is in progress), traffic.
pub fn status_value(s: &pb::DeploymentStatus) -> Value {
    let rollout = s.rollout.as_ref().map_or(Value::Null, |r| {
        Dict::default()
            .set("version", r.version.as_str())
            .text("from", &r.from)
            .set("strategy", r.strategy.as_str())
            .set("phase", r.phase.as_str())
            .set("stage", u64::from(r.stage))
            .set("stages", u64::from(r.stages))
            .set("ready", u64::from(r.ready))
            .set("replicas", u64::from(r.replicas))
            .set("batch", u64::from(r.batch))
            .nonzero("scheduled_at_ms", r.scheduled_at_ms)
            .set("percent", u64::from(r.percent))
            .set("paused", r.paused)
            .set("phase_elapsed_ms", r.phase_elapsed_ms)
            .set("verdict", r.verdict.as_str())
            .text("verdict_detail", &r.verdict_detail)
            .set(
                "health",
                r.health.as_ref().map_or(Value::Null, health_value),
            )
            .done()
    });
    let traffic = s
        .traffic
        .iter()
        .map(|t| {
            Dict::default()
                .set("version", t.version.as_str())
                .set("percent", t.percent)
                .set("shadow", t.shadow)
                .done()
        })
        .collect();
    Dict::default()
        .set("module", s.module.as_str())
        .text("active", &s.active)
        .set("rollout", rollout)
        .set("traffic", Value::Array(traffic))
        .done()
}

/// A history entry: version, state, percent, reason, by, why, strategy, the times in ms
/// since the Unix epoch, health, health_reason, summary, retained.
pub fn version_value(v: &pb::VersionInfo) -> Value {
    Dict::default()
        .set("version", v.version.as_str())
        .set("state", v.state.as_str())
        .set("percent", u64::from(v.percent))
        .text("reason", &v.reason)
        .text("by", &v.by)
        .text("why", &v.why)
        .text("strategy", &v.strategy)
        .nonzero("staged_at_ms", v.staged_at_ms)
        .nonzero("started_at_ms", v.started_at_ms)
        .nonzero("activated_at_ms", v.activated_at_ms)
        .nonzero("ended_at_ms", v.ended_at_ms)
        .set("health", v.health.as_str())
        .text("health_reason", &v.health_reason)
        .set(
            "summary",
            v.summary.as_ref().map_or(Value::Null, health_value),
        )
        .set("retained", v.retained)
        .done()
}

/// A runtime event: `category` "runtime", `type` (worker_started, worker_exited,
/// health_changed, fallback_used, reload_done, module_loaded, module_unloaded,
/// breaker_changed, policies_updated), module,
/// timestamp_ms, and the fields of its type.
pub fn event_value(e: &pb::Event) -> Value {
    use pb::event::Kind;
    let d = Dict::default()
        .set("category", "runtime")
        .set("module", e.module.as_str())
        .set("timestamp_ms", e.timestamp_ms);
    let d = match &e.kind {
        Some(Kind::WorkerStarted(k)) => d
            .set("type", "worker_started")
            .set("instance", u64::from(k.instance))
            .set("pid", u64::from(k.pid))
            .set("version", k.version.as_str()),
        Some(Kind::WorkerExited(k)) => d
            .set("type", "worker_exited")
            .set("instance", u64::from(k.instance))
            .set("reason", k.reason.as_str()),
        Some(Kind::HealthChanged(k)) => d
            .set("type", "health_changed")
            .set("instance", u64::from(k.instance))
            .set("from", k.from.as_str())
            .set("to", k.to.as_str()),
        Some(Kind::FallbackUsed(k)) => d
            .set("type", "fallback_used")
            .set("method", k.method.as_str())
            .set("served_by", k.served_by.as_str()),
        Some(Kind::ReloadDone(k)) => d
            .set("type", "reload_done")
            .set("old_version", k.old_version.as_str())
            .set("new_version", k.new_version.as_str()),
        Some(Kind::ModuleLoaded(k)) => d
            .set("type", "module_loaded")
            .set("version", k.version.as_str()),
        Some(Kind::ModuleUnloaded(k)) => d
            .set("type", "module_unloaded")
            .set("version", k.version.as_str()),
        Some(Kind::BreakerChanged(k)) => d
            .set("type", "breaker_changed")
            .set("version", k.version.as_str())
            .set("from", k.from.as_str())
            .set("to", k.to.as_str())
            .set("reason", k.reason.as_str()),
        Some(Kind::PoliciesUpdated(k)) => d
            .set("type", "policies_updated")
            .set("version", k.version.as_str()),
        None => d.set("type", "unknown"),
    };
    d.done()
}

/// A deployment event: `category` "deployment", `type` (staged, started, promoted,
/// rolled_back, ...), module, version, timestamp_ms, message, and the fields its type
/// sets (reason, from, to, strategy, stage, percent, at_ms, drained).
pub fn deploy_event_value(e: &pb::DeploymentEvent) -> Value {
    let mut d = Dict::default()
        .set("category", "deployment")
        .set("type", e.r#type.as_str())
        .set("module", e.module.as_str())
        .set("version", e.version.as_str())
        .set("timestamp_ms", e.timestamp_ms)
        .set("message", e.message.as_str());
    for (key, v) in [
        ("reason", &e.reason),
        ("from", &e.from),
        ("to", &e.to),
        ("strategy", &e.strategy),
    ] {
        if !v.is_empty() {
            d = d.set(key, v.as_str());
        }
    }
    match e.r#type.as_str() {
        "stage_advanced" => d
            .set("stage", u64::from(e.stage))
            .set("percent", u64::from(e.percent)),
        "scheduled" => d.set("at_ms", e.at_ms),
        "released" => d.set("drained", e.drained),
        _ => d,
    }
    .done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use polyglot_core::api::{deployment_event, runtime_event};
    use polyglot_core::hotswap::EventKind as DeployKind;
    use polyglot_core::{DeployEvent, EventKind, RuntimeEvent};

    #[test]
    fn unset_fields_of_a_message_become_none() {
        let s = pb::DeploymentStatus {
            module: "svc".into(),
            ..Default::default()
        };
        let v = status_value(&s);
        assert_eq!(v.get("module"), Some(&Value::from("svc")));
        assert_eq!(v.get("active"), Some(&Value::Null));
        assert_eq!(v.get("rollout"), Some(&Value::Null));
        assert_eq!(v.get("traffic"), Some(&Value::Array(vec![])));
    }

    #[test]
    fn deployment_events_are_flat_dicts_with_a_line_for_people() {
        let e = DeployEvent {
            timestamp_ms: 1_700_000_000_000,
            deployment: "text".into(),
            version: polyglot_core::VersionId::new("2.0.0").unwrap(),
            kind: DeployKind::Released { drained: true },
        };
        let v = deploy_event_value(&deployment_event(&e));
        assert_eq!(v.get("category"), Some(&Value::from("deployment")));
        assert_eq!(v.get("type"), Some(&Value::from("released")));
        assert_eq!(
            v.get("message"),
            Some(&Value::from("2.0.0 released (its calls drained)"))
        );
        assert_eq!(v.get("drained"), Some(&Value::Bool(true)));
        assert_eq!(v.get("percent"), None);
        assert_eq!(v.get("reason"), None);
    }

    #[test]
    fn runtime_events_name_their_type() {
        let e = RuntimeEvent {
            timestamp_ms: 1,
            module: "echo".into(),
            kind: EventKind::WorkerExited {
                instance: 2,
                reason: "exit status 3".into(),
            },
        };
        let v = event_value(&runtime_event(e));
        assert_eq!(v.get("type"), Some(&Value::from("worker_exited")));
        assert_eq!(v.get("instance"), Some(&Value::Uint(2)));
        assert_eq!(v.get("category"), Some(&Value::from("runtime")));
    }
}
