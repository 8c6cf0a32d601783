//! The load: callers keeping a fixed number of calls in flight through the host's gRPC
//! API (`echo` and `add` with small params, each with its deadline), and the tally of
//! every call's outcome.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::host::PRIMARY;

/// Each call's deadline (`timeout_ms` of the request).
pub const DEADLINE: Duration = Duration::from_secs(2);
/// How long after its deadline a call may still end before it counts as hung. The host
/// answers a call that ran out of time at its deadline; a second covers a busy two-core
/// machine scheduling the answer (in practice it comes within a few ms).
pub const MARGIN: Duration = Duration::from_secs(1);
/// Error kinds an `ErrorDetail` may carry (`runtime.proto`). Anything else is untyped.
const KINDS: &[&str] = &[
    "module_not_found",
    "method_not_found",
    "timeout",
    "worker_exited",
    "remote",
    "frame_too_large",
    "overloaded",
    "unavailable",
    "fallback_failed",
    "shutting_down",
    "invalid_argument",
];

/// How calls ended.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Calls made.
    pub calls: u64,
    /// Answered by the primary with the right result.
    pub ok_primary: u64,
    /// Answered by a fallback with the right result.
    pub ok_fallback: u64,
    /// Answered with a wrong result.
    pub wrong: u64,
    /// Failed, by the kind in their `ErrorDetail` (`untyped <code>` without one).
    pub errors: BTreeMap<String, u64>,
    /// The first message of each kind, for the report.
    pub examples: BTreeMap<String, String>,
    /// Ended (answer or error) after the deadline but within the margin.
    pub late: u64,
    /// Did not end within deadline + margin.
    pub hung: u64,
    /// Answers by version.
    pub by_version: BTreeMap<String, u64>,
    /// Every call's latency, µs.
    pub latencies_us: Vec<u32>,
    /// The longest time a call took to fail, by kind, µs.
    pub slowest_error_us: BTreeMap<String, u32>,
    /// Failed calls by the second of the run they started in, to line them up with the
    /// faults.
    pub errors_by_second: BTreeMap<u64, u64>,
}

impl Tally {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: Tally) {
        self.calls += other.calls;
        self.ok_primary += other.ok_primary;
        self.ok_fallback += other.ok_fallback;
        self.wrong += other.wrong;
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        for (k, e) in other.examples {
            self.examples.entry(k).or_insert(e);
        }
        self.late += other.late;
        self.hung += other.hung;
        for (k, n) in other.by_version {
            *self.by_version.entry(k).or_default() += n;
        }
        self.latencies_us.extend(other.latencies_us);
        for (k, us) in other.slowest_error_us {
            let e = self.slowest_error_us.entry(k).or_default();
            *e = (*e).max(us);
        }
        for (k, n) in other.errors_by_second {
            *self.errors_by_second.entry(k).or_default() += n;
        }
    }

    /// Calls that did not end with the right answer.
    pub fn failed(&self) -> u64 {
        self.calls - self.ok_primary - self.ok_fallback
    }

    /// Errors without an `ErrorDetail`, or with a kind the API does not define.
    pub fn untyped(&self) -> u64 {
        self.errors
            .iter()
            .filter(|(k, _)| !KINDS.contains(&k.as_str()))
            .map(|(_, n)| n)
            .sum()
    }

    /// Records how a call that started at `at` (since the start of the run) and took
    /// `took` ended (`None`: it did not within the margin).
    pub fn record(
        &mut self,
        at: Duration,
        took: Duration,
        outcome: Option<Result<pb::CallResponse, tonic::Status>>,
        expect: &serde_json::Value,
    ) {
        self.calls += 1;
        let us = took.as_micros().min(u32::MAX as u128) as u32;
        self.latencies_us.push(us);
        if took > DEADLINE && took <= DEADLINE + MARGIN {
            self.late += 1;
        }
        match outcome {
            None => {
                self.hung += 1;
                self.error(
                    "hung",
                    at,
                    us,
                    format!("no answer within {:?}", DEADLINE + MARGIN),
                );
            }
            Some(Ok(r)) => {
                let got: Option<serde_json::Value> = serde_json::from_slice(&r.result).ok();
                if got.as_ref() != Some(expect) {
                    self.wrong += 1;
                    self.error(
                        "wrong answer",
                        at,
                        us,
                        format!(
                            "expected {expect}, got {}",
                            String::from_utf8_lossy(&r.result)
                        ),
                    );
                } else if r.fallback {
                    self.ok_fallback += 1;
                } else {
                    self.ok_primary += 1;
                }
                *self
                    .by_version
                    .entry(format!("{} {}", r.served_by, r.version))
                    .or_default() += 1;
            }
            Some(Err(s)) => {
                let (kind, text) = describe(&s);
                self.error(&kind, at, us, text);
            }
        }
    }

    fn error(&mut self, kind: &str, at: Duration, us: u32, example: String) {
        *self.errors.entry(kind.to_owned()).or_default() += 1;
        *self.errors_by_second.entry(at.as_secs()).or_default() += 1;
        let e = self.slowest_error_us.entry(kind.to_owned()).or_default();
        *e = (*e).max(us);
        self.examples.entry(kind.to_owned()).or_insert(example);
    }
}

