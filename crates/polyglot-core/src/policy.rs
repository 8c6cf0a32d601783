//! The call policies a manifest sets (`idempotent`, `retry`, `breaker`): plain data, read
//! by `manifest.rs` and applied by `resilience.rs`, which says what they do.

use std::time::Duration;

/// Which methods may be retried.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Idempotent {
    /// None (the default).
    #[default]
    None,
    /// These methods.
    Methods(Vec<String>),
    /// Every method (`"idempotent": ["*"]`).
    All,
}

impl Idempotent {
    /// Whether `method` may be retried.
    pub fn allows(&self, method: &str) -> bool {
        match self {
            Idempotent::None => false,
            Idempotent::Methods(list) => list.iter().any(|m| m == method),
            Idempotent::All => true,
        }
    }
}

/// How calls of idempotent methods are retried: `module.json`'s `retry`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (`maxAttempts`, default 3; 1 turns retries off).
    pub max_attempts: u32,
    /// The first back-off before a retry (`backoffInitialMs`, default 20 ms). Each next
    /// one doubles, up to `backoff_max`; the wait is drawn at random between zero and
    /// that ("full jitter"), so retries of many callers spread out.
    pub backoff_initial: Duration,
    /// The longest back-off (`backoffMaxMs`, default 1 s).
    pub backoff_max: Duration,
    /// The deadline of one attempt (`attemptTimeoutMs`). Without it an attempt has the
    /// whole call's deadline, so a timeout ends the call and is not retried.
    pub attempt_timeout: Option<Duration>,
    /// Retries allowed per call made, over the last ten seconds (`budgetRatio`,
    /// default 0.2).
    pub budget_ratio: f64,
    /// Retries allowed per second whatever the number of calls (`minRetriesPerSecond`,
    /// default 10), so a module called rarely can still be retried.
    pub min_retries_per_second: u32,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            attempt_timeout: None,
            budget_ratio: 0.2,
            min_retries_per_second: 10,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first): at random between zero
    /// and `backoff_initial * 2^(retry-1)`, capped at `backoff_max`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let cap = self
            .backoff_initial
            .saturating_mul(1 << exp)
            .min(self.backoff_max);
        cap.mul_f64(fastrand::f64())
    }
}

/// `module.json`'s `breaker`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Whether the breaker is on (`enabled`, default true).
    pub enabled: bool,
    /// Failures in a row that open it (`consecutiveFailures`, default 5).
    pub consecutive_failures: u32,
    /// The share of failed calls in the window that opens it (`errorRate`, default 0.5).
    pub error_rate: f64,
    /// Calls the window must hold before its error rate counts (`minCalls`, default 20).
    pub min_calls: u32,
    /// The window (`windowMs`, default 10 s).
    pub window: Duration,
    /// How long it stays open before probing (`cooldownMs`, default 5 s).
    pub cooldown: Duration,
    /// Probe calls let through at once when half-open (`halfOpenCalls`, default 1).
    pub half_open_calls: u32,
}

impl Default for BreakerPolicy {
    fn default() -> BreakerPolicy {
        BreakerPolicy {
            enabled: true,
            consecutive_failures: 5,
            error_rate: 0.5,
            min_calls: 20,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(5),
            half_open_calls: 1,
        }
    }
}
