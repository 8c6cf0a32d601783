//! Time, injected: the [`Clock`] trait, the real [`SystemClock`] and the hand-driven
//! [`ManualClock`] that makes every stage, deadline and health window of a test
//! deterministic.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::hooks::BoxFuture;

/// Where a deployer reads the time and how it waits.
///
/// Two readings: a monotonic one ([`now`](Clock::now)) that every stage, deadline and
/// health bucket is measured with, and a wall-clock one ([`wall`](Clock::wall)) for
/// history, events and [scheduled](crate::Scheduled) activations.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time since the clock's origin. Never goes backwards.
    fn now(&self) -> Duration;

    /// The wall-clock time.
    fn wall(&self) -> SystemTime;

    /// Completes once [`now`](Clock::now) has moved on by `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()>;
}

/// The real clock: [`Instant`] since its creation, [`SystemTime::now`], and
/// `tokio::time::sleep` (so it needs a tokio runtime with the time driver to sleep).
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The wall-clock time at which a [`ManualClock::new`] starts: 2024-01-01T00:00:00Z, fixed
/// so that histories and events in tests are the same on every run.
pub const MANUAL_CLOCK_WALL_ORIGIN_MS: u64 = 1_704_067_200_000;

/// A clock that moves only when told to, for tests: [`advance`](ManualClock::advance)
/// moves it on and wakes every [`sleep`](Clock::sleep) that is due.
///
/// Clones share one time.
///
/// ```
/// use std::time::Duration;
/// use polyglot_hotswap::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    now: watch::Sender<Duration>,
    wall_origin: SystemTime,
}

impl ManualClock {
    /// A clock at zero whose wall time starts at [`MANUAL_CLOCK_WALL_ORIGIN_MS`].
    pub fn new() -> ManualClock {
        ManualClock::starting_at(UNIX_EPOCH + Duration::from_millis(MANUAL_CLOCK_WALL_ORIGIN_MS))
    }

    /// A clock at zero whose wall time starts at `wall`.
    pub fn starting_at(wall: SystemTime) -> ManualClock {
        ManualClock {
            inner: Arc::new(ManualInner {
                now: watch::channel(Duration::ZERO).0,
                wall_origin: wall,
            }),
        }
    }

    /// Moves the clock on by `by` and wakes the sleeps that are now due.
    pub fn advance(&self, by: Duration) {
        self.inner.now.send_modify(|now| *now += by);
    }
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.inner.now.borrow()
    }

    fn wall(&self) -> SystemTime {
        self.inner.wall_origin + self.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()> {
        let mut rx = self.inner.now.subscribe();
        let due = *rx.borrow_and_update() + duration;
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= due {
                    return;
                }
                if rx.changed().await.is_err() {
                    // Cannot happen while `self` is borrowed: the sender lives in it.
                    return std::future::pending().await;
                }
            }
        })
    }
}

/// Milliseconds since the Unix epoch of a wall-clock time (0 before the epoch).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleep_wakes_only_when_the_clock_reaches_its_deadline() {
        let clock = ManualClock::new();
        let c = clock.clone();
        let mut sleeping = tokio::spawn(async move { c.sleep(Duration::from_secs(10)).await });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleeping.is_finished());
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), &mut sleeping)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(unix_ms(clock.wall()), MANUAL_CLOCK_WALL_ORIGIN_MS + 10_000);
    }

    #[tokio::test]
    async fn system_clock_is_monotonic() {
        let c = SystemClock::new();
        let a = c.now();
        c.sleep(Duration::from_millis(2)).await;
        assert!(c.now() >= a + Duration::from_millis(2));
    }
}
