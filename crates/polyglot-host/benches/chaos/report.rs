//! The printed report: one column per phase, rows for every outcome and fault, the host's
//! memory and descriptors; the soak's series and drift; and the verdicts.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::events::Seen;
use crate::faults::Faults;
use crate::host::Exit;
use crate::load::Tally;
use crate::probe::Sample;

/// Everything a phase measured.
pub struct Phase {
    /// "with fallback", "without fallback", "soak".
    pub name: String,
    /// How long the load ran.
    pub ran: Duration,
    pub tally: Tally,
    pub faults: Faults,
    pub seen: Seen,
    /// The samples taken during the load.
    pub samples: Vec<Sample>,
    /// RSS (KiB) and own fds the growth is measured from (see `main.rs`).
    pub base_rss_kib: u64,
    pub base_own_fds: usize,
    /// How long the host took to have every worker back after the load, if it did.
    pub settled: Option<Duration>,
    /// The sample after that.
    pub last: Sample,
    /// From `/metrics`: retries made, retries the budget refused, worker restarts.
    pub retried: f64,
    pub budget_spent: f64,
    pub restarts: f64,
    pub exit: Exit,
    /// Why this phase fails; empty when it passes.
    pub failures: Vec<String>,
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i] as f64 / 1000.0
}

/// Prints the phases side by side as a Markdown table, then the details under it.
pub fn print(phases: &mut [Phase]) {
    for p in phases.iter_mut() {
        p.tally.latencies_us.sort_unstable();
    }
    let phases: &[Phase] = phases;
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Phase) -> String, phases: &[Phase]| {
        rows.push((name.to_owned(), phases.iter().map(f).collect()));
    };
    row(
        "load time, s",
        &|p| format!("{:.1}", p.ran.as_secs_f64()),
        phases,
    );
    row("calls", &|p| thousands(p.tally.calls), phases);
    row(
        "calls/s",
        &|p| thousands((p.tally.calls as f64 / p.ran.as_secs_f64()) as u64),
        phases,
    );
    row(
        "ok, served by the primary",
        &|p| thousands(p.tally.ok_primary),
        phases,
    );
    row(
        "ok, served by the fallback",
        &|p| thousands(p.tally.ok_fallback),
        phases,
    );
    let kinds: BTreeSet<String> = phases
        .iter()
        .flat_map(|p| p.tally.errors.keys().cloned())
        .filter(|k| k != "hung")
        .collect();
    for k in &kinds {
        let k2 = k.clone();
        row(
            &format!("error `{k}`"),
            &move |p| thousands(p.tally.errors.get(&k2).copied().unwrap_or(0)),
            phases,
        );
    }
    row(
        "hung (no end by deadline + 1 s)",
        &|p| thousands(p.tally.hung + p.faults.hung),
        phases,
    );
    row(
        "ended after the 2 s deadline, within 1 s",
        &|p| thousands(p.tally.late),
        phases,
    );
    row(
        "latency p50 / p99 / max, ms",
        &|p| {
            let l = &p.tally.latencies_us;
            format!(
                "{:.2} / {:.1} / {:.0}",
                percentile(l, 0.50),
                percentile(l, 0.99),
                l.last().copied().unwrap_or(0) as f64 / 1000.0
            )
        },
        phases,
    );
    row(
        "SIGKILLs (missed: none up)",
        &|p| format!("{} ({})", p.faults.kills, p.faults.kill_misses),
        phases,
    );
    row(
        "hangs (SIGSTOP)",
        &|p| p.faults.hangs.len().to_string(),
        phases,
    );
    row(
        "`garbage` calls: outcomes",
        &|p| {
            if p.faults.garbage.is_empty() {
                return "-".into();
            }
            p.faults
                .garbage
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        phases,
    );
    row(
        "deployment",
        &|p| p.faults.deployment.clone().unwrap_or_else(|| "-".into()),
        phases,
    );
    row(
        "worker exits seen (events)",
        &|p| {
            p.seen
                .exits
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        phases,
    );
    row(
        "breaker opened",
        &|p| {
            let s: Vec<String> = p
                .seen
                .breaker_opened
                .iter()
                .map(|(k, n)| format!("{n}x {k}"))
                .collect();
            if s.is_empty() {
                "0".into()
            } else {
                s.join(", ")
            }
        },
        phases,
    );
    row(
        "retries made / refused by the budget",
        &|p| format!("{:.0} / {:.0}", p.retried, p.budget_spent),
        phases,
    );
    row(
        "worker restarts (metrics)",
        &|p| format!("{:.0}", p.restarts),
        phases,
    );
    row(
        "host RSS MiB: min / max / last",
        &|p| {
            let r: Vec<u64> = p.samples.iter().map(|s| s.rss_kib).collect();
            format!(
                "{} / {} / {}",
                mib(r.iter().copied().min().unwrap_or(0)),
                mib(r.iter().copied().max().unwrap_or(0)),
                mib(p.last.rss_kib)
            )
        },
        phases,
    );
    row(
        "host RSS growth over warm-up max, MiB",
        &|p| {
            let max = p.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
            format!("{:+.1}", (max as f64 - p.base_rss_kib as f64) / 1024.0)
        },
        phases,
    );
    row(
        "host fds: min / max / last",
        &|p| {
            let f: Vec<usize> = p.samples.iter().map(|s| s.fds).collect();
            format!(
                "{} / {} / {}",
                f.iter().min().unwrap_or(&0),
                f.iter().max().unwrap_or(&0),
                p.last.fds
            )
        },
        phases,
    );
    row(
        "host's own fds (not worker pipes): warm-up / last",
        &|p| format!("{} / {}", p.base_own_fds, p.last.own_fds),
        phases,
    );
    row(
        "workers after the load (zombies)",
        &|p| format!("{} ({})", p.last.workers, p.last.zombies),
        phases,
    );
    row(
        "all workers back after the load in",
        &|p| match p.settled {
            Some(d) => format!("{:.1}s", d.as_secs_f64()),
            None => "not within 20 s".into(),
        },
        phases,
    );
    row(
        "host exit on SIGTERM (orphans)",
        &|p| {
            format!(
                "{} in {} ms ({})",
                p.exit.status,
                p.exit.took.as_millis(),
                p.exit.orphans.len()
            )
        },
        phases,
    );

    let header: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
    println!("\n| | {} |", header.join(" | "));
    println!("| --- |{}", " ---: |".repeat(phases.len()));
    for (name, cells) in rows {
        println!("| {name} | {} |", cells.join(" | "));
    }
    for p in phases.iter() {
        println!("\n{}:", p.name);
        for (kind, e) in &p.tally.examples {
            let slowest = p.tally.slowest_error_us.get(kind).copied().unwrap_or(0);
            println!(
                "  `{kind}` (slowest {:.0} ms), the first: {e}",
                slowest as f64 / 1000.0
            );
        }
        if !p.tally.errors_by_second.is_empty() {
            let by: Vec<String> = p
                .tally
                .errors_by_second
                .iter()
                .map(|(s, n)| format!("{s}s: {n}"))
                .collect();
            println!(
                "  failed calls by the second they started in: {}",
                by.join(", ")
            );
        }
        if let Some(at) = p.faults.garbage_at {
            println!("  `garbage` flood from {:.1}s", at.as_secs_f64());
        }
        if let Some(at) = p.faults.deploy_at {
            println!("  Deploy called at {:.1}s", at.as_secs_f64());
        }
        for h in &p.faults.hangs {
            println!("  hang {h}");
        }
        if !p.faults.deploy_events.is_empty() {
            println!("  deployment events: {}", p.faults.deploy_events.join(", "));
        }
        println!(
            "  answers by implementation and version: {}",
            p.tally
                .by_version
                .iter()
                .map(|(k, n)| format!("{k}: {}", thousands(*n)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// One line of the soak's series, printed as it is taken.
pub fn print_sample(s: &Sample, prev: Option<&Sample>) {
    if prev.is_none() {
        println!("\n| t, s | RSS MiB | fds | own fds | workers | calls/s since last |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    }
    let rate = prev.map_or(0.0, |p| {
        (s.calls - p.calls) as f64 / (s.t - p.t).as_secs_f64().max(1e-3)
    });
    println!(
        "| {:.0} | {} | {} | {} | {} | {} |",
        s.t.as_secs_f64(),
        mib(s.rss_kib),
        s.fds,
        s.own_fds,
        s.workers,
        thousands(rate as u64)
    );
}