/// An error status's kind (its `ErrorDetail`'s, or `untyped CODE`) and a line saying it.
pub fn describe(s: &tonic::Status) -> (String, String) {
    match polyglot_proto::error_detail(s) {
        Some(d) => {
            let causes: Vec<String> = d
                .causes
                .iter()
                .map(|c| format!("{}: {}", c.implementation, c.reason))
                .collect();
            let mut text = format!("{:?}: {}", s.code(), s.message());
            if !causes.is_empty() {
                text.push_str(&format!(" (causes: {})", causes.join("; ")));
            }
            (d.kind, text)
        }
        None => (
            format!("untyped {:?}", s.code()),
            format!("{:?}: {}", s.code(), s.message()),
        ),
    }
}

/// A call of `method` to the primary with JSON `params`, within [`DEADLINE`].
pub fn request(method: &str, params: serde_json::Value) -> pb::CallRequest {
    pb::CallRequest {
        module: PRIMARY.into(),
        method: method.into(),
        params: serde_json::to_vec(&params).expect("JSON params"),
        codec: pb::Codec::Json as i32,
        timeout_ms: Some(DEADLINE.as_millis() as u64),
        routing_key: String::new(),
        max_attempts: None,
    }
}

/// Runs one call, bounded by deadline + margin on the client's side: `None` if it did not
/// end by then (the call is dropped, which cancels it).
pub async fn call(
    c: &mut RuntimeClient<Channel>,
    req: pb::CallRequest,
    deadline: Duration,
) -> (Duration, Option<Result<pb::CallResponse, tonic::Status>>) {
    let t = Instant::now();
    let r = tokio::time::timeout(deadline + MARGIN, c.call(req)).await;
    (t.elapsed(), r.ok().map(|r| r.map(|r| r.into_inner())))
}

/// Keeps `in_flight` calls going on `channel` until `until`; counts each answered call in
/// `answered` as it ends.
pub async fn run(
    channel: Channel,
    in_flight: usize,
    t0: Instant,
    until: Instant,
    answered: Arc<AtomicU64>,
) -> Tally {
    let tasks: Vec<_> = (0..in_flight)
        .map(|i| {
            let mut c = RuntimeClient::new(channel.clone());
            let answered = answered.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut n: u64 = 0;
                while Instant::now() < until {
                    let (req, expect) = if n.is_multiple_of(2) {
                        let s = format!("c{i}-{n}");
                        (
                            request("echo", serde_json::json!([s])),
                            serde_json::json!(s),
                        )
                    } else {
                        (
                            request("add", serde_json::json!([n, i])),
                            serde_json::json!(n + i as u64),
                        )
                    };
                    let at = t0.elapsed();
                    let (took, outcome) = call(&mut c, req, DEADLINE).await;
                    tally.record(at, took, outcome, &expect);
                    answered.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        all.merge(t.await.expect("a caller task"));
    }
    all
}
