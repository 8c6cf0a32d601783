//! Health: what callers [record](crate::Deployer::record) per version (an [`Outcome`] and
//! a latency), kept in a sliding window of time buckets made of atomics, summarised as a
//! [`HealthSummary`] and judged against [`Thresholds`] into a [`Verdict`].

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How far back a version's health looks by default: a minute is long enough to hold the
/// default [`DEFAULT_MIN_CALLS`] at modest traffic and short enough that a version that
/// recovered is not judged by its past for long.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// How many buckets the window is cut into by default: 12 buckets of 5 s each, so the
/// window slides in 5 s steps and a stage's analysis starts within 5 s of the stage.
pub const DEFAULT_WINDOW_BUCKETS: usize = 12;

/// Calls needed before a verdict by default. Fewer is *inconclusive*, never a pass: 20
/// calls make a 5% error rate one failure, the smallest sample where the default rate
/// means something.
pub const DEFAULT_MIN_CALLS: u64 = 20;

/// The highest share of failed calls (errors and timeouts) a healthy version has, by
/// default: 5%.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.05;

/// The highest share of shadow answers that may differ from the primary's, by default:
/// 1%, room for answers that carry a timestamp or a random id.
pub const DEFAULT_MAX_MISMATCH_RATE: f64 = 0.01;

/// Latencies below this many microseconds have a bucket each; above, each power of two
/// is cut into this many buckets, so a reported percentile is at most 1/8 = 12.5% above
/// the true value.
const SUB_BUCKETS: u64 = 8;
/// Latencies are counted up to 2^36 µs (19 hours); longer ones count as that.
const MAX_EXPONENT: u64 = 35;
/// 8 exact buckets, then 8 per power of two from 2^3 to 2^35.
const LATENCY_BUCKETS: usize = (SUB_BUCKETS + (MAX_EXPONENT - 2) * SUB_BUCKETS) as usize;

/// How a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// It answered.
    Ok,
    /// It failed.
    Error,
    /// Its deadline passed. Counts as a failure in the error rate, and on its own against
    /// [`Thresholds::max_timeouts`].
    Timeout,
}

/// How a shadow call went, compared with the primary's answer to the same call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShadowOutcome {
    /// It answered the same as the primary.
    Match,
    /// It answered differently.
    Mismatch,
    /// It failed.
    Error,
    /// Its deadline passed.
    Timeout,
}

/// What a healthy version looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Thresholds {
    /// Calls in the window needed for a verdict; fewer is inconclusive (a zero here counts
    /// as one: no data is never a verdict).
    pub min_calls: u64,
    /// The highest share of failed calls (errors and timeouts), 0 to 1.
    pub max_error_rate: f64,
    /// The highest 99th percentile latency, if any.
    #[serde(rename = "maxP99Ms", with = "opt_ms", default)]
    pub max_p99: Option<Duration>,
    /// The most timeouts in the window, if any limit.
    #[serde(default)]
    pub max_timeouts: Option<u64>,
    /// The highest share of shadow answers differing from the primary's, 0 to 1.
    pub max_mismatch_rate: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            min_calls: DEFAULT_MIN_CALLS,
            max_error_rate: DEFAULT_MAX_ERROR_RATE,
            max_p99: None,
            max_timeouts: None,
            max_mismatch_rate: DEFAULT_MAX_MISMATCH_RATE,
        }
    }
}

impl Thresholds {
    /// With this `min_calls`.
    pub fn with_min_calls(mut self, n: u64) -> Thresholds {
        self.min_calls = n;
        self
    }

    /// With this `max_error_rate`.
    pub fn with_max_error_rate(mut self, rate: f64) -> Thresholds {
        self.max_error_rate = rate;
        self
    }

    /// With this `max_p99`.
    pub fn with_max_p99(mut self, p99: Duration) -> Thresholds {
        self.max_p99 = Some(p99);
        self
    }

    /// With this `max_timeouts`.
    pub fn with_max_timeouts(mut self, n: u64) -> Thresholds {
        self.max_timeouts = Some(n);
        self
    }

    /// With this `max_mismatch_rate`.
    pub fn with_max_mismatch_rate(mut self, rate: f64) -> Thresholds {
        self.max_mismatch_rate = rate;
        self
    }

