//! The host API's messages (`proto/polyglot/v1/runtime.proto`) from the core's types and
//! back: a module's status, a runtime event, a deployment's status, history and events
//! written into their messages, and a `Strategy` message read into a [`Strategy`]; with
//! the largest message the API takes, [`MAX_MESSAGE_SIZE`], and a client held to it.
//!
//! One implementation for every side that speaks the API: `polyglot-host` serves these
//! messages, and `polyglot-py`'s embedded runtime writes the same ones, so a program sees
//! the same fields and words whichever it runs against. The words are part of the API:
//! states and kinds in lower or snake case, a deployment event's line for people, and
//! errors that name the message's field (`strategy.canary.percents[1]: ...`).

use std::time::{Duration, UNIX_EPOCH};

use polyglot_hotswap::{
    Advance, Amount, EventKind as DeployKind, HealthMark, HealthSummary, Rolling, RolloutPhase,
    StrategyKind, Verdict, DEFAULT_HOLD,
};
use polyglot_proto::v1 as pb;

use crate::{
    DeployEvent, DeploymentStatus, EventKind, ModuleStatus, Runtime, RuntimeEvent, Strategy,
    VersionInfo, VersionState,
};

/// The largest message the API's server and clients decode or encode: 64 MiB, the
/// default frame limit of a worker (`polyglot_protocol::DEFAULT_MAX_FRAME`), so a call a
/// worker takes, and its reply, also get through the API. (tonic's default is 4 MiB.)
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// A client of the API over `channel` that sends calls and takes replies up to
/// [`MAX_MESSAGE_SIZE`], as large as a host's.
pub fn runtime_client(
    channel: tonic::transport::Channel,
) -> pb::runtime_client::RuntimeClient<tonic::transport::Channel> {
    pb::runtime_client::RuntimeClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// A blue-green deployment's grace (the old version's time to stay ready for a switch
/// back) when the sender of a `Strategy` message is given none.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How long each stage of a canary lasts when the sender is given no duration.
pub const DEFAULT_STAGE_DURATION: Duration = Duration::from_secs(30);

/// How long a shadow deployment compares when the sender is given no duration.
pub const DEFAULT_SHADOW_DURATION: Duration = Duration::from_secs(60);

/// How long an A/B test runs without a decision when the sender is given no deadline
/// (the message requires one).
pub const DEFAULT_AB_DEADLINE: Duration = Duration::from_secs(3600);

/// The API's words for a state: its name in lower case.
fn lower<T: std::fmt::Debug>(v: T) -> String {
    format!("{v:?}").to_lowercase()
}

/// A module's status as the API's message.
pub fn module_info(m: &ModuleStatus) -> pb::ModuleInfo {
    pb::ModuleInfo {
        name: m.name.clone(),
        implementation: m.implementation.clone(),
        version: m.version.clone(),
        language: m.language.clone(),
        in_process: m.in_process,
        state: lower(m.state),
        health: lower(m.health),
        methods: m.methods.clone(),
        fallback: m.fallback.clone(),
        instances: m
            .instances
            .iter()
            .map(|i| pb::InstanceInfo {
                index: i.index as u32,
                state: lower(i.state),
                pid: i.pid.unwrap_or(0),
                restarts: i.restarts,
                in_flight: i.in_flight as u64,
                last_error: i.last_error.clone().unwrap_or_default(),
            })
            .collect(),
        restarts: m.restarts,
        in_flight: m.in_flight as u64,
        last_error: m.last_error.clone().unwrap_or_default(),
        required: m.required,
        breaker: m.breaker.state.as_str().into(),
        breaker_reason: m.breaker.reason.clone().unwrap_or_default(),
    }
}

/// A runtime event as the API's message.
pub fn runtime_event(e: RuntimeEvent) -> pb::Event {
    use pb::event::Kind;
    let kind = match e.kind {
        EventKind::WorkerStarted {
            instance,
            pid,
            version,
        } => Kind::WorkerStarted(pb::WorkerStarted {
            instance: instance as u32,
            pid,
            version,
        }),
        EventKind::WorkerExited { instance, reason } => Kind::WorkerExited(pb::WorkerExited {
            instance: instance as u32,
            reason,
        }),
        EventKind::HealthChanged { instance, from, to } => Kind::HealthChanged(pb::HealthChanged {
            instance: instance as u32,
            from: lower(from),
            to: lower(to),
        }),
        EventKind::FallbackUsed { method, served_by } => {
            Kind::FallbackUsed(pb::FallbackUsed { method, served_by })
        }
        EventKind::ReloadDone {
            old_version,
            new_version,
        } => Kind::ReloadDone(pb::ReloadDone {
            old_version,
            new_version,
        }),
        EventKind::ModuleLoaded { version } => Kind::ModuleLoaded(pb::ModuleLoaded { version }),
        EventKind::BreakerChanged {
            version,
            from,
            to,
            reason,
        } => Kind::BreakerChanged(pb::BreakerChanged {
            version,
            from: from.as_str().into(),
            to: to.as_str().into(),
            reason,
        }),
        EventKind::PoliciesUpdated { version } => {
            Kind::PoliciesUpdated(pb::PoliciesUpdated { version })
        }
        EventKind::ModuleUnloaded { version } => {
            Kind::ModuleUnloaded(pb::ModuleUnloaded { version })
        }
    };
    pb::Event {
        timestamp_ms: e.timestamp_ms,
        module: e.module,
        kind: Some(kind),
    }
}

/// A module's deployment status as the API's message, with the new version's health
/// over the window (read from `runtime`'s history of the module).
pub fn deployment_status(runtime: &Runtime, s: &DeploymentStatus) -> pb::DeploymentStatus {
    let rollout = s.rollout.as_ref().map(|r| {
        let health = runtime.history(&s.deployment).and_then(|h| {
            h.iter()
                .find(|v| v.version == r.version)
                .and_then(|v| v.summary.as_ref().map(health_summary))
        });
        let mut m = pb::Rollout {
            version: r.version.to_string(),
            from: r.from.as_ref().map(ToString::to_string).unwrap_or_default(),
            strategy: strategy_name(r.strategy).into(),
            percent: r.percent.into(),
            paused: r.paused,
            phase_elapsed_ms: r.phase_elapsed.as_millis() as u64,
            verdict: verdict_name(&r.verdict).into(),
            verdict_detail: r.verdict.to_string(),
            health,
            ..Default::default()
        };
        m.phase = match &r.phase {
            RolloutPhase::Scheduled { at_ms } => {
                m.scheduled_at_ms = *at_ms;
                "scheduled"
            }
            RolloutPhase::Checking => "checking",
            RolloutPhase::Canary { stage, stages } => {
                (m.stage, m.stages) = (*stage as u32, *stages as u32);
                "canary"
            }
            RolloutPhase::AbTest => "ab_test",
            RolloutPhase::Shadow => "shadow",
            RolloutPhase::Rolling {
                ready,
                replicas,
                batch,
            } => {
                (m.ready, m.replicas, m.batch) = (*ready as u32, *replicas as u32, *batch as u32);
                "rolling"
            }
            RolloutPhase::Promoting => "promoting",
            RolloutPhase::Grace => "grace",
        }
        .into();
        m
    });
    pb::DeploymentStatus {
        module: s.deployment.clone(),
        active: s
            .active
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        rollout,
        traffic: s
            .traffic
            .iter()
            .map(|t| pb::TrafficShare {
                version: t.version.to_string(),
                percent: t.percent,
                shadow: t.shadow,
            })
            .collect(),
    }
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Healthy => "healthy",
        Verdict::Inconclusive { .. } => "inconclusive",
        Verdict::Unhealthy { .. } => "unhealthy",
    }
}

