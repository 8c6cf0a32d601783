//! Webhook notifications of deployment events: each event is POSTed as a JSON object
//! ([`deployments::event_json`]) to every configured URL, in order, with retries.
//!
//! A webhook never holds a deployment up. Events are copied off the runtime's broadcast
//! by one task that only queues them; each URL has its own sender task and a bounded
//! queue, so a slow or dead receiver delays only its own deliveries, and past
//! [`QUEUE`] waiting events it loses the newest ones (logged and counted), never memory
//! without bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polyglot_core::Runtime;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::deployments;

/// Events waiting per URL before new ones are dropped: a whole canary with holds and a
/// rollback is a few dozen.
pub const QUEUE: usize = 1024;

/// Attempts per event: the first and four retries.
pub const ATTEMPTS: u32 = 5;

/// The wait before the first retry; doubled for each next one (0.5, 1, 2, 4 s).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// How long one POST may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The webhooks of a host, running until dropped.
pub struct Webhooks {
    tasks: Vec<JoinHandle<()>>,
    /// Events dropped because a URL's queue was full, for all URLs.
    pub dropped: Arc<AtomicU64>,
    /// Events given up on after every attempt failed, for all URLs.
    pub failed: Arc<AtomicU64>,
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let (dropped, failed) = (
            self.dropped.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        if dropped + failed > 0 {
            tracing::warn!(
                dropped,
                failed,
                "webhooks: some deployment events were not delivered"
            );
        }
    }
}

/// Checks webhook URLs: absolute `http://` or `https://` URLs.
///
/// # Errors
/// Naming the URL and what is wrong with it.
pub fn parse_urls(urls: &[String]) -> anyhow::Result<Vec<reqwest::Url>> {
    urls.iter()
        .map(|u| parse_url(u).map_err(|e| anyhow::anyhow!("--webhook {e}")))
        .collect()
}

/// Checks one webhook URL (of `--webhook`, or of `webhooks` in the config file).
///
/// # Errors
/// Naming the URL and what is wrong with it.
pub fn parse_url(u: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(u).map_err(|e| format!("{u:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "{u:?}: the scheme is {other:?}; webhooks are http:// or https:// URLs"
        )),
    }
}

/// Starts delivering `runtime`'s deployment events to `urls`.
///
/// # Errors
/// When the HTTP client cannot be built (its TLS roots).
pub fn start(runtime: &Runtime, urls: Vec<reqwest::Url>) -> anyhow::Result<Webhooks> {
    let dropped = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    if urls.is_empty() {
        return Ok(Webhooks {
            tasks,
            dropped,
            failed,
        });
    }
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("polyglot-host/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the webhook HTTP client: {e}"))?;
    let mut queues = Vec::new();
    for url in urls {
        let (tx, rx) = mpsc::channel::<Arc<serde_json::Value>>(QUEUE);
        queues.push((url.clone(), tx));
        tasks.push(tokio::spawn(deliver(
            client.clone(),
            url,
            rx,
            failed.clone(),
        )));
    }
    let mut events = runtime.subscribe_deployments();
    let drops = dropped.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let e = match events.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    drops.fetch_add(n * queues.len() as u64, Ordering::Relaxed);
                    tracing::warn!(missed = n, "webhooks fell behind and missed events");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let body = Arc::new(deployments::event_json(
                &polyglot_core::api::deployment_event(&e),
            ));
            for (url, q) in &queues {
                if q.try_send(body.clone()).is_err() {
                    drops.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%url, module = %e.deployment, version = %e.version,
                        "a webhook's queue is full; this event is not sent to it");
                }
            }
        }
    }));
    Ok(Webhooks {
        tasks,
        dropped,
        failed,
    })
}

/// Sends each queued event to `url` in order, retrying with back-off.
async fn deliver(
    client: reqwest::Client,
    url: reqwest::Url,
    mut rx: mpsc::Receiver<Arc<serde_json::Value>>,
    failed: Arc<AtomicU64>,
) {
    while let Some(body) = rx.recv().await {
        let bytes = body.to_string();
        let kind = body["type"].as_str().unwrap_or_default().to_owned();
        let mut wait = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let sent = client
                .post(url.clone())
                .header("content-type", "application/json")
                .header("x-polyglot-event", &kind)
                .body(bytes.clone())
                .send()
                .await;
            let problem = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("it answered {}", r.status())),
                Err(e) => Some(polyglot_core::error_chain(&e)),
            };
            let Some(problem) = problem else { break };
            if attempt == ATTEMPTS {
                failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%url, event = %kind, attempts = ATTEMPTS, %problem,
                    "a webhook could not be delivered; giving up on this event");
            } else {
                tracing::debug!(%url, event = %kind, attempt, %problem, retry_in = ?wait,
                    "a webhook delivery failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_checked() {
        assert!(parse_urls(&["http://127.0.0.1:9/hook".into()]).is_ok());
        let e = parse_urls(&["ftp://x/y".into()]).unwrap_err().to_string();
        assert!(e.contains("\"ftp\""), "{e}");
        let e = parse_urls(&["not a url".into()]).unwrap_err().to_string();
        assert!(e.contains("is not a URL"), "{e}");
    }
}
