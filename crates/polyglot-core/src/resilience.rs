//! Resilience policies of a module version: retries of idempotent methods with
//! exponential back-off, jitter and a budget, and a circuit breaker.
//!
//! What is retried (`../shared/PITFALLS.md` item 6): only a method the manifest marks
//! idempotent, only when the attempt failed without an answer from the method itself: the
//! worker exited or its connection closed, the attempt's own deadline passed, or no worker
//! took the call. A method's error, an `Overloaded` refusal (retrying would add to the
//! load that caused it) and an open breaker are never retried. Every retry is taken from
//! a budget: over the last ten seconds, at most `budgetRatio` retries per call plus
//! `minRetriesPerSecond`, so a failing module cannot have its load multiplied.
//!
//! The breaker counts calls that timed out (never a method's own errors, nor the calls a
//! crashing worker fails at once, which its supervisor handles): it opens after
//! `consecutiveFailures` in a row, or when at least `minCalls` calls in the window failed
//! at `errorRate` or more. Open, the version takes no calls (they go to the fallback, or
//! fail as unavailable) until `cooldownMs` has passed; then `halfOpenCalls` probe calls go
//! through: a success closes it, a failure opens it again.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

pub use crate::policy::{BreakerPolicy, Idempotent, RetryPolicy};

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// A few probe calls go through; their outcome closes or reopens it.
    HalfOpen,
}

impl BreakerState {
    /// Its name in health reports and events: `closed`, `open`, `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// Its value in the `polyglot_breaker_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

/// How many buckets a window is cut into.
const BUCKETS: usize = 10;

/// Counts over a sliding window of [`BUCKETS`] buckets.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    /// Per bucket: its index since the epoch (`elapsed / bucket width`), and two counts.
    buckets: [(u64, u32, u32); BUCKETS],
}

impl Window {
    /// Adds to the current bucket (clearing it first if it is from an older turn).
    fn add(&mut self, now: u64, a: u32, b: u32) {
        let slot = &mut self.buckets[(now % BUCKETS as u64) as usize];
        if slot.0 != now {
            *slot = (now, 0, 0);
        }
        slot.1 += a;
        slot.2 += b;
    }

    /// The sums of both counts over the buckets still in the window.
    fn sums(&self, now: u64) -> (u64, u64) {
        self.buckets
            .iter()
            .filter(|(i, _, _)| now.saturating_sub(*i) < BUCKETS as u64 && *i <= now)
            .fold((0, 0), |(a, b), (_, x, y)| {
                (a + u64::from(*x), b + u64::from(*y))
            })
    }

    fn clear(&mut self) {
        *self = Window::default();
    }
}

/// The bucket index of `now` for a window of `width`.
fn bucket(epoch: Instant, now: Instant, width: Duration) -> u64 {
    let bucket = (width / BUCKETS as u32).max(Duration::from_millis(1));
    (now.saturating_duration_since(epoch).as_nanos() / bucket.as_nanos()) as u64
}

/// The retry budget of one module version: calls and retries over ten seconds.
pub(crate) struct RetryBudget {
    epoch: Instant,
    window: Mutex<Window>,
}

/// The retry budget's window.
const BUDGET_WINDOW: Duration = Duration::from_secs(10);

impl RetryBudget {
    pub(crate) fn new() -> RetryBudget {
        RetryBudget {
            epoch: Instant::now(),
            window: Mutex::new(Window::default()),
        }
    }

    /// Counts a call (its first attempt).
    pub(crate) fn deposit(&self) {
        let now = bucket(self.epoch, Instant::now(), BUDGET_WINDOW);
        self.window.lock().expect("budget lock").add(now, 1, 0);
    }

    /// Takes one retry from the budget, if it has one.
    pub(crate) fn withdraw(&self, policy: &RetryPolicy) -> bool {
        let now = bucket(self.epoch, Instant::now(), BUDGET_WINDOW);
        let mut w = self.window.lock().expect("budget lock");
        let (calls, retries) = w.sums(now);
        let allowed = policy.budget_ratio * calls as f64
            + f64::from(policy.min_retries_per_second) * BUDGET_WINDOW.as_secs_f64();
        if (retries + 1) as f64 > allowed {
            return false;
        }
        w.add(now, 0, 1);
        true
    }
}