/// A version's health over the window as the API's message.
pub fn health_summary(s: &HealthSummary) -> pb::HealthSummary {
    pb::HealthSummary {
        calls: s.calls,
        errors: s.errors,
        timeouts: s.timeouts,
        error_rate: s.error_rate,
        p50_us: s.p50_us,
        p90_us: s.p90_us,
        p99_us: s.p99_us,
        compared: s.compared,
        mismatches: s.mismatches,
    }
}

/// The API's name of a strategy kind: snake case, as the `Strategy` message's fields.
pub fn strategy_name(k: StrategyKind) -> &'static str {
    match k {
        StrategyKind::Immediate => "immediate",
        StrategyKind::BlueGreen => "blue_green",
        StrategyKind::Rolling => "rolling",
        StrategyKind::Canary => "canary",
        StrategyKind::AbTest => "ab_test",
        StrategyKind::Scheduled => "scheduled",
        StrategyKind::Shadow => "shadow",
    }
}

/// One history entry as the API's message.
pub fn version_info(v: &VersionInfo) -> pb::VersionInfo {
    let (state, percent, reason) = match &v.state {
        VersionState::Preparing => ("preparing", 0, String::new()),
        VersionState::Staged => ("staged", 0, String::new()),
        VersionState::RollingOut { percent } => ("rolling-out", *percent, String::new()),
        VersionState::Active => ("active", 0, String::new()),
        VersionState::RollingBack => ("rolling-back", 0, String::new()),
        VersionState::RolledBack => ("rolled-back", 0, String::new()),
        VersionState::Superseded => ("superseded", 0, String::new()),
        VersionState::Failed { reason } => ("failed", 0, reason.clone()),
    };
    let (health, health_reason) = match &v.health {
        HealthMark::Unknown => ("unknown", String::new()),
        HealthMark::Healthy { .. } => ("healthy", String::new()),
        HealthMark::Unhealthy { reason, .. } => ("unhealthy", reason.clone()),
    };
    pb::VersionInfo {
        version: v.version.to_string(),
        state: state.into(),
        percent: percent.into(),
        reason,
        by: v.meta.by.clone(),
        why: v.meta.why.clone(),
        strategy: v
            .strategy
            .as_ref()
            .map(|s| strategy_name(s.kind()).to_owned())
            .unwrap_or_default(),
        staged_at_ms: v.staged_at_ms,
        started_at_ms: v.started_at_ms.unwrap_or(0),
        activated_at_ms: v.activated_at_ms.unwrap_or(0),
        ended_at_ms: v.ended_at_ms.unwrap_or(0),
        health: health.into(),
        health_reason,
        summary: v.summary.as_ref().map(health_summary),
        retained: v.retained,
    }
}

