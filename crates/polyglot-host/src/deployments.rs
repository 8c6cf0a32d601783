//! The deployment RPCs of the gRPC API: strategies read from their messages, statuses,
//! history and events written into theirs, and deployment errors as gRPC statuses with
//! an [`pb::ErrorDetail`] (`docs/protocol.md`, and the comments of `runtime.proto`).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polyglot_core::hotswap::{
    Advance, Amount, EventKind, HealthMark, HealthSummary, RolloutPhase, StrategyKind, DEFAULT_HOLD,
};
use polyglot_core::{
    DeployError, DeployEvent, DeploymentError, DeploymentStatus, LoadError, Manifest, Runtime,
    Strategy, VersionInfo, VersionMeta, VersionState,
};
use polyglot_proto::v1 as pb;
use tonic::{Code, Status};

/// Who a deployment's history names when the request does not say.
const DEFAULT_BY: &str = "grpc client";

/// Runs a `Deploy` request: reads the folder's manifest, builds the strategy, deploys.
///
/// The deployment runs in a task of its own: a client that goes away mid-way (a closed
/// terminal, a lost connection) must not cancel a version half started.
pub async fn deploy(runtime: &Runtime, r: pb::DeployRequest) -> Result<pb::DeployResponse, Status> {
    if r.module.is_empty() {
        return Err(invalid("module", "no module named", "module"));
    }
    if r.path.is_empty() {
        return Err(invalid(
            &r.module,
            "path: no folder given (the new version's folder, holding its module.json)",
            "path",
        ));
    }
    let manifest = Manifest::load(Path::new(&r.path)).map_err(|e| {
        let d = pb::ErrorDetail {
            kind: "invalid_argument".into(),
            module: r.module.clone(),
            code: "manifest".into(),
            message: e.to_string(),
            ..Default::default()
        };
        polyglot_proto::status_with_detail(Code::InvalidArgument, e.to_string(), &d)
    })?;
    let strategy = strategy(r.strategy.as_ref(), manifest.instances)
        .map_err(|m| invalid(&r.module, &m, "invalid_strategy"))?;
    let by = if r.by.is_empty() { DEFAULT_BY } else { &r.by };
    let meta = VersionMeta::new(by, r.why);
    let module = r.module;
    let task = {
        let runtime = runtime.clone();
        let module = module.clone();
        tokio::spawn(async move { runtime.deploy(&module, manifest, strategy, meta).await })
    };
    let version = task
        .await
        .map_err(|e| Status::internal(format!("the deployment task failed: {e}")))?
        .map_err(|e| error_status(&module, &e))?;
    Ok(pb::DeployResponse {
        status: status_of(runtime, &module),
        module,
        version: version.to_string(),
    })
}

/// Runs a `Rollback` request (in its own task, as [`deploy`]).
pub async fn rollback(
    runtime: &Runtime,
    r: pb::RollbackRequest,
) -> Result<pb::RollbackResponse, Status> {
    let task = {
        let runtime = runtime.clone();
        let module = r.module.clone();
        let to = (!r.to.is_empty()).then_some(r.to);
        tokio::spawn(async move { runtime.rollback(&module, to.as_deref()).await })
    };
    let version = task
        .await
        .map_err(|e| Status::internal(format!("the rollback task failed: {e}")))?
        .map_err(|e| error_status(&r.module, &e))?;
    Ok(pb::RollbackResponse {
        status: status_of(runtime, &r.module),
        module: r.module,
        version: version.to_string(),
    })
}

/// A module's deployment status, with the new version's health over the window.
pub fn status_of(runtime: &Runtime, module: &str) -> Option<pb::DeploymentStatus> {
    runtime
        .deployment(module)
        .map(|s| status_message(runtime, &s))
}

/// The status of a module that must have one: NOT_FOUND otherwise.
pub fn require_status(runtime: &Runtime, module: &str) -> Result<pb::DeploymentStatus, Status> {
    status_of(runtime, module).ok_or_else(|| not_deployable(runtime, module))
}