/// Whether a call may go to a version, as its breaker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Closed (or off): go.
    Yes,
    /// Half-open: go, as one of the probes; its outcome must be recorded.
    Probe,
    /// Open, or half-open with its probes out: refused, with the time left to the next
    /// probe.
    No(Duration),
}

/// How an attempt ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An answer (a result or the method's own error).
    Answered,
    /// No answer within the deadline.
    Failed,
    /// Neither: the worker exited, no worker took it, refused as overloaded. Counts for
    /// nothing.
    Neutral,
}

/// A state change to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
}

struct BreakerInner {
    state: BreakerState,
    consecutive: u32,
    /// Calls and failures.
    window: Window,
    opened_at: Instant,
    /// Probe calls out, and when the last one was let through.
    probes: u32,
    probe_at: Instant,
    /// Why it last opened.
    reason: String,
}

/// The circuit breaker of one module version.
pub(crate) struct Breaker {
    epoch: Instant,
    inner: Mutex<BreakerInner>,
}

impl Breaker {
    pub(crate) fn new() -> Breaker {
        let now = Instant::now();
        Breaker {
            epoch: now,
            inner: Mutex::new(BreakerInner {
                state: BreakerState::Closed,
                consecutive: 0,
                window: Window::default(),
                opened_at: now,
                probes: 0,
                probe_at: now,
                reason: String::new(),
            }),
        }
    }

    /// Its state now, and why it last opened (empty if never).
    pub(crate) fn state(&self) -> (BreakerState, String) {
        let b = self.inner.lock().expect("breaker lock");
        (b.state, b.reason.clone())
    }

    /// Whether a call may go; moves an open breaker whose cool-down is over to half-open.
    pub(crate) fn admit(&self, policy: &BreakerPolicy) -> (Admit, Option<Transition>) {
        if !policy.enabled {
            return (Admit::Yes, None);
        }
        let mut b = self.inner.lock().expect("breaker lock");
        match b.state {
            BreakerState::Closed => (Admit::Yes, None),
            BreakerState::Open => {
                let open_for = b.opened_at.elapsed();
                if open_for < policy.cooldown {
                    return (Admit::No(policy.cooldown - open_for), None);
                }
                b.state = BreakerState::HalfOpen;
                b.probes = 1;
                b.probe_at = Instant::now();
                let t = Transition {
                    from: BreakerState::Open,
                    to: BreakerState::HalfOpen,
                };
                (Admit::Probe, Some(t))
            }
            BreakerState::HalfOpen => {
                let since = b.probe_at.elapsed();
                if b.probes < policy.half_open_calls.max(1) {
                    b.probes += 1;
                } else if since >= policy.cooldown {
                    // The probes out for a whole cool-down were given up by their callers
                    // (a call cancelled, its future dropped) and will never be recorded:
                    // let a new one through rather than stay half-open for ever.
                    b.probes = 1;
                } else {
                    return (Admit::No(policy.cooldown - since), None);
                }
                b.probe_at = Instant::now();
                (Admit::Probe, None)
            }
        }
    }