    /// Judges a summary.
    ///
    /// Below `min_calls` the verdict is [`Verdict::Inconclusive`], unless the failures
    /// already seen would break a limit even if every call still missing from the minimum
    /// succeeded: then it is [`Verdict::Unhealthy`] at once. Too little data never passes.
    pub fn judge(&self, s: &HealthSummary) -> Verdict {
        let min = self.min_calls.max(1);
        let mut violations = Vec::new();
        if let Some(max) = self.max_timeouts {
            if s.timeouts > max {
                violations.push(Violation::Timeouts {
                    count: s.timeouts,
                    max,
                });
            }
        }
        let failed = s.errors + s.timeouts;
        let rate_broken = if s.calls >= min {
            s.error_rate > self.max_error_rate
        } else {
            failed as f64 > self.max_error_rate * min as f64
        };
        if rate_broken {
            violations.push(Violation::ErrorRate {
                failed,
                calls: s.calls,
                max_rate: self.max_error_rate,
            });
        }
        if let Some(max) = self.max_p99 {
            let max_us = max.as_micros() as u64;
            if s.calls >= min && s.p99_us > max_us {
                violations.push(Violation::P99 {
                    p99_us: s.p99_us,
                    max_us,
                });
            }
        }
        let mismatch_broken = if s.compared >= min {
            s.mismatches as f64 > self.max_mismatch_rate * s.compared as f64
        } else {
            s.mismatches as f64 > self.max_mismatch_rate * min as f64
        };
        if mismatch_broken {
            violations.push(Violation::MismatchRate {
                mismatches: s.mismatches,
                compared: s.compared,
                max_rate: self.max_mismatch_rate,
            });
        }
        if !violations.is_empty() {
            Verdict::Unhealthy { violations }
        } else if s.calls < min {
            Verdict::Inconclusive {
                calls: s.calls,
                needed: min,
            }
        } else {
            Verdict::Healthy
        }
    }
}

/// A judgement of a version's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum Verdict {
    /// Enough calls, every limit kept.
    Healthy,
    /// Too few calls to say: hold, never pass.
    Inconclusive {
        /// Calls seen.
        calls: u64,
        /// Calls needed.
        needed: u64,
    },
    /// A limit is broken.
    Unhealthy {
        /// Which, with the numbers.
        violations: Vec<Violation>,
    },
}

impl Verdict {
    /// True for [`Verdict::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, Verdict::Healthy)
    }

    /// True for [`Verdict::Unhealthy`].
    pub fn is_unhealthy(&self) -> bool {
        matches!(self, Verdict::Unhealthy { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Healthy => f.write_str("healthy"),
            Verdict::Inconclusive { calls, needed } => {
                write!(f, "inconclusive: {calls} of the {needed} calls needed")
            }
            Verdict::Unhealthy { violations } => {
                f.write_str("unhealthy: ")?;
                for (i, v) in violations.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
        }
    }
}

/// A broken limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "limit")]
pub enum Violation {
    /// Too many failed calls.
    ErrorRate {
        /// Errors and timeouts.
        failed: u64,
        /// Calls.
        calls: u64,
        /// The limit.
        max_rate: f64,
    },
    /// The 99th percentile latency is too high.
    P99 {
        /// It, in microseconds (an upper bound, at most 12.5% high).
        p99_us: u64,
        /// The limit.
        max_us: u64,
    },
    /// Too many timeouts.
    Timeouts {
        /// Timeouts in the window.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// Too many shadow answers differ from the primary's.
    MismatchRate {
        /// Differing answers.
        mismatches: u64,
        /// Compared answers.
        compared: u64,
        /// The limit.
        max_rate: f64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::ErrorRate {
                failed,
                calls,
                max_rate,
            } => write!(
                f,
                "{failed} of {calls} calls failed, over the limit of {:.1}%",
                max_rate * 100.0
            ),
            Violation::P99 { p99_us, max_us } => write!(
                f,
                "p99 latency {:.1}ms is over the limit of {:.1}ms",
                *p99_us as f64 / 1000.0,
                *max_us as f64 / 1000.0
            ),
            Violation::Timeouts { count, max } => {
                write!(f, "{count} timeouts, over the limit of {max}")
            }
            Violation::MismatchRate {
                mismatches,
                compared,
                max_rate,
            } => write!(
                f,
                "{mismatches} of {compared} shadow answers differed, over the limit of {:.1}%",
                max_rate * 100.0
            ),
        }
    }
}

/// A version's metrics over a time window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSummary {
    /// Calls recorded (shadow calls included, for a shadow version).
    pub calls: u64,
    /// Of which failed.
    pub errors: u64,
    /// Of which timed out.
    pub timeouts: u64,
    /// `(errors + timeouts) / calls`, 0 without calls.
    pub error_rate: f64,
    /// Median latency in microseconds (an upper bound, at most 12.5% high).
    pub p50_us: u64,
    /// 90th percentile latency in microseconds.
    pub p90_us: u64,
    /// 99th percentile latency in microseconds.
    pub p99_us: u64,
    /// Shadow answers compared with the primary's.
    pub compared: u64,
    /// Of which differed.
    pub mismatches: u64,
}