/// A deployment event as the API's message, with a line for people.
pub fn deployment_event(e: &DeployEvent) -> pb::DeploymentEvent {
    let v = &e.version;
    let mut m = pb::DeploymentEvent {
        timestamp_ms: e.timestamp_ms,
        module: e.deployment.clone(),
        version: v.to_string(),
        ..Default::default()
    };
    let (kind, message) = match &e.kind {
        DeployKind::Staged => ("staged", format!("{v} staged")),
        DeployKind::Scheduled { at_ms } => {
            m.at_ms = *at_ms;
            (
                "scheduled",
                format!("{v} scheduled for {}", rfc3339(*at_ms)),
            )
        }
        DeployKind::Started { strategy, from } => {
            m.strategy = strategy_name(*strategy).into();
            m.from = from.as_ref().map(ToString::to_string).unwrap_or_default();
            let from = from
                .as_ref()
                .map_or_else(|| "no active version".into(), |f| format!("from {f}"));
            (
                "started",
                format!("{v} deployment started ({strategy}, {from})"),
            )
        }
        DeployKind::StageAdvanced { stage, percent } => {
            (m.stage, m.percent) = (*stage as u32, (*percent).into());
            (
                "stage_advanced",
                format!("{v} stage {}: {percent}% of traffic", stage + 1),
            )
        }
        DeployKind::Held { reason } => {
            m.reason = reason.clone();
            ("held", format!("{v} held: {reason}"))
        }
        DeployKind::Paused => ("paused", format!("{v} paused")),
        DeployKind::Resumed => ("resumed", format!("{v} resumed")),
        DeployKind::Promoted { from } => {
            m.from = from.as_ref().map(ToString::to_string).unwrap_or_default();
            let was = from
                .as_ref()
                .map(|f| format!(" (was {f})"))
                .unwrap_or_default();
            (
                "promoted",
                format!("{v} promoted: it takes all traffic{was}"),
            )
        }
        DeployKind::Succeeded => ("succeeded", format!("{v} deployment succeeded")),
        DeployKind::Failed { reason } => {
            m.reason = reason.clone();
            ("failed", format!("{v} failed: {reason}"))
        }
        DeployKind::RolledBack { to, reason } => {
            m.to = to.to_string();
            m.reason = reason.clone();
            ("rolled_back", format!("{v} rolled back to {to}: {reason}"))
        }
        DeployKind::HealthFailed { reason } => {
            m.reason = reason.clone();
            let why = reason.strip_prefix("unhealthy: ").unwrap_or(reason);
            ("health_failed", format!("{v} judged unhealthy: {why}"))
        }
        DeployKind::RollbackRefused { reason } => {
            m.reason = reason.clone();
            (
                "rollback_refused",
                format!("{v} refused as a rollback target: {reason}"),
            )
        }
        DeployKind::Released { drained } => {
            m.drained = *drained;
            let how = if *drained {
                "its calls drained"
            } else {
                "its drain deadline passed"
            };
            ("released", format!("{v} released ({how})"))
        }
        DeployKind::Restored => ("restored", format!("{v} restored as the active version")),
    };
    m.r#type = kind.into();
    m.message = message;
    m
}

