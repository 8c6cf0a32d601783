//! The deployment commands against a running host: `deploy` (with a live progress
//! display), `rollback`, `status`, `history`, and `advance` / `pause` / `resume` /
//! `abort` / `split` for a deployment in progress.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand, ValueEnum};
use polyglot_core::api::{
    rfc3339, DEFAULT_AB_DEADLINE, DEFAULT_GRACE, DEFAULT_SHADOW_DURATION, DEFAULT_STAGE_DURATION,
};
use polyglot_proto::v1 as pb;

use crate::client::{describe, Client, Control};
use crate::deployments::outcome;
use crate::table;

/// The host the deployment commands talk to.
#[derive(Args, Clone)]
pub struct HostArgs {
    /// The running host's gRPC API.
    #[arg(
        long,
        value_name = "URL",
        env = "POLYGLOT_CONNECT",
        default_value = "http://127.0.0.1:50051"
    )]
    connect: String,
}

/// The deployment commands.
#[derive(Subcommand)]
pub enum DeployCommand {
    /// Deploy a new version of a module to a running host by a strategy, and follow the
    /// rollout until it succeeds (exit 0), fails or is rolled back (exit 1).
    Deploy(Box<DeployArgs>),
    /// Roll a module back: the deployment in progress, or the active version, to the
    /// last version known healthy (or --to VERSION).
    Rollback {
        /// The module.
        module: String,
        /// The version to go back to.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Show each module's active version, the deployment in progress and its traffic.
    Status {
        /// Only this module.
        module: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Show a module's versions: state, strategy, when, health, who and why.
    History {
        /// The module.
        module: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Move a deployment on now (the next canary stage, B of an A/B test, a shadow);
    /// its analysis must have passed.
    Advance {
        /// The module.
        module: String,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Pause a deployment: it neither advances nor runs into its deadlines.
    Pause {
        /// The module.
        module: String,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Resume a paused deployment.
    Resume {
        /// The module.
        module: String,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Abort a deployment: the traffic goes back to the version active before it.
    Abort {
        /// The module.
        module: String,
        /// Why (kept in the history).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Change the split of an A/B test: B gets PERCENT of the routing keys.
    Split {
        /// The module.
        module: String,
        /// B's share, 1 to 99.
        percent: u32,
        #[command(flatten)]
        host: HostArgs,
    },
}

/// How a deployment moves traffic.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// All traffic at once after the checks.
    Immediate,
    /// All traffic at once; the old version stands by for --grace.
    BlueGreen,
    /// Instances replaced in batches (--replicas, --max-surge, --max-unavailable).
    Rolling,
    /// Traffic in stages (--stages, --stage-duration), each judged healthy first.
    Canary,
    /// Routing keys split between the active version and the new one (--split).
    AbTest,
    /// The new version gets copies of the calls for --duration, then takes over.
    Shadow,
}

/// `deploy`'s arguments.
#[derive(Args)]
pub struct DeployArgs {
    /// The module.
    module: String,
    /// The new version's folder, holding its module.json (read by the host).
    #[arg(long, value_name = "DIR")]
    path: PathBuf,
    /// How traffic moves to the new version.
    #[arg(long, value_enum)]
    strategy: StrategyArg,
    /// Canary: the new version's share of traffic at each stage (e.g. 5,25,50,100).
    #[arg(long, value_delimiter = ',', value_name = "PERCENTS")]
    stages: Vec<u32>,
    /// Canary: how long each stage runs before it may advance (default 30s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    stage_duration: Option<Duration>,
    /// Canary, shadow: wait for `advance` once the analysis passed.
    #[arg(long)]
    manual: bool,
    /// Blue-green: how long the old version stands by (default 30s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    grace: Option<Duration>,
    /// Rolling: instances wanted (default: the version's `instances`).
    #[arg(long, value_name = "N")]
    replicas: Option<u32>,
    /// Rolling: instances above --replicas allowed during the update (2 or 25%).
    #[arg(long, value_name = "N|PCT")]
    max_surge: Option<String>,
    /// Rolling: instances of --replicas that may be unready (2 or 25%).
    #[arg(long, value_name = "N|PCT")]
    max_unavailable: Option<String>,
    /// A/B test: the new version's share of the routing keys, 1 to 99.
    #[arg(long, value_name = "PERCENT")]
    split: Option<u32>,
    /// Shadow: how long the new version gets copies before it may take over (default
    /// 60s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    duration: Option<Duration>,
    /// How long the deployment may wait for a passing verdict before it rolls back
    /// (blue-green: after the switch; canary: per stage; shadow: in all; rolling: without
    /// progress; A/B: until A is kept; default 1h for A/B, else the phase plus 10m).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    deadline: Option<Duration>,
    /// Start at this time: RFC 3339 (2026-11-23T22:00:00Z) or from now (+10m).
    #[arg(long, value_name = "TIME", value_parser = time)]
    at: Option<u64>,
    /// Who deploys (default: $USER).
    #[arg(long)]
    by: Option<String>,
    /// Why (kept in the history).
    #[arg(long, default_value = "")]
    why: String,
    /// Return once the rollout started instead of following it.
    #[arg(long)]
    detach: bool,
    /// How often the progress line is printed while following.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "5s")]
    interval: Duration,
    #[command(flatten)]
    host: HostArgs,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 30s, 5m, 1h30m)"))
}

fn time(s: &str) -> Result<u64, String> {
    let at = match s.strip_prefix('+') {
        Some(d) => SystemTime::now() + duration(d)?,
        None => humantime::parse_rfc3339_weak(s)
            .map_err(|e| format!("{e} (e.g. 2026-11-23T22:00:00Z, or +10m from now)"))?,
    };
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .map_err(|_| "it is before 1970".into())
}

impl DeployArgs {
    /// The request's strategy, refusing flags that do not apply to it.
    fn strategy(&self) -> anyhow::Result<pb::Strategy> {
        use pb::strategy::Kind;
        use StrategyArg as S;
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis() as u64);
        let flags: [(&str, bool, &[StrategyArg]); 10] = [
            ("--stages", !self.stages.is_empty(), &[S::Canary]),
            (
                "--stage-duration",
                self.stage_duration.is_some(),
                &[S::Canary],
            ),
            ("--manual", self.manual, &[S::Canary, S::Shadow]),
            ("--grace", self.grace.is_some(), &[S::BlueGreen]),
            ("--replicas", self.replicas.is_some(), &[S::Rolling]),
            ("--max-surge", self.max_surge.is_some(), &[S::Rolling]),
            (
                "--max-unavailable",
                self.max_unavailable.is_some(),
                &[S::Rolling],
            ),
            ("--split", self.split.is_some(), &[S::AbTest]),
            ("--duration", self.duration.is_some(), &[S::Shadow]),
            (
                "--deadline",
                self.deadline.is_some(),
                &[S::BlueGreen, S::Rolling, S::Canary, S::AbTest, S::Shadow],
            ),
        ];
        for (flag, set, applies) in flags {
            if set && !applies.contains(&self.strategy) {
                let names: Vec<&str> = applies.iter().map(|s| strategy_flag(*s)).collect();
                anyhow::bail!(
                    "{flag} is for --strategy {}, not {}",
                    names.join(" or "),
                    strategy_flag(self.strategy)
                );
            }
        }
        let kind = match self.strategy {
            S::Immediate => Kind::Immediate(pb::Immediate {}),
            S::BlueGreen => Kind::BlueGreen(pb::BlueGreen {
                grace_ms: self.grace.unwrap_or(DEFAULT_GRACE).as_millis() as u64,
                deadline_ms: ms(self.deadline),
            }),
            S::Rolling => Kind::Rolling(pb::Rolling {
                replicas: self.replicas.unwrap_or(0),
                max_surge: self.max_surge.clone().unwrap_or_default(),
                max_unavailable: self.max_unavailable.clone().unwrap_or_default(),
                progress_deadline_ms: ms(self.deadline),
            }),
            S::Canary => {
                if self.stages.is_empty() {
                    anyhow::bail!(
                        "--strategy canary needs --stages, the new version's share of traffic \
                         at each stage (e.g. --stages 5,25,50,100)"
                    );
                }
                Kind::Canary(pb::Canary {
                    percents: self.stages.clone(),
                    stage_duration_ms: self
                        .stage_duration
                        .unwrap_or(DEFAULT_STAGE_DURATION)
                        .as_millis() as u64,
                    manual: self.manual,
                    stage_deadline_ms: ms(self.deadline),
                })
            }
            S::AbTest => Kind::AbTest(pb::AbTest {
                percent_b: self.split.ok_or_else(|| {
                    anyhow::anyhow!(
                        "--strategy ab-test needs --split, the new version's share of the \
                         routing keys (1 to 99)"
                    )
                })?,
                deadline_ms: self.deadline.unwrap_or(DEFAULT_AB_DEADLINE).as_millis() as u64,
            }),
            S::Shadow => Kind::Shadow(pb::Shadow {
                duration_ms: self.duration.unwrap_or(DEFAULT_SHADOW_DURATION).as_millis() as u64,
                manual: self.manual,
                deadline_ms: ms(self.deadline),
            }),
        };
        Ok(pb::Strategy {
            kind: Some(kind),
            scheduled_at_ms: self.at,
        })
    }
}

fn strategy_flag(s: StrategyArg) -> &'static str {
    match s {
        StrategyArg::Immediate => "immediate",
        StrategyArg::BlueGreen => "blue-green",
        StrategyArg::Rolling => "rolling",
        StrategyArg::Canary => "canary",
        StrategyArg::AbTest => "ab-test",
        StrategyArg::Shadow => "shadow",
    }
}

/// Runs a deployment command.
///
/// # Errors
/// When the arguments are wrong or the host cannot be reached; a refusal by the host is
/// printed and ends in exit status 1.
pub async fn run(
    command: DeployCommand,
    api_key: Option<&str>,
    tls_ca: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let connect = |host: &HostArgs| {
        let url = host.connect.clone();
        async move { Client::connect(&url, api_key, tls_ca).await }
    };
    let result = match command {
        DeployCommand::Deploy(args) => {
            let strategy = args.strategy()?;
            let c = connect(&args.host).await?;
            return deploy(c, *args, strategy).await;
        }
        DeployCommand::Rollback { module, to, host } => {
            let mut c = connect(&host).await?;
            c.rollback(pb::RollbackRequest {
                module: module.clone(),
                to: to.unwrap_or_default(),
            })
            .await
            .map(|r| {
                println!("{module}: rolled back; {} takes the traffic", r.version);
                if let Some(s) = &r.status {
                    print!("{}", table::render_deployments(std::slice::from_ref(s)));
                }
            })
        }
        DeployCommand::Status { module, json, host } => {
            let mut c = connect(&host).await?;
            let all = match module {
                Some(m) => c.deployment(&m).await.map(|s| vec![s]),
                None => c.deployments().await,
            };
            match all {
                Ok(all) if json => {
                    let v: Vec<_> = all.iter().map(table::deployment_json).collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    Ok(())
                }
                Ok(all) => {
                    print!("{}", table::render_deployments(&all));
                    for d in &all {
                        if let Some(r) = &d.rollout {
                            println!("  {}: {}", d.module, progress_line(r));
                        }
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        DeployCommand::History { module, json, host } => {
            let mut c = connect(&host).await?;
            match c.history(&module).await {
                Ok(versions) if json => {
                    let v: Vec<_> = versions.iter().map(table::version_json).collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    Ok(())
                }
                Ok(versions) => {
                    print!("{}", table::render_history(&versions));
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        DeployCommand::Advance { module, host } => {
            control(connect(&host).await?, Control::Advance(module)).await
        }
        DeployCommand::Pause { module, host } => {
            control(connect(&host).await?, Control::Pause(module)).await
        }
        DeployCommand::Resume { module, host } => {
            control(connect(&host).await?, Control::Resume(module)).await
        }
        DeployCommand::Abort {
            module,
            reason,
            host,
        } => {
            let reason = reason.unwrap_or_else(|| format!("aborted by {}", who()));
            control(connect(&host).await?, Control::Abort { module, reason }).await
        }
        DeployCommand::Split {
            module,
            percent,
            host,
        } => {
            control(
                connect(&host).await?,
                Control::Split {
                    module,
                    percent_b: percent,
                },
            )
            .await
        }
    };
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(s) => {
            eprintln!("{}", describe(&s));
            ExitCode::FAILURE
        }
    })
}

async fn control(mut c: Client, what: Control) -> Result<(), tonic::Status> {
    let s = c.control(what).await?;
    print!("{}", table::render_deployments(std::slice::from_ref(&s)));
    if let Some(r) = &s.rollout {
        println!("  {}", progress_line(r));
    }
    Ok(())
}

fn who() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "polyglot-host".into())
}

/// Deploys, then follows the rollout: each event as it comes, a progress line every
/// `--interval`, until the new version succeeds (exit 0) or fails or is rolled back
/// (exit 1). Ctrl-C stops following; the deployment goes on in the host.
async fn deploy(
    mut c: Client,
    args: DeployArgs,
    strategy: pb::Strategy,
) -> anyhow::Result<ExitCode> {
    // The host reads the folder: send it whole, as this machine sees it.
    let path = std::fs::canonicalize(&args.path).unwrap_or_else(|_| args.path.clone());
    // Watch first: every event of this deployment arrives, however fast it goes.
    let mut events = if args.detach {
        None
    } else {
        match c.watch_deployments(vec![args.module.clone()]).await {
            Ok(e) => Some(e),
            Err(s) => {
                eprintln!("{}", describe(&s));
                return Ok(ExitCode::FAILURE);
            }
        }
    };
    let req = pb::DeployRequest {
        module: args.module.clone(),
        path: path.to_string_lossy().into_owned(),
        strategy: Some(strategy),
        by: args.by.clone().unwrap_or_else(who),
        why: args.why.clone(),
    };
    let r = match c.deploy(req).await {
        Ok(r) => r,
        Err(s) => {
            eprintln!("{}", describe(&s));
            return Ok(ExitCode::FAILURE);
        }
    };
    let module = &args.module;
    let version = r.version.clone();
    println!(
        "deploying {module} {version} from {} ({})",
        path.display(),
        strategy_flag(args.strategy)
    );
    let Some(events) = events.as_mut() else {
        if let Some(s) = &r.status {
            print!("{}", table::render_deployments(std::slice::from_ref(s)));
        }
        return Ok(ExitCode::SUCCESS);
    };
    let mut tick = tokio::time::interval(args.interval);
    tick.tick().await;
    let mut last_line = String::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            e = events.message() => match e {
                Ok(Some(e)) => {
                    println!("{}  {}", clock(e.timestamp_ms), e.message);
                    if let Some(ok) = outcome(&e, &version) {
                        if let Ok(s) = c.deployment(module).await {
                            print!("{}", table::render_deployments(std::slice::from_ref(&s)));
                        }
                        return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
                    }
                }
                Ok(None) => anyhow::bail!("the host ended the event stream (did it stop?)"),
                Err(s) => anyhow::bail!("following the deployment: {}", describe(&s)),
            },
            _ = tick.tick() => {
                if let Ok(s) = c.deployment(module).await {
                    if let Some(r) = s.rollout.as_ref().filter(|r| r.version == version) {
                        let line = progress_line(r);
                        if line != last_line {
                            println!("{}  {line}", clock(crate::deployments::now_ms()));
                            last_line = line;
                        }
                    }
                }
            }
            _ = &mut ctrl_c => {
                println!(
                    "stopped following; the deployment goes on in the host \
                     (polyglot-host status {module}; polyglot-host abort {module})"
                );
                return Ok(ExitCode::from(130));
            }
        }
    }
}

/// `HH:MM:SS` (UTC) of a time in ms since the Unix epoch.
fn clock(ms: u64) -> String {
    let t = rfc3339(ms);
    t.get(11..19).map_or(t.clone(), str::to_owned)
}

/// A rollout in one line: phase, share, time in phase, health, verdict.
pub fn progress_line(r: &pb::Rollout) -> String {
    let mut parts = vec![format!("{} {}", r.version, table::phase(r))];
    if r.phase != "scheduled" && r.phase != "checking" {
        parts.push(format!("{}% of traffic", r.percent));
    }
    parts.push(format!(
        "{}s in phase{}",
        r.phase_elapsed_ms / 1000,
        if r.paused { " (paused)" } else { "" }
    ));
    if let Some(h) = &r.health {
        let mut health = format!(
            "{} calls, {:.2}% errors, p99 {:.1} ms",
            h.calls,
            h.error_rate * 100.0,
            h.p99_us as f64 / 1000.0
        );
        if h.compared > 0 {
            health.push_str(&format!(", {} of {} differ", h.mismatches, h.compared));
        }
        parts.push(health);
    }
    parts.push(r.verdict_detail.clone());
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: DeployCommand,
    }

    fn args(line: &str) -> DeployArgs {
        let argv = std::iter::once("t").chain(line.split_whitespace());
        match T::try_parse_from(argv).unwrap().c {
            DeployCommand::Deploy(a) => *a,
            _ => panic!("not deploy"),
        }
    }

    #[test]
    fn a_canary_command_line_becomes_its_request() {
        let a = args(
            "deploy text --path /x --strategy canary --stages 5,25,50,100 --stage-duration 30s",
        );
        let s = a.strategy().unwrap();
        let Some(pb::strategy::Kind::Canary(c)) = s.kind else {
            panic!("not a canary")
        };
        assert_eq!(c.percents, [5, 25, 50, 100]);
        assert_eq!(c.stage_duration_ms, 30_000);
        assert!(s.scheduled_at_ms.is_none());
    }

    #[test]
    fn flags_of_another_strategy_are_refused() {
        let e = args("deploy text --path /x --strategy blue-green --stages 5,50")
            .strategy()
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--stages is for --strategy canary, not blue-green");
        let e = args("deploy text --path /x --strategy canary")
            .strategy()
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs --stages"), "{e}");
        let e = args("deploy text --path /x --strategy ab-test")
            .strategy()
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs --split"), "{e}");
    }

    #[test]
    fn a_start_time_is_absolute_or_from_now() {
        let soon = time("+10m").unwrap();
        let now = crate::deployments::now_ms();
        assert!((now + 590_000..=now + 610_000).contains(&soon));
        assert_eq!(time("2026-11-23T22:00:00Z").unwrap(), 1_795_471_200_000);
        assert!(time("tomorrow").unwrap_err().contains("+10m"));
    }
}