/// One version's sliding window: `buckets` slots of atomics, each holding one time
/// bucket's counts. Recording touches one slot; summarising reads all of them.
/// (How and what it costs: the `docs` module.)
pub(crate) struct HealthWindow {
    slots: Box<[Slot]>,
    bucket_nanos: u64,
}

struct Slot {
    /// The bucket index (time / bucket length) plus one; 0 for a slot never used.
    epoch: AtomicU64,
    calls: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    compared: AtomicU64,
    mismatches: AtomicU64,
    latency: Box<[AtomicU32]>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            epoch: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            compared: AtomicU64::new(0),
            mismatches: AtomicU64::new(0),
            latency: (0..LATENCY_BUCKETS).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn clear(&self) {
        for c in [
            &self.calls,
            &self.errors,
            &self.timeouts,
            &self.compared,
            &self.mismatches,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        for b in self.latency.iter() {
            b.store(0, Ordering::Relaxed);
        }
    }
}

impl HealthWindow {
    /// A window of `window` cut into `buckets` (at least one, each at least 1 ms).
    pub(crate) fn new(window: Duration, buckets: usize) -> HealthWindow {
        let buckets = buckets.max(1);
        let bucket_nanos = (window.as_nanos() as u64 / buckets as u64).max(1_000_000);
        HealthWindow {
            slots: (0..buckets).map(|_| Slot::new()).collect(),
            bucket_nanos,
        }
    }

    /// The slot for `now`, recycled first if it still holds an older bucket; `None` when
    /// a newer bucket already took it (the sample is older than the window).
    fn slot(&self, now: Duration) -> Option<&Slot> {
        let index = now.as_nanos() as u64 / self.bucket_nanos;
        let tag = index + 1;
        let slot = &self.slots[(index % self.slots.len() as u64) as usize];
        let seen = slot.epoch.load(Ordering::Acquire);
        if seen != tag {
            if seen > tag {
                return None;
            }
            // The winner clears the slot. A sample another thread adds between the swap
            // and the clear is lost: at most the few in flight at that instant, once per
            // bucket.
            if slot
                .epoch
                .compare_exchange(seen, tag, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                slot.clear();
            }
        }
        Some(slot)
    }