/// Milliseconds since the Unix epoch as an RFC 3339 time in UTC, to the second.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The strategy a `Strategy` message describes. `instances` is the new version's pool
/// size, the replicas of a rolling update that names none.
///
/// # Errors
/// What is wrong, naming the field (`strategy.canary.percents[1]: ...`).
pub fn strategy(s: Option<&pb::Strategy>, instances: u32) -> Result<Strategy, String> {
    use pb::strategy::Kind;
    let s = s.ok_or(
        "strategy: none given (immediate, blue_green, rolling, canary, ab_test or shadow)",
    )?;
    let kind = s.kind.as_ref().ok_or(
        "strategy: no kind set (immediate, blue_green, rolling, canary, ab_test or shadow)",
    )?;
    let ms = Duration::from_millis;
    let or_default = |deadline_ms: u64, base: Duration| {
        if deadline_ms == 0 {
            base + DEFAULT_HOLD
        } else {
            ms(deadline_ms)
        }
    };
    let base = match kind {
        Kind::Immediate(_) => Strategy::immediate(),
        Kind::BlueGreen(b) => match Strategy::blue_green(ms(b.grace_ms)) {
            Strategy::BlueGreen(mut g) => {
                g.deadline = or_default(b.deadline_ms, g.grace);
                Strategy::BlueGreen(g)
            }
            other => other,
        },
        Kind::Rolling(r) => {
            let replicas = if r.replicas == 0 {
                instances
            } else {
                r.replicas
            };
            let mut rolling = Rolling::new(replicas as usize);
            if !r.max_surge.is_empty() {
                rolling.max_surge = amount("strategy.rolling.max_surge", &r.max_surge)?;
            }
            if !r.max_unavailable.is_empty() {
                rolling.max_unavailable =
                    amount("strategy.rolling.max_unavailable", &r.max_unavailable)?;
            }
            if r.progress_deadline_ms > 0 {
                rolling.progress_deadline = ms(r.progress_deadline_ms);
            }
            Strategy::Rolling(rolling)
        }
        Kind::Canary(c) => {
            let mut percents = Vec::with_capacity(c.percents.len());
            for (i, p) in c.percents.iter().enumerate() {
                match u8::try_from(*p) {
                    Ok(p) => percents.push(p),
                    Err(_) => {
                        return Err(format!(
                            "strategy.canary.percents[{i}]: {p} is not between 1 and 100"
                        ))
                    }
                }
            }
            match Strategy::canary(&percents, ms(c.stage_duration_ms)) {
                Strategy::Canary(mut canary) => {
                    if c.manual {
                        canary.advance = Advance::Manual;
                    }
                    canary.stage_deadline =
                        or_default(c.stage_deadline_ms, ms(c.stage_duration_ms));
                    Strategy::Canary(canary)
                }
                other => other,
            }
        }
        Kind::AbTest(a) => {
            let p = u8::try_from(a.percent_b).map_err(|_| {
                format!(
                    "strategy.ab_test.percent_b: {} is not between 1 and 99",
                    a.percent_b
                )
            })?;
            if a.deadline_ms == 0 {
                return Err(
                    "strategy.ab_test.deadline_ms: an A/B test needs a deadline, \
                            after which the active version is kept"
                        .into(),
                );
            }
            Strategy::ab_test(p, ms(a.deadline_ms))
        }
        Kind::Shadow(sh) => match Strategy::shadow(ms(sh.duration_ms)) {
            Strategy::Shadow(mut shadow) => {
                if sh.manual {
                    shadow.advance = Advance::Manual;
                }
                shadow.deadline = or_default(sh.deadline_ms, shadow.duration);
                Strategy::Shadow(shadow)
            }
            other => other,
        },
    };
    let strategy = match s.scheduled_at_ms {
        Some(at) => Strategy::scheduled(UNIX_EPOCH + ms(at), base),
        None => base,
    };
    strategy.validate().map_err(|e| format!("strategy.{e}"))?;
    Ok(strategy)
}

