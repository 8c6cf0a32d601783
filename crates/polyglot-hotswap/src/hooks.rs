//! What the caller plugs in: [`SmokeCheck`]s run before a version takes traffic and after
//! its promotion, a [`Lifecycle`] (warm check, release, revival) and, for rolling
//! updates, [`Instances`].
//!
//! Each hook returns a boxed future so that it can be held as a trait object; every call
//! of one is bounded by a deadline of the deployer's [`Deadlines`](crate::Deadlines).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::version::VersionId;

/// A boxed, sendable future, as hooks return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any error a hook reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// When a smoke check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SmokePhase {
    /// Before the new version takes any traffic.
    BeforeTraffic,
    /// Right after the new version was promoted (took all traffic).
    AfterPromotion,
}

impl fmt::Display for SmokePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmokePhase::BeforeTraffic => "before traffic",
            SmokePhase::AfterPromotion => "after promotion",
        })
    }
}

/// Why a smoke check failed: what it expected and what it got, or a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeFailure {
    /// What went wrong, such as `echo("hi")`.
    pub message: String,
    /// What was expected, if the check compares.
    pub expected: Option<String>,
    /// What came instead.
    pub actual: Option<String>,
}

impl SmokeFailure {
    /// A failure described by a message.
    pub fn new(message: impl Into<String>) -> SmokeFailure {
        SmokeFailure {
            message: message.into(),
            expected: None,
            actual: None,
        }
    }

    /// A mismatch: `what` answered `actual` where `expected` was expected.
    pub fn mismatch(
        what: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> SmokeFailure {
        SmokeFailure {
            message: what.into(),
            expected: Some(expected.into()),
            actual: Some(actual.into()),
        }
    }
}

impl std::error::Error for SmokeFailure {}

impl fmt::Display for SmokeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (&self.expected, &self.actual) {
            (Some(e), Some(a)) => write!(f, ": expected {e}, got {a}"),
            (Some(e), None) => write!(f, ": expected {e}"),
            (None, Some(a)) => write!(f, ": got {a}"),
            (None, None) => Ok(()),
        }
    }
}

/// One smoke check: a few real calls against a version, compared with known answers.
/// A failure before traffic fails the deployment; after promotion it rolls it back.
pub trait SmokeCheck<T>: Send + Sync + 'static {
    /// Its name, for reasons and events.
    fn name(&self) -> &str;

    /// Runs the check against `target`, the value of `version`.
    fn run(
        &self,
        version: VersionId,
        target: Arc<T>,
        phase: SmokePhase,
    ) -> BoxFuture<'_, Result<(), SmokeFailure>>;
}

/// A [`SmokeCheck`] made of a name and an async closure.
///
/// ```
/// use std::sync::Arc;
/// use polyglot_hotswap::{Deployer, SmokeFailure, SmokeFn, SmokePhase, VersionId};
///
/// let check = SmokeFn::new("answers 42", |_: VersionId, target: Arc<u32>, _: SmokePhase| async move {
///     match *target {
///         42 => Ok(()),
///         other => Err(SmokeFailure::mismatch("answer()", "42", other.to_string())),
///     }
/// });
/// let deployer: Deployer<u32> = Deployer::builder().smoke_check(check).build();
/// # let _ = deployer;
/// ```
pub struct SmokeFn<F> {
    name: String,
    check: F,
}

impl<F> SmokeFn<F> {
    /// A check named `name` running `check`.
    pub fn new(name: impl Into<String>, check: F) -> SmokeFn<F> {
        SmokeFn {
            name: name.into(),
            check,
        }
    }
}

impl<T, F, Fut> SmokeCheck<T> for SmokeFn<F>
where
    T: Send + Sync + 'static,
    F: Fn(VersionId, Arc<T>, SmokePhase) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), SmokeFailure>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn run(
        &self,
        version: VersionId,
        target: Arc<T>,
        phase: SmokePhase,
    ) -> BoxFuture<'_, Result<(), SmokeFailure>> {
        Box::pin((self.check)(version, target, phase))
    }
}

/// What the caller does when a version's life changes. Every method has a default that
/// does nothing (or, for [`revive`](Lifecycle::revive), declines).
pub trait Lifecycle<T>: Send + Sync + 'static {
    /// Checks that `target` is up and warm: run before a new version takes its first
    /// traffic and before a rollback target takes traffic back. An error refuses it.
    fn warm(&self, version: VersionId, target: Arc<T>) -> BoxFuture<'_, Result<(), BoxError>> {
        let _ = (version, target);
        Box::pin(async { Ok(()) })
    }

    /// The deployer lets go of `target`: it takes no more new traffic. Drain its calls in
    /// flight and stop it; bounded by [`Deadlines::drain`](crate::Deadlines::drain), after
    /// which the future is dropped.
    fn release(&self, version: VersionId, target: Arc<T>) -> BoxFuture<'_, ()> {
        let _ = (version, target);
        Box::pin(async {})
    }

    /// Brings a released version back (starts it again), when a rollback chose it as the
    /// last version known healthy. It is then warm-checked before it takes traffic.
    fn revive(&self, version: VersionId) -> BoxFuture<'_, Result<Arc<T>, BoxError>> {
        Box::pin(async move {
            Err(format!("{version} was released and this deployer cannot revive versions").into())
        })
    }
}

/// The [`Lifecycle`] that does nothing: every warm check passes, nothing is revived.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLifecycle;

impl<T> Lifecycle<T> for NoLifecycle {}

/// The instances of each version, for [rolling updates](crate::Strategy::Rolling): the
/// deployer says how many each version should have and reads how many are ready; traffic
/// follows the ready ones.
pub trait Instances<T>: Send + Sync + 'static {
    /// Asks for `replicas` instances of `version` (more or fewer than now). Returns once
    /// the change is under way, not when they are ready.
    fn scale(
        &self,
        version: VersionId,
        target: Arc<T>,
        replicas: usize,
    ) -> BoxFuture<'_, Result<(), BoxError>>;

    /// How many instances of `version` are ready to take calls now.
    fn ready(&self, version: &VersionId, target: &Arc<T>) -> usize;
}

/// Why a hook did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    /// It returned an error.
    #[error(transparent)]
    Failed(BoxError),
    /// It was still running at its deadline, and was dropped.
    #[error("it did not finish within {0:?}")]
    TimedOut(Duration),
}