/// Why a module has no deployment: not loaded, or served in-process.
pub fn not_deployable(runtime: &Runtime, module: &str) -> Status {
    let e = if runtime.module(module).is_some() {
        DeploymentError::InProcess(module.to_owned())
    } else {
        DeploymentError::NotFound(module.to_owned())
    };
    error_status(module, &e)
}

/// The API's message of a deployment status.
pub fn status_message(runtime: &Runtime, s: &DeploymentStatus) -> pb::DeploymentStatus {
    let rollout = s.rollout.as_ref().map(|r| {
        let health = runtime.history(&s.deployment).and_then(|h| {
            h.iter()
                .find(|v| v.version == r.version)
                .and_then(|v| v.summary.as_ref().map(summary))
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

fn verdict_name(v: &polyglot_core::hotswap::Verdict) -> &'static str {
    use polyglot_core::hotswap::Verdict;
    match v {
        Verdict::Healthy => "healthy",
        Verdict::Inconclusive { .. } => "inconclusive",
        Verdict::Unhealthy { .. } => "unhealthy",
    }
}

fn summary(s: &HealthSummary) -> pb::HealthSummary {
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
pub fn version_message(v: &VersionInfo) -> pb::VersionInfo {
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
        summary: v.summary.as_ref().map(summary),
        retained: v.retained,
    }
}

/// A deployment event as the API's message, with a line for people.
pub fn event_message(e: &DeployEvent) -> pb::DeploymentEvent {
    let v = &e.version;
    let mut m = pb::DeploymentEvent {
        timestamp_ms: e.timestamp_ms,
        module: e.deployment.clone(),
        version: v.to_string(),
        ..Default::default()
    };
    let (kind, message) = match &e.kind {
        EventKind::Staged => ("staged", format!("{v} staged")),
        EventKind::Scheduled { at_ms } => {
            m.at_ms = *at_ms;
            (
                "scheduled",
                format!("{v} scheduled for {}", rfc3339(*at_ms)),
            )
        }
        EventKind::Started { strategy, from } => {
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
        EventKind::StageAdvanced { stage, percent } => {
            (m.stage, m.percent) = (*stage as u32, (*percent).into());
            (
                "stage_advanced",
                format!("{v} stage {}: {percent}% of traffic", stage + 1),
            )
        }
        EventKind::Held { reason } => {
            m.reason = reason.clone();
            ("held", format!("{v} held: {reason}"))
        }
        EventKind::Paused => ("paused", format!("{v} paused")),
        EventKind::Resumed => ("resumed", format!("{v} resumed")),
        EventKind::Promoted { from } => {
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
        EventKind::Succeeded => ("succeeded", format!("{v} deployment succeeded")),
        EventKind::Failed { reason } => {
            m.reason = reason.clone();
            ("failed", format!("{v} failed: {reason}"))
        }
        EventKind::RolledBack { to, reason } => {
            m.to = to.to_string();
            m.reason = reason.clone();
            ("rolled_back", format!("{v} rolled back to {to}: {reason}"))
        }
        EventKind::HealthFailed { reason } => {
            m.reason = reason.clone();
            let why = reason.strip_prefix("unhealthy: ").unwrap_or(reason);
            ("health_failed", format!("{v} judged unhealthy: {why}"))
        }
        EventKind::RollbackRefused { reason } => {
            m.reason = reason.clone();
            (
                "rollback_refused",
                format!("{v} refused as a rollback target: {reason}"),
            )
        }
        EventKind::Released { drained } => {
            m.drained = *drained;
            let how = if *drained {
                "its calls drained"
            } else {
                "its drain deadline passed"
            };
            ("released", format!("{v} released ({how})"))
        }
        EventKind::Restored => ("restored", format!("{v} restored as the active version")),
    };
    m.r#type = kind.into();
    m.message = message;
    m
}

/// A deployment event as a flat JSON object (what webhooks receive): the fields of
/// [`pb::DeploymentEvent`] in camel case, those left empty omitted.
pub fn event_json(e: &pb::DeploymentEvent) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    o.insert("timestampMs".into(), e.timestamp_ms.into());
    o.insert("time".into(), rfc3339(e.timestamp_ms).into());
    o.insert("module".into(), e.module.clone().into());
    o.insert("version".into(), e.version.clone().into());
    o.insert("type".into(), e.r#type.clone().into());
    o.insert("message".into(), e.message.clone().into());
    for (k, v) in [
        ("reason", &e.reason),
        ("from", &e.from),
        ("to", &e.to),
        ("strategy", &e.strategy),
    ] {
        if !v.is_empty() {
            o.insert(k.into(), v.clone().into());
        }
    }
    match e.r#type.as_str() {
        "stage_advanced" => {
            o.insert("stage".into(), e.stage.into());
            o.insert("percent".into(), e.percent.into());
        }
        "scheduled" => {
            o.insert("atMs".into(), e.at_ms.into());
        }
        "released" => {
            o.insert("drained".into(), e.drained.into());
        }
        _ => {}
    }
    serde_json::Value::Object(o)
}

/// Milliseconds since the Unix epoch as an RFC 3339 time in UTC, to the second.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The strategy a request describes. `instances` is the new version's pool size, the
/// replicas of a rolling update that names none.
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
            let mut rolling = polyglot_core::hotswap::Rolling::new(replicas as usize);
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

fn invalid(module: &str, message: &str, code: &str) -> Status {
    let d = pb::ErrorDetail {
        kind: "invalid_argument".into(),
        module: module.into(),
        code: code.into(),
        message: message.into(),
        ..Default::default()
    };
    polyglot_proto::status_with_detail(Code::InvalidArgument, message, &d)
}

/// The gRPC status of a deployment error: a deliberate code, the error's text, and an
/// [`pb::ErrorDetail`] whose kind and code say which case it is.
pub fn error_status(module: &str, e: &DeploymentError) -> Status {
    const REFUSED: &str = "deployment_refused";
    const FAILED: &str = "deployment_failed";
    const INVALID: &str = "invalid_argument";
    let (code, kind, case) = match e {
        DeploymentError::NotFound(_) => (Code::NotFound, "module_not_found", "not_found"),
        DeploymentError::InProcess(_) => (Code::FailedPrecondition, REFUSED, "in_process"),
        DeploymentError::Load(l) => match **l {
            LoadError::Manifest(_) => (Code::InvalidArgument, INVALID, "manifest"),
            LoadError::Build(_) => (Code::FailedPrecondition, FAILED, "build_failed"),
            _ => (Code::FailedPrecondition, FAILED, "start_failed"),
        },
        DeploymentError::WrongModule { .. } => (Code::InvalidArgument, INVALID, "wrong_module"),
        DeploymentError::Replicas { .. } => (Code::InvalidArgument, INVALID, "replicas"),
        DeploymentError::ShuttingDown => (Code::Unavailable, "shutting_down", "shutting_down"),
        DeploymentError::Deploy { source, .. } => match &**source {
            DeployError::InvalidVersionId { .. } => {
                (Code::InvalidArgument, INVALID, "invalid_version_id")
            }
            DeployError::InvalidStrategy { .. } => {
                (Code::InvalidArgument, INVALID, "invalid_strategy")
            }
            DeployError::UnknownVersion { .. } => {
                (Code::NotFound, "version_not_found", "unknown_version")
            }
            DeployError::StartFailed { .. } => (Code::FailedPrecondition, FAILED, "start_failed"),
            DeployError::WarmFailed { .. } => (Code::FailedPrecondition, FAILED, "warm_failed"),
            DeployError::SmokeFailed { .. } => (Code::FailedPrecondition, FAILED, "smoke_failed"),
            DeployError::ScaleFailed { .. } => (Code::FailedPrecondition, FAILED, "scale_failed"),
            DeployError::IllegalTransition { .. } => {
                (Code::FailedPrecondition, REFUSED, "illegal_transition")
            }
            DeployError::NoDeployment { .. } => {
                (Code::FailedPrecondition, REFUSED, "no_deployment")
            }
            DeployError::DeploymentInProgress { .. } => {
                (Code::FailedPrecondition, REFUSED, "deployment_in_progress")
            }
            DeployError::NotApplicable { .. } => {
                (Code::FailedPrecondition, REFUSED, "not_applicable")
            }
            DeployError::NoInstances { .. } => (Code::FailedPrecondition, REFUSED, "no_instances"),
            DeployError::TooEarly { .. } => (Code::FailedPrecondition, REFUSED, "too_early"),
            DeployError::NotReady { .. } => (Code::FailedPrecondition, REFUSED, "not_ready"),
            DeployError::NoRollbackTarget { .. } => {
                (Code::FailedPrecondition, REFUSED, "no_rollback_target")
            }
            DeployError::RollbackRefused { .. } => {
                (Code::FailedPrecondition, REFUSED, "rollback_refused")
            }
            DeployError::Restore { .. } => (Code::FailedPrecondition, REFUSED, "restore"),
        },
    };
    // A load error's own text stops at its first cause; the chain says what failed.
    let message = match e {
        DeploymentError::Load(l) => polyglot_core::error_chain(&**l),
        other => other.to_string(),
    };
    let d = pb::ErrorDetail {
        kind: kind.into(),
        module: module.into(),
        code: case.into(),
        message: message.clone(),
        ..Default::default()
    };
    polyglot_proto::status_with_detail(code, message, &d)
}

/// When a deployment event is the end of `version`'s deployment: `Some(true)` when it
/// went live, `Some(false)` when it failed or was rolled back.
pub fn outcome(e: &pb::DeploymentEvent, version: &str) -> Option<bool> {
    if e.version != version {
        return None;
    }
    match e.r#type.as_str() {
        "succeeded" => Some(true),
        "failed" | "rolled_back" => Some(false),
        _ => None,
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(percents: Vec<u32>) -> pb::Strategy {
        pb::Strategy {
            kind: Some(pb::strategy::Kind::Canary(pb::Canary {
                percents,
                stage_duration_ms: 30_000,
                manual: false,
                stage_deadline_ms: 0,
            })),
            scheduled_at_ms: None,
        }
    }

    #[test]
    fn a_canary_request_becomes_its_strategy() {
        let s = strategy(Some(&canary(vec![5, 25, 50, 100])), 2).unwrap();
        let Strategy::Canary(c) = s else {
            panic!("not a canary: {s:?}")
        };
        let percents: Vec<u8> = c.stages.iter().map(|s| s.percent).collect();
        assert_eq!(percents, [5, 25, 50, 100]);
        assert_eq!(c.stages[0].duration, Duration::from_secs(30));
        assert_eq!(c.stage_deadline, Duration::from_secs(30) + DEFAULT_HOLD);
        assert_eq!(c.advance, Advance::Auto);
    }

    #[test]
    fn bad_strategies_name_their_field() {
        let e = strategy(Some(&canary(vec![5, 300])), 2).unwrap_err();
        assert!(e.contains("strategy.canary.percents[1]: 300"), "{e}");
        let e = strategy(Some(&canary(vec![50, 25])), 2).unwrap_err();
        assert!(e.contains("canary.stages[1].percent"), "{e}");
        let e = strategy(None, 2).unwrap_err();
        assert!(e.starts_with("strategy: none given"), "{e}");
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
            scheduled_at_ms: Some(now_ms() + 60_000),
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
    fn events_read_as_lines_and_flat_json() {
        let e = DeployEvent {
            timestamp_ms: 1_700_000_000_000,
            deployment: "text".into(),
            version: polyglot_core::VersionId::new("2.0.0").unwrap(),
            kind: EventKind::StageAdvanced {
                stage: 1,
                percent: 25,
            },
        };
        let m = event_message(&e);
        assert_eq!(m.r#type, "stage_advanced");
        assert_eq!(m.message, "2.0.0 stage 2: 25% of traffic");
        let j = event_json(&m);
        assert_eq!(j["module"], "text");
        assert_eq!(j["percent"], 25);
        assert_eq!(j["time"], "2023-11-14T22:13:20Z");
        assert!(j.get("reason").is_none(), "{j}");
        assert_eq!(outcome(&m, "2.0.0"), None);
    }
}