/// A count (`"2"`) or a percent (`"25%"`), as Kubernetes' `intOrString`.
///
/// # Errors
/// When it is neither, naming `field`.
pub fn amount(field: &str, s: &str) -> Result<Amount, String> {
    let bad = || format!("{field}: {s:?} is neither a count (2) nor a percent (25%)");
    match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse().map(Amount::Percent).map_err(|_| bad()),
        None => s.trim().parse().map(Amount::Count).map_err(|_| bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(percents: Vec<u32>, manual: bool) -> pb::Strategy {
        pb::Strategy {
            kind: Some(pb::strategy::Kind::Canary(pb::Canary {
                percents,
                stage_duration_ms: 30_000,
                manual,
                stage_deadline_ms: 0,
            })),
            scheduled_at_ms: None,
        }
    }

    #[test]
    fn a_canary_request_becomes_its_strategy() {
        let s = strategy(Some(&canary(vec![5, 25, 50, 100], false)), 2).unwrap();
        let Strategy::Canary(c) = s else {
            panic!("not a canary: {s:?}")
        };
        let percents: Vec<u8> = c.stages.iter().map(|s| s.percent).collect();
        assert_eq!(percents, [5, 25, 50, 100]);
        assert_eq!(c.stages[0].duration, Duration::from_secs(30));
        assert_eq!(c.stage_deadline, Duration::from_secs(30) + DEFAULT_HOLD);
        assert_eq!(c.advance, Advance::Auto);

        let Strategy::Canary(c) = strategy(Some(&canary(vec![5, 25, 100], true)), 1).unwrap()
        else {
            panic!("not a canary")
        };
        assert_eq!(c.advance, Advance::Manual);
    }

    #[test]
    fn bad_strategies_name_their_field() {
        let e = strategy(Some(&canary(vec![5, 300], false)), 2).unwrap_err();
        assert!(e.contains("strategy.canary.percents[1]: 300"), "{e}");
        let e = strategy(Some(&canary(vec![50, 25], false)), 2).unwrap_err();
        assert!(e.contains("canary.stages[1].percent"), "{e}");
        let e = strategy(None, 2).unwrap_err();
        assert!(e.starts_with("strategy: none given"), "{e}");
        let e = strategy(Some(&pb::Strategy::default()), 2).unwrap_err();
        assert!(e.starts_with("strategy: no kind set"), "{e}");
        let ab = pb::Strategy {
            kind: Some(pb::strategy::Kind::AbTest(pb::AbTest {
                percent_b: 30,
                deadline_ms: 0,
            })),
            scheduled_at_ms: None,
        };
        let e = strategy(Some(&ab), 2).unwrap_err();
        assert!(e.contains("ab_test.deadline_ms"), "{e}");
    }

    #[test]
    fn a_rolling_update_without_replicas_takes_the_pool_size() {
        let r = pb::Strategy {
            kind: Some(pb::strategy::Kind::Rolling(pb::Rolling {
                replicas: 0,
                max_surge: "1".into(),
                max_unavailable: "0%".into(),
                progress_deadline_ms: 0,
            })),
            // 2096: a start time in the future.
            scheduled_at_ms: Some(4_000_000_000_000),
        };
        let Strategy::Scheduled(s) = strategy(Some(&r), 3).unwrap() else {
            panic!("not scheduled")
        };
        let Strategy::Rolling(rolling) = *s.then else {
            panic!("not rolling")
        };
        assert_eq!(rolling.replicas, 3);
        assert_eq!(rolling.max_surge, Amount::Count(1));
        assert_eq!(rolling.max_unavailable, Amount::Percent(0));
        assert!(amount("f", "x%").unwrap_err().contains("f: \"x%\""));
    }

    #[test]
    fn deployment_events_have_a_line_for_people() {
        let e = DeployEvent {
            timestamp_ms: 1_700_000_000_000,
            deployment: "text".into(),
            version: crate::VersionId::new("2.0.0").unwrap(),
            kind: DeployKind::StageAdvanced {
                stage: 1,
                percent: 25,
            },
        };
        let m = deployment_event(&e);
        assert_eq!(m.r#type, "stage_advanced");
        assert_eq!(m.module, "text");
        assert_eq!(m.message, "2.0.0 stage 2: 25% of traffic");
        assert_eq!((m.stage, m.percent), (1, 25));
        assert!(m.reason.is_empty());
        assert_eq!(rfc3339(m.timestamp_ms), "2023-11-14T22:13:20Z");
    }
}
