//! `/metrics`: the Prometheus exporter of the runtime's metrics (`polyglot_core::telemetry`)
//! and the host's own, rendered into the HTTP handler (the exporter runs no listener of
//! its own).

use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use polyglot_core::telemetry::{self, CALL_DURATION, LATENCY_BUCKETS};
use polyglot_core::Runtime;

use crate::auth::Auth;

/// API calls refused for a missing or wrong API key, gRPC and HTTP (counter).
pub const API_KEY_REFUSALS: &str = "polyglot_api_key_refusals_total";

/// How often the exporter folds the latency samples recorded since into its histograms.
/// It does at every scrape too; this bounds the memory the samples take when nobody
/// scrapes (each is 8 bytes: a busy host records some hundred thousand a second).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A gauge not set for this long is dropped from the output. Every state gauge is set
/// again right before each scrape renders, so only those of modules and versions that
/// went away are older than this: a second is longer than any render takes.
const STATE_GAUGE_TTL: Duration = Duration::from_secs(1);

/// The installed exporter.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
}

impl Exporter {
    /// Installs the Prometheus recorder as the process's `metrics` recorder, describes
    /// the runtime's metrics, and starts the upkeep task. Call it before modules are
    /// loaded: a module version registers its metric handles at its first call.
    ///
    /// # Errors
    /// When a recorder is already installed.
    pub fn install() -> anyhow::Result<Exporter> {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(CALL_DURATION.into()), &LATENCY_BUCKETS)
            .context("the latency buckets")?
            .idle_timeout(MetricKindMask::GAUGE, Some(STATE_GAUGE_TTL))
            .install_recorder()
            .context("cannot install the metrics recorder")?;
        telemetry::describe();
        metrics::describe_counter!(
            API_KEY_REFUSALS,
            metrics::Unit::Count,
            "API calls refused for a missing or wrong API key."
        );
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        Ok(Exporter { handle })
    }

    /// The metrics in Prometheus' text format, with the runtime's state gauges as they
    /// are now.
    pub fn render(&self, runtime: &Runtime, auth: &Auth) -> String {
        runtime.record_state_metrics();
        metrics::counter!(API_KEY_REFUSALS)
            .absolute(auth.refused.load(std::sync::atomic::Ordering::Relaxed));
        self.handle.render()
    }
}
