//! The deployment RPCs of the gRPC API: deployments and rollbacks run in tasks of their
//! own, deployment events as webhooks' JSON, and deployment errors as gRPC statuses with
//! an [`pb::ErrorDetail`] (`docs/protocol.md`, and the comments of `runtime.proto`).
//! The messages themselves are written and read by [`polyglot_core::api`].

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use polyglot_core::api::{self, rfc3339};
use polyglot_core::{DeployError, DeploymentError, LoadError, Manifest, Runtime, VersionMeta};
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
    let strategy = api::strategy(r.strategy.as_ref(), manifest.instances)
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
        .map(|s| api::deployment_status(runtime, &s))
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

    #[test]
    fn events_read_as_flat_json() {
        let m = pb::DeploymentEvent {
            timestamp_ms: 1_700_000_000_000,
            module: "text".into(),
            version: "2.0.0".into(),
            r#type: "stage_advanced".into(),
            message: "2.0.0 stage 2: 25% of traffic".into(),
            stage: 1,
            percent: 25,
            ..Default::default()
        };
        let j = event_json(&m);
        assert_eq!(j["module"], "text");
        assert_eq!(j["type"], "stage_advanced");
        assert_eq!(j["message"], "2.0.0 stage 2: 25% of traffic");
        assert_eq!(j["percent"], 25);
        assert_eq!(j["time"], "2023-11-14T22:13:20Z");
        assert!(j.get("reason").is_none(), "{j}");
        assert!(j.get("drained").is_none(), "{j}");
        assert_eq!(outcome(&m, "2.0.0"), None);
    }
}
