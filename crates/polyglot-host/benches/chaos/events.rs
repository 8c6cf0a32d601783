//! What the host says happened: its `WatchEvents` stream, counted (workers exited and
//! why, breakers opened, fallback use), and every worker pid it announced, to look for
//! orphans once it has exited.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use tonic::transport::Channel;

/// The events, counted.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Worker exits by module and by cause (killed, broke the protocol, unhealthy, ...).
    pub exits: BTreeMap<String, u64>,
    /// Workers started (restarts and the new version's), by module.
    pub started: BTreeMap<String, u64>,
    /// Breaker transitions to open, by module.
    pub breaker_opened: BTreeMap<String, u64>,
    /// `fallback_used` events.
    pub fallback_used: u64,
    /// Every worker pid announced.
    pub pids: BTreeSet<u32>,
}

/// The watch, running.
pub struct Watch {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

/// A worker's end, in a word, from the host's reason.
fn cause(reason: &str) -> &'static str {
    if reason.contains("protocol violation") {
        "broke the protocol"
    } else if reason.contains("unhealthy") {
        "failed health checks"
    } else if reason.contains("SIGKILL") {
        "SIGKILL"
    } else {
        "other"
    }
}

impl Watch {
    /// Subscribes to every module's events; `initial` are the pids already running.
    ///
    /// # Errors
    /// The subscription is refused.
    pub async fn start(
        mut c: RuntimeClient<Channel>,
        initial: impl IntoIterator<Item = u32>,
    ) -> anyhow::Result<Watch> {
        let seen = Arc::new(Mutex::new(Seen {
            pids: initial.into_iter().collect(),
            ..Seen::default()
        }));
        let mut stream = c
            .watch_events(pb::WatchEventsRequest { modules: vec![] })
            .await?
            .into_inner();
        let out = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok(Some(e)) = stream.message().await {
                let mut s = out.lock().expect("seen");
                match e.kind {
                    Some(pb::event::Kind::WorkerStarted(w)) => {
                        s.pids.insert(w.pid);
                        *s.started.entry(e.module).or_default() += 1;
                    }
                    Some(pb::event::Kind::WorkerExited(w)) => {
                        let key = format!("{}: {}", e.module, cause(&w.reason));
                        *s.exits.entry(key).or_default() += 1;
                    }
                    Some(pb::event::Kind::BreakerChanged(b)) if b.to == "open" => {
                        *s.breaker_opened.entry(e.module).or_default() += 1;
                    }
                    Some(pb::event::Kind::FallbackUsed(_)) => s.fallback_used += 1,
                    _ => {}
                }
            }
        });
        Ok(Watch { seen, task })
    }

    /// Ends the watch; returns what it saw.
    pub fn stop(self) -> Seen {
        self.task.abort();
        let s = self.seen.lock().expect("seen").clone();
        s
    }
}