    /// Counts one call.
    pub(crate) fn record(&self, now: Duration, outcome: Outcome, latency: Duration) {
        let Some(slot) = self.slot(now) else { return };
        slot.calls.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Ok => {}
            Outcome::Error => {
                slot.errors.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Timeout => {
                slot.timeouts.fetch_add(1, Ordering::Relaxed);
            }
        }
        slot.latency[latency_bucket(latency.as_micros() as u64)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one shadow call and its comparison.
    pub(crate) fn record_shadow(&self, now: Duration, outcome: ShadowOutcome, latency: Duration) {
        let plain = match outcome {
            ShadowOutcome::Match | ShadowOutcome::Mismatch => Outcome::Ok,
            ShadowOutcome::Error => Outcome::Error,
            ShadowOutcome::Timeout => Outcome::Timeout,
        };
        self.record(now, plain, latency);
        if let Some(slot) = self.slot(now) {
            match outcome {
                ShadowOutcome::Match => {
                    slot.compared.fetch_add(1, Ordering::Relaxed);
                }
                ShadowOutcome::Mismatch => {
                    slot.compared.fetch_add(1, Ordering::Relaxed);
                    slot.mismatches.fetch_add(1, Ordering::Relaxed);
                }
                ShadowOutcome::Error | ShadowOutcome::Timeout => {}
            }
        }
    }

    /// The metrics of the buckets within the window that began no earlier than the bucket
    /// holding `since`.
    pub(crate) fn summary(&self, now: Duration, since: Duration) -> HealthSummary {
        let now_index = now.as_nanos() as u64 / self.bucket_nanos;
        let oldest = (now_index + 1).saturating_sub(self.slots.len() as u64);
        let lowest = oldest.max(since.as_nanos() as u64 / self.bucket_nanos);
        let mut s = HealthSummary::default();
        let mut latency = [0u64; LATENCY_BUCKETS];
        for slot in self.slots.iter() {
            let tag = slot.epoch.load(Ordering::Acquire);
            if tag == 0 || tag - 1 < lowest || tag - 1 > now_index {
                continue;
            }
            s.calls += slot.calls.load(Ordering::Relaxed);
            s.errors += slot.errors.load(Ordering::Relaxed);
            s.timeouts += slot.timeouts.load(Ordering::Relaxed);
            s.compared += slot.compared.load(Ordering::Relaxed);
            s.mismatches += slot.mismatches.load(Ordering::Relaxed);
            for (sum, b) in latency.iter_mut().zip(slot.latency.iter()) {
                *sum += b.load(Ordering::Relaxed) as u64;
            }
        }
        if s.calls > 0 {
            s.error_rate = (s.errors + s.timeouts) as f64 / s.calls as f64;
        }
        let counted: u64 = latency.iter().sum();
        s.p50_us = percentile(&latency, counted, 0.50);
        s.p90_us = percentile(&latency, counted, 0.90);
        s.p99_us = percentile(&latency, counted, 0.99);
        s
    }
}

/// The bucket of a latency in microseconds.
fn latency_bucket(us: u64) -> usize {
    if us < SUB_BUCKETS {
        return us as usize;
    }
    let exp = (63 - us.leading_zeros() as u64).min(MAX_EXPONENT);
    let us = us.min((1 << (MAX_EXPONENT + 1)) - 1);
    let sub = (us >> (exp - 3)) & (SUB_BUCKETS - 1);
    (SUB_BUCKETS + (exp - 3) * SUB_BUCKETS + sub) as usize
}

/// The largest latency in microseconds that falls in a bucket.
fn bucket_ceiling(bucket: usize) -> u64 {
    let b = bucket as u64;
    if b < SUB_BUCKETS {
        return b;
    }
    let exp = (b - SUB_BUCKETS) / SUB_BUCKETS + 3;
    let sub = (b - SUB_BUCKETS) % SUB_BUCKETS;
    ((SUB_BUCKETS + sub + 1) << (exp - 3)) - 1
}

/// The `q` quantile of a histogram holding `total` samples, as its bucket's ceiling.
fn percentile(histogram: &[u64], total: u64, q: f64) -> u64 {
    if total == 0 {
        return 0;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_ceiling(i);
        }
    }
    bucket_ceiling(histogram.len() - 1)
}

/// Serde for an optional [`Duration`] as whole milliseconds.
mod opt_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn latency_buckets_cover_every_value_within_an_eighth() {
        for us in (0..100_000u64).chain([1 << 30, (1 << 36) - 1, u64::MAX]) {
            let b = latency_bucket(us);
            assert!(b < LATENCY_BUCKETS, "{us} -> {b}");
            let ceiling = bucket_ceiling(b);
            let capped = us.min((1 << 36) - 1);
            assert!(ceiling >= capped, "{us}: ceiling {ceiling}");
            assert!(
                ceiling as f64 <= capped as f64 * 1.125 + 1.0,
                "{us}: ceiling {ceiling}"
            );
        }
    }