    /// Records how an admitted call ended; says if the state changed.
    pub(crate) fn record(
        &self,
        policy: &BreakerPolicy,
        admit: Admit,
        outcome: Outcome,
    ) -> Option<Transition> {
        if !policy.enabled {
            return None;
        }
        let now = Instant::now();
        let mut b = self.inner.lock().expect("breaker lock");
        if admit == Admit::Probe {
            b.probes = b.probes.saturating_sub(1);
            if b.state != BreakerState::HalfOpen {
                return None;
            }
            return match outcome {
                Outcome::Answered => {
                    b.state = BreakerState::Closed;
                    b.consecutive = 0;
                    b.window.clear();
                    Some(Transition {
                        from: BreakerState::HalfOpen,
                        to: BreakerState::Closed,
                    })
                }
                Outcome::Failed => {
                    b.state = BreakerState::Open;
                    b.opened_at = now;
                    b.reason = "a probe call timed out while half-open".into();
                    Some(Transition {
                        from: BreakerState::HalfOpen,
                        to: BreakerState::Open,
                    })
                }
                Outcome::Neutral => None,
            };
        }
        if b.state != BreakerState::Closed {
            // An answer to a call admitted before it opened.
            return None;
        }
        let i = bucket(self.epoch, now, policy.window);
        match outcome {
            Outcome::Answered => {
                b.consecutive = 0;
                b.window.add(i, 1, 0);
                None
            }
            Outcome::Neutral => None,
            Outcome::Failed => {
                b.consecutive += 1;
                b.window.add(i, 1, 1);
                let (calls, failed) = b.window.sums(i);
                let reason = if b.consecutive >= policy.consecutive_failures {
                    format!("{} calls in a row timed out", b.consecutive)
                } else if calls >= u64::from(policy.min_calls)
                    && failed as f64 >= policy.error_rate * calls as f64
                {
                    format!(
                        "{failed} of the last {calls} calls timed out (within {})",
                        humantime::format_duration(policy.window)
                    )
                } else {
                    return None;
                };
                b.state = BreakerState::Open;
                b.opened_at = now;
                b.reason = reason;
                b.consecutive = 0;
                b.window.clear();
                Some(Transition {
                    from: BreakerState::Closed,
                    to: BreakerState::Open,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            cooldown: Duration::from_millis(50),
            ..BreakerPolicy::default()
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_an_answer_resets_the_count() {
        let (p, b) = (policy(), Breaker::new());
        for _ in 0..4 {
            assert_eq!(b.record(&p, Admit::Yes, Outcome::Failed), None);
        }
        assert_eq!(b.record(&p, Admit::Yes, Outcome::Answered), None);
        for _ in 0..4 {
            assert_eq!(b.record(&p, Admit::Yes, Outcome::Failed), None);
        }
        let t = b.record(&p, Admit::Yes, Outcome::Failed).unwrap();
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert_eq!(b.state().1, "5 calls in a row timed out");
        assert!(matches!(b.admit(&p).0, Admit::No(left) if left <= p.cooldown));
    }

    #[test]
    fn opens_on_the_error_rate_once_the_window_has_enough_calls() {
        let (p, b) = (policy(), Breaker::new());
        // Alternating: never 5 in a row, 50% over 20 calls.
        for i in 0..19 {
            let o = if i % 2 == 0 {
                Outcome::Answered
            } else {
                Outcome::Failed
            };
            assert_eq!(b.record(&p, Admit::Yes, o), None, "call {i}");
        }
        assert!(b.record(&p, Admit::Yes, Outcome::Failed).is_some());
        assert!(
            b.state().1.starts_with("10 of the last 20 calls timed out"),
            "{}",
            b.state().1
        );
    }

    #[test]
    fn neutral_outcomes_and_method_errors_never_open_it() {
        let (p, b) = (policy(), Breaker::new());
        for _ in 0..100 {
            assert_eq!(b.record(&p, Admit::Yes, Outcome::Neutral), None);
        }
        assert_eq!(b.state().0, BreakerState::Closed);
    }

    #[tokio::test]
    async fn half_open_lets_probes_through_and_their_outcome_decides() {
        let p = BreakerPolicy {
            consecutive_failures: 1,
            ..policy()
        };
        let b = Breaker::new();
        b.record(&p, Admit::Yes, Outcome::Failed).unwrap();
        assert!(matches!(b.admit(&p).0, Admit::No(_)));
        tokio::time::sleep(p.cooldown).await;
        let (admit, t) = b.admit(&p);
        assert_eq!(admit, Admit::Probe);
        assert_eq!(t.unwrap().to, BreakerState::HalfOpen);
        // One probe at a time.
        assert!(matches!(b.admit(&p).0, Admit::No(left) if left <= p.cooldown));
        // The probe fails: open again, for a whole cool-down.
        let t = b.record(&p, admit, Outcome::Failed).unwrap();
        assert_eq!(t.to, BreakerState::Open);
        assert!(matches!(b.admit(&p).0, Admit::No(_)));
        tokio::time::sleep(p.cooldown).await;
        let (admit, _) = b.admit(&p);
        let t = b.record(&p, admit, Outcome::Answered).unwrap();
        assert_eq!(
            (t.from, t.to),
            (BreakerState::HalfOpen, BreakerState::Closed)
        );
        assert_eq!(b.admit(&p).0, Admit::Yes);
    }

    #[tokio::test]
    async fn a_probe_never_recorded_is_replaced_after_a_cool_down() {
        let p = BreakerPolicy {
            consecutive_failures: 1,
            ..policy()
        };
        let b = Breaker::new();
        b.record(&p, Admit::Yes, Outcome::Failed).unwrap();
        tokio::time::sleep(p.cooldown).await;
        // A probe goes out, and its caller gives up: nothing is recorded.
        assert_eq!(b.admit(&p).0, Admit::Probe);
        assert!(matches!(b.admit(&p).0, Admit::No(_)));
        tokio::time::sleep(p.cooldown).await;
        let (admit, _) = b.admit(&p);
        assert_eq!(admit, Admit::Probe, "a new probe after a cool-down");
        let t = b.record(&p, admit, Outcome::Answered).unwrap();
        assert_eq!(t.to, BreakerState::Closed);
    }

    #[test]
    fn a_disabled_breaker_admits_everything() {
        let p = BreakerPolicy {
            enabled: false,
            consecutive_failures: 1,
            ..policy()
        };
        let b = Breaker::new();
        for _ in 0..10 {
            assert_eq!(b.record(&p, Admit::Yes, Outcome::Failed), None);
            assert_eq!(b.admit(&p).0, Admit::Yes);
        }
    }

    #[test]
    fn the_budget_allows_its_ratio_of_calls_plus_the_minimum() {
        let p = RetryPolicy {
            budget_ratio: 0.5,
            min_retries_per_second: 0,
            ..RetryPolicy::default()
        };
        let budget = RetryBudget::new();
        assert!(!budget.withdraw(&p), "no calls, no minimum: no retry");
        for _ in 0..10 {
            budget.deposit();
        }
        let granted = (0..20).filter(|_| budget.withdraw(&p)).count();
        assert_eq!(granted, 5);
        let p = RetryPolicy {
            budget_ratio: 0.0,
            min_retries_per_second: 1,
            ..RetryPolicy::default()
        };
        let budget = RetryBudget::new();
        let granted = (0..100).filter(|_| budget.withdraw(&p)).count();
        assert_eq!(granted, 10, "one a second over the ten-second window");
    }

    #[test]
    fn back_off_doubles_up_to_its_cap_with_full_jitter() {
        let p = RetryPolicy {
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(35),
            ..RetryPolicy::default()
        };
        for (retry, cap) in [(1, 10), (2, 20), (3, 35), (10, 35), (40, 35)] {
            let waits: Vec<Duration> = (0..200).map(|_| p.backoff(retry)).collect();
            let max = *waits.iter().max().unwrap();
            assert!(max <= Duration::from_millis(cap), "retry {retry}: {max:?}");
            assert!(
                max > Duration::from_millis(cap) / 2,
                "retry {retry}: jitter spreads up to the cap"
            );
            assert!(waits.iter().any(|w| *w < Duration::from_millis(cap) / 2));
        }
    }

    #[test]
    fn idempotent_lists_and_star() {
        assert!(!Idempotent::None.allows("a"));
        assert!(Idempotent::All.allows("a"));
        let l = Idempotent::Methods(vec!["a".into()]);
        assert!(l.allows("a") && !l.allows("b"));
    }
}
