//! [`DeployError`]: why an operation was refused or a deployment failed. Each names the
//! version, and for a refused transition its state and the operation.

use std::fmt;
use std::time::Duration;

use crate::hooks::{HookFailure, SmokeFailure, SmokePhase};
use crate::strategy::StrategyError;
use crate::version::{VersionId, VersionState};

/// An operation of a [`Deployer`](crate::Deployer), as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`stage`](crate::Deployer::stage).
    Stage,
    /// [`prepare`](crate::Deployer::prepare).
    Prepare,
    /// [`deploy`](crate::Deployer::deploy).
    Deploy,
    /// [`advance`](crate::Deployer::advance).
    Advance,
    /// [`pause`](crate::Deployer::pause).
    Pause,
    /// [`resume`](crate::Deployer::resume).
    Resume,
    /// [`abort`](crate::Deployer::abort).
    Abort,
    /// [`rollback`](crate::Deployer::rollback).
    Rollback,
    /// [`set_split`](crate::Deployer::set_split).
    SetSplit,
    /// [`restore`](crate::Deployer::restore).
    Restore,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Stage => "stage",
            Operation::Prepare => "prepare",
            Operation::Deploy => "deploy",
            Operation::Advance => "advance",
            Operation::Pause => "pause",
            Operation::Resume => "resume",
            Operation::Abort => "abort",
            Operation::Rollback => "roll back",
            Operation::SetSplit => "set the split of",
            Operation::Restore => "restore",
        })
    }
}

/// A version refused as a rollback target, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The version.
    pub version: VersionId,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.version, self.reason)
    }
}

/// Why an operation was refused or a deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A version id that cannot be used.
    #[error("invalid version id {id:?}: {problem}")]
    InvalidVersionId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// No version of that id is known (never staged, or dropped from the history).
    #[error("cannot {op} version {version}: no such version is known")]
    UnknownVersion {
        /// The id asked for.
        version: String,
        /// The operation.
        op: Operation,
    },
    /// The version's state does not allow the operation.
    #[error("cannot {op} version {version}: it is {state}")]
    IllegalTransition {
        /// The version.
        version: VersionId,
        /// Its state.
        state: VersionState,
        /// The operation refused.
        op: Operation,
    },
    /// The operation needs a deployment in progress and there is none.
    #[error("cannot {op}: no deployment is in progress")]
    NoDeployment {
        /// The operation.
        op: Operation,
    },
    /// Only one deployment runs at a time.
    #[error(
        "cannot {op} {requested}: the deployment of {in_progress} is in progress \
         (advance it, wait for it, or abort it first)"
    )]
    DeploymentInProgress {
        /// The operation.
        op: Operation,
        /// The version asked for.
        requested: VersionId,
        /// The version being deployed.
        in_progress: VersionId,
    },
    /// The operation does not apply to the deployment's strategy or phase.
    #[error("cannot {op} the deployment of {version}: {reason}")]
    NotApplicable {
        /// The version being deployed.
        version: VersionId,
        /// The operation.
        op: Operation,
        /// Why not.
        reason: String,
    },
    /// The strategy cannot run.
    #[error("cannot {op} {version}: invalid strategy")]
    InvalidStrategy {
        /// The version.
        version: VersionId,
        /// The operation: deploy, or a new A/B split.
        op: Operation,
        /// What is wrong.
        #[source]
        source: StrategyError,
    },
    /// A rolling update needs [`Instances`](crate::Instances).
    #[error(
        "cannot deploy {version} with a rolling update: the deployer was built without \
         an Instances implementation"
    )]
    NoInstances {
        /// The version.
        version: VersionId,
    },
    /// A scheduled version was asked to start before its time.
    #[error(
        "cannot activate {version} yet: it is scheduled for {} ({at_ms} ms since the epoch), \
         {} from now; activating early is not allowed",
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(*at_ms)),
        humantime::format_duration(Duration::from_millis(early.as_millis() as u64))
    )]
    TooEarly {
        /// The version.
        version: VersionId,
        /// When it is scheduled, ms since the Unix epoch.
        at_ms: u64,
        /// How early the request was.
        early: Duration,
    },
    /// The current stage's analysis has not passed.
    #[error("cannot advance {version}: {reason}")]
    NotReady {
        /// The version.
        version: VersionId,
        /// What is missing: time, calls, or health.
        reason: String,
    },
    /// Starting a prepared version failed.
    #[error("starting {version} failed")]
    StartFailed {
        /// The version.
        version: VersionId,
        /// How.
        #[source]
        source: HookFailure,
    },
    /// A version failed its warm check.
    #[error("the warm check of {version} failed")]
    WarmFailed {
        /// The version.
        version: VersionId,
        /// How.
        #[source]
        source: HookFailure,
    },
    /// A smoke check failed; before traffic the deployment failed, after promotion it
    /// was rolled back.
    #[error("smoke check {check:?} of {version} failed {phase}")]
    SmokeFailed {
        /// The version.
        version: VersionId,
        /// The check's name.
        check: String,
        /// When it ran.
        phase: SmokePhase,
        /// The mismatch.
        #[source]
        source: SmokeFailure,
    },
    /// Scaling a version's instances failed.
    #[error("scaling {version} to {replicas} instances failed")]
    ScaleFailed {
        /// The version.
        version: VersionId,
        /// The count asked for.
        replicas: usize,
        /// How.
        #[source]
        source: HookFailure,
    },
    /// No version could take the traffic back.
    #[error(
        "cannot roll back {from}: no version known healthy could take the traffic{}{}",
        list_refusals(refused),
        hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default()
    )]
    NoRollbackTarget {
        /// The version being rolled back.
        from: VersionId,
        /// The candidates refused, and why.
        refused: Vec<Refusal>,
        /// What can be done instead.
        hint: Option<String>,
    },
    /// A named rollback target was refused.
    #[error("cannot roll back to {version}: {reason}")]
    RollbackRefused {
        /// The target.
        version: VersionId,
        /// Why.
        reason: String,
    },
    /// A snapshot cannot be restored.
    #[error("cannot restore deployment {deployment:?}: {problem}")]
    Restore {
        /// The deployer's name.
        deployment: String,
        /// What is wrong.
        problem: String,
    },
}

/// ` (refused: a: why; b: why)`, or nothing.
pub(crate) fn list_refusals(refused: &[Refusal]) -> String {
    if refused.is_empty() {
        return String::new();
    }
    let items: Vec<String> = refused.iter().map(Refusal::to_string).collect();
    format!(" (refused: {})", items.join("; "))
}

/// The message of an error followed by those of its sources, joined by `: `.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_version_state_and_operation() {
        let e = DeployError::IllegalTransition {
            version: VersionId::new("1.3.0").unwrap(),
            state: VersionState::RolledBack,
            op: Operation::Pause,
        };
        assert_eq!(
            e.to_string(),
            "cannot pause version 1.3.0: it is rolled back"
        );
    }

    #[test]
    fn the_chain_keeps_the_cause() {
        let e = DeployError::SmokeFailed {
            version: VersionId::new("2").unwrap(),
            check: "echo".into(),
            phase: SmokePhase::BeforeTraffic,
            source: SmokeFailure::mismatch("echo(\"hi\")", "\"hi\"", "\"HI\""),
        };
        assert_eq!(
            chain(&e),
            "smoke check \"echo\" of 2 failed before traffic: echo(\"hi\"): expected \"hi\", got \"HI\""
        );
    }
}