    #[test]
    fn percentiles_come_from_the_window() {
        let w = HealthWindow::new(Duration::from_secs(60), 12);
        let now = Duration::from_secs(100);
        for i in 1..=100u64 {
            w.record(now, Outcome::Ok, MS * i as u32);
        }
        let s = w.summary(now, Duration::ZERO);
        assert_eq!(s.calls, 100);
        let p50 = s.p50_us as f64 / 1000.0;
        let p99 = s.p99_us as f64 / 1000.0;
        assert!((50.0..=50.0 * 1.125).contains(&p50), "{p50}");
        assert!((99.0..=99.0 * 1.125).contains(&p99), "{p99}");
    }

    #[test]
    fn old_buckets_slide_out_of_the_window() {
        let w = HealthWindow::new(Duration::from_secs(60), 12);
        w.record(Duration::from_secs(1), Outcome::Error, MS);
        w.record(Duration::from_secs(30), Outcome::Ok, MS);
        let s = w.summary(Duration::from_secs(59), Duration::ZERO);
        assert_eq!((s.calls, s.errors), (2, 1));
        let s = w.summary(Duration::from_secs(61), Duration::ZERO);
        assert_eq!((s.calls, s.errors), (1, 0), "the first bucket slid out");
        // A slot reused by a later bucket forgets what it held.
        w.record(Duration::from_secs(62), Outcome::Timeout, MS);
        let s = w.summary(Duration::from_secs(62), Duration::ZERO);
        assert_eq!((s.calls, s.timeouts), (2, 1));
        // `since` cuts off older buckets.
        let s = w.summary(Duration::from_secs(62), Duration::from_secs(60));
        assert_eq!(s.calls, 1);
    }

    #[test]
    fn too_few_calls_is_inconclusive_never_healthy() {
        let t = Thresholds::default();
        let mut s = HealthSummary {
            calls: 19,
            ..Default::default()
        };
        assert_eq!(
            t.judge(&s),
            Verdict::Inconclusive {
                calls: 19,
                needed: 20
            }
        );
        s.calls = 0;
        assert!(!t.judge(&s).is_healthy());
        assert!(!t.clone().with_min_calls(0).judge(&s).is_healthy());
        s.calls = 20;
        assert!(t.judge(&s).is_healthy());
    }

    #[test]
    fn failures_that_already_break_the_minimum_sample_are_unhealthy_at_once() {
        let t = Thresholds::default(); // 5% of 20 calls = 1 failure allowed
        let one = HealthSummary {
            calls: 3,
            errors: 1,
            ..Default::default()
        };
        assert!(matches!(t.judge(&one), Verdict::Inconclusive { .. }));
        let two = HealthSummary {
            calls: 3,
            errors: 1,
            timeouts: 1,
            ..Default::default()
        };
        let v = t.judge(&two);
        assert!(v.is_unhealthy(), "{v}");
        assert!(v.to_string().contains("2 of 3 calls failed"), "{v}");
    }

    #[test]
    fn p99_timeouts_and_mismatches_are_judged() {
        let t = Thresholds::default()
            .with_max_p99(Duration::from_millis(100))
            .with_max_timeouts(2);
        let w = HealthWindow::new(Duration::from_secs(60), 12);
        let now = Duration::from_secs(5);
        for _ in 0..50 {
            w.record(now, Outcome::Ok, MS * 150);
        }
        for _ in 0..3 {
            w.record(now, Outcome::Timeout, MS);
        }
        let v = t.judge(&w.summary(now, Duration::ZERO));
        let Verdict::Unhealthy { violations } = &v else {
            panic!("{v}")
        };
        assert!(violations
            .iter()
            .any(|x| matches!(x, Violation::P99 { .. })));
        assert!(violations
            .iter()
            .any(|x| matches!(x, Violation::Timeouts { count: 3, max: 2 })));

        let w = HealthWindow::new(Duration::from_secs(60), 12);
        for i in 0..100 {
            let o = if i < 3 {
                ShadowOutcome::Mismatch
            } else {
                ShadowOutcome::Match
            };
            w.record_shadow(now, o, MS);
        }
        let s = w.summary(now, Duration::ZERO);
        assert_eq!((s.calls, s.compared, s.mismatches), (100, 100, 3));
        let v = Thresholds::default().judge(&s);
        assert!(
            v.to_string().contains("3 of 100 shadow answers differed"),
            "{v}"
        );
    }
}
