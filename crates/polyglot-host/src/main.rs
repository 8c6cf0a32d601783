//! `polyglot-host`: loads the modules of a folder and serves them over gRPC and HTTP, or
//! runs one call, locally or against a running host.
//!
//! ```text
//! polyglot-host                          # serve ./polyglot-modules until Ctrl-C / SIGTERM
//! polyglot-host call text-rust slugify '["Hello World"]'
//! polyglot-host modules                  # modules, versions, instances, health
//! polyglot-host call text-rust slugify '["Hi"]' --connect http://127.0.0.1:50051
//! polyglot-host deploy text-rust --path releases/text-rust-1.1 --strategy canary \
//!     --stages 5,25,50,100 --stage-duration 30s   # against the running host
//! polyglot-host status; polyglot-host history text-rust; polyglot-host rollback text-rust
//! curl 127.0.0.1:9464/health/ready       # probes, /metrics and a JSON call API over HTTP
//! ```
//!
//! # Layout
//! - `main`: the command line and the commands.
//! - `config`: `polyglot.toml`, merged with the flags and the environment; `--print-config`.
//! - `grpc`: the gRPC API (Runtime service, health, reflection).
//! - `auth`: API keys, shared by the gRPC and HTTP APIs; which addresses are exposed.
//! - `http`: the HTTP endpoints: health probes, `/metrics`, the JSON call API.
//! - `lifecycle`: loading, serving, stopping, as the probes and health service report it.
//! - `metrics`: the Prometheus exporter behind `/metrics`.
//! - `deployments`: the deployment RPCs' messages and errors.
//! - `webhook`: deployment events POSTed to URLs.
//! - `client`: `--connect`, the commands against a running host.
//! - `deploy_cli`: the deployment commands (`deploy`, `rollback`, `status`, ...).
//! - `table`: the tables and JSON the commands print.
//! - `watch`: `serve --watch`, module folders reloaded, loaded and unloaded as they change.

mod auth;
mod client;
mod config;
mod deploy_cli;
mod deployments;
mod grpc;
mod http;
mod lifecycle;
mod metrics;
mod table;
mod watch;
mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use polyglot_core::api::module_info;
use polyglot_core::{CallOptions, Runtime, RuntimeConfig, Value};
use polyglot_proto::v1 as pb;

/// Call modules written in Rust, Python, Go, C++ and more, as if they were local
/// functions: each runs as a supervised worker process.
#[derive(Parser)]
#[command(name = "polyglot-host", version, about, long_about = None)]
struct Cli {
    /// The folder holding one sub-folder with a module.json per module.
    #[arg(
        long,
        global = true,
        default_value = "polyglot-modules",
        value_name = "DIR",
        env = "POLYGLOT_MODULES"
    )]
    modules: PathBuf,

    /// Log format: text for people, json for machines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text,
        env = "POLYGLOT_LOG_FORMAT")]
    log_format: LogFormat,

    /// How long calls in flight may take to finish when the host stops (e.g. 30s; a bare
    /// number is seconds).
    #[arg(long, global = true, default_value = "30s", value_name = "DURATION",
        value_parser = seconds_or_duration, env = "POLYGLOT_DRAIN_TIMEOUT")]
    drain_timeout: Duration,

    /// The API key: `serve` requires it of every client, `--connect` sends it.
    #[arg(long, global = true, env = "POLYGLOT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,

    /// With `--connect https://...`: trust this CA certificate (PEM) as well as the
    /// public roots.
    #[arg(long, global = true, value_name = "FILE", env = "POLYGLOT_TLS_CA")]
    tls_ca: Option<PathBuf>,

    /// Run every module as worker processes, even those whose manifest names a builtin
    /// (a handler compiled into this host, served in its own process by default).
    #[arg(long, global = true, env = "POLYGLOT_NO_BUILTINS",
        value_parser = BoolishValueParser::new())]
    no_builtins: bool,

    /// Read the settings from this TOML file (default: ./polyglot.toml when it exists).
    /// Flags and POLYGLOT_* variables win over it.
    #[arg(long, global = true, value_name = "FILE", env = "POLYGLOT_CONFIG")]
    config: Option<PathBuf>,

    /// Print the effective configuration as TOML, with where each value came from, and
    /// exit.
    #[arg(long, global = true)]
    print_config: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Where the gRPC API listens (port 0: any free port, printed at start).
    #[arg(long, default_value = DEFAULT_GRPC_ADDR, value_name = "ADDR", env = "POLYGLOT_GRPC_ADDR")]
    grpc_addr: SocketAddr,

    /// Where the HTTP endpoints listen: health probes, /metrics and the JSON call API
    /// (port 0: any free port, printed at start; `off`: none). Default 127.0.0.1:9464;
    /// when that port is taken the host serves without them and says so.
    #[arg(long, value_name = "ADDR|off", env = "POLYGLOT_HTTP_ADDR", value_parser = http_addr)]
    http_addr: Option<HttpAddr>,

    /// On SIGTERM, how long the host keeps serving with /health/ready failing before it
    /// refuses new calls: the time a load balancer takes to stop sending them (e.g. 5s).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0s",
        env = "POLYGLOT_SHUTDOWN_DELAY")]
    shutdown_delay: Duration,

    /// Serve the API over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", env = "POLYGLOT_TLS_CERT")]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", env = "POLYGLOT_TLS_KEY")]
    tls_key: Option<PathBuf>,

    /// Remember each module's active version and deployment history in this file
    /// (written atomically after every change); a restarted host comes back on them.
    #[arg(long, value_name = "FILE", env = "POLYGLOT_STATE_FILE")]
    state_file: Option<PathBuf>,

    /// POST each deployment event as JSON to this URL (repeatable; retried with
    /// back-off, never holding a deployment up).
    #[arg(
        long = "webhook",
        value_name = "URL",
        env = "POLYGLOT_WEBHOOKS",
        value_delimiter = ','
    )]
    webhooks: Vec<String>,

    /// Watch the modules folder: a module folder whose files change is rebuilt and
    /// reloaded without downtime, a new one is loaded, a removed one drained and stopped.
    #[arg(long, env = "POLYGLOT_WATCH", value_parser = BoolishValueParser::new())]
    watch: bool,

    #[command(flatten)]
    analysis: AnalysisArgs,
}

/// How deployments judge a new version (the thresholds of its health analysis).
#[derive(Args, Clone)]
#[command(next_help_heading = "Deployment analysis")]
struct AnalysisArgs {
    /// Calls a version must have served in the health window before it is judged; fewer
    /// holds the rollout (never passes it).
    #[arg(long, value_name = "N", default_value_t = polyglot_core::hotswap::DEFAULT_MIN_CALLS,
        env = "POLYGLOT_MIN_CALLS")]
    min_calls: u64,

    /// The highest share of failed calls (errors and timeouts), 0 to 1.
    #[arg(long, value_name = "RATE", default_value_t = polyglot_core::hotswap::DEFAULT_MAX_ERROR_RATE,
        value_parser = rate, env = "POLYGLOT_MAX_ERROR_RATE")]
    max_error_rate: f64,

    /// The highest 99th percentile latency (e.g. 250ms); none by default.
    #[arg(long, value_name = "DURATION", value_parser = duration, env = "POLYGLOT_MAX_P99")]
    max_p99: Option<Duration>,

    /// The most timeouts in the health window; no limit by default.
    #[arg(long, value_name = "N", env = "POLYGLOT_MAX_TIMEOUTS")]
    max_timeouts: Option<u64>,

    /// How far back a version's health looks (cut into 12 buckets).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "60s",
        env = "POLYGLOT_HEALTH_WINDOW")]
    health_window: Duration,

    /// How often deployments are judged and moved on.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "1s",
        env = "POLYGLOT_DEPLOY_TICK")]
    deploy_tick: Duration,

    /// Leave a version judged unhealthy during its rollout in place (the rollout holds
    /// until its deadline) instead of rolling it back at once.
    #[arg(long, env = "POLYGLOT_NO_AUTO_ROLLBACK", value_parser = BoolishValueParser::new())]
    no_auto_rollback: bool,
}

impl AnalysisArgs {
    fn config(&self, state_file: Option<&std::path::Path>) -> polyglot_core::DeploymentConfig {
        let mut t = polyglot_core::Thresholds::default()
            .with_min_calls(self.min_calls)
            .with_max_error_rate(self.max_error_rate);
        if let Some(p) = self.max_p99 {
            t = t.with_max_p99(p);
        }
        if let Some(n) = self.max_timeouts {
            t = t.with_max_timeouts(n);
        }
        let mut c = polyglot_core::DeploymentConfig::default()
            .with_thresholds(t)
            .with_health_window(
                self.health_window,
                polyglot_core::hotswap::DEFAULT_WINDOW_BUCKETS,
            )
            .with_tick(self.deploy_tick)
            .with_auto_rollback(!self.no_auto_rollback);
        if let Some(f) = state_file {
            c = c.with_state_file(f);
        }
        c
    }
}

/// `--http-addr`: an address, or none at all.
#[derive(Clone, Copy)]
enum HttpAddr {
    Off,
    At(SocketAddr),
}

fn http_addr(s: &str) -> Result<HttpAddr, String> {
    match s {
        "off" | "none" | "disabled" => Ok(HttpAddr::Off),
        _ => s.parse().map(HttpAddr::At).map_err(|e| {
            format!("{s:?} is not an address (e.g. 127.0.0.1:9464, 0.0.0.0:0) or `off`: {e}")
        }),
    }
}

/// Binds the HTTP endpoints' address: the one given (an error when it cannot be had), or
/// the default (reported, and none, when it is taken: another host on this machine has
/// it).
async fn bind_http(addr: Option<HttpAddr>) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    match addr {
        Some(HttpAddr::Off) => Ok(None),
        Some(HttpAddr::At(a)) => tokio::net::TcpListener::bind(a)
            .await
            .map(Some)
            .with_context(|| format!("cannot listen on {a} (use --http-addr ADDR, or off)")),
        None => match tokio::net::TcpListener::bind(http::DEFAULT_HTTP_ADDR).await {
            Ok(l) => Ok(Some(l)),
            Err(e) => {
                tracing::warn!(addr = http::DEFAULT_HTTP_ADDR, error = %e,
                    "no HTTP endpoints (health probes, /metrics, call API): the default address cannot be had; use --http-addr");
                eprintln!(
                    "WARNING: no HTTP endpoints: cannot listen on {} ({e}); use --http-addr ADDR",
                    http::DEFAULT_HTTP_ADDR
                );
                Ok(None)
            }
        },
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 250ms, 30s, 5m)"))
}

/// `--drain-timeout`: a duration, or a bare number of seconds (what it always took).
fn seconds_or_duration(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => duration(s),
    }
}

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate between 0 and 1 (e.g. 0.05 for 5%)"
        )),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the modules over gRPC and HTTP until Ctrl-C or SIGTERM (the default).
    Serve(ServeArgs),
    /// Run one call and print its result as JSON (exit status 1 and the error on
    /// stderr when it fails).
    Call {
        /// The module.
        module: String,
        /// The method.
        method: String,
        /// The params as JSON: an array of positional arguments, or an object of named
        /// ones. Binary is {"$bytes": "<base64>"}.
        #[arg(default_value = "[]")]
        params: String,
        /// The call's deadline in milliseconds (default: the module's timeoutMs).
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
        /// Print {result, servedBy, version, fallback, executionTimeUs} instead of the
        /// result alone.
        #[arg(long)]
        meta: bool,
        /// Call through a running host at this URL instead of starting the modules.
        #[arg(long, value_name = "URL")]
        connect: Option<String>,
    },
    /// List the modules with their versions, instances and health.
    Modules {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Ask a running host at this URL instead of starting the modules.
        #[arg(long, value_name = "URL")]
        connect: Option<String>,
    },
    #[command(flatten)]
    Deployment(deploy_cli::DeployCommand),
}

fn main() -> ExitCode {
    let loaded = match config::load() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("polyglot-host: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if loaded.print_config() {
        print!("{}", loaded.render());
        return ExitCode::SUCCESS;
    }
    let cli = loaded.into_cli();
    let quiet = !matches!(cli.command, None | Some(Command::Serve(_)));
    init_logging(cli.log_format, quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("polyglot-host: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("polyglot-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "warn" } else { "info" };
    let filter =
        EnvFilter::try_from_env("POLYGLOT_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli {
        modules: dir,
        drain_timeout,
        api_key,
        tls_ca,
        no_builtins,
        command,
        ..
    } = cli;
    let tls_ca = tls_ca.as_deref();
    let command = command.unwrap_or_else(|| Command::Serve(ServeArgs::default()));
    // Against a running host: no modules are started here.
    match &command {
        Command::Call {
            connect: Some(url),
            module,
            method,
            params,
            timeout_ms,
            meta,
        } => {
            return remote_call(
                url,
                api_key.as_deref(),
                tls_ca,
                module,
                method,
                params,
                *timeout_ms,
                *meta,
            )
            .await;
        }
        Command::Modules {
            connect: Some(url),
            json,
        } => {
            let mut c = client::Client::connect(url, api_key.as_deref(), tls_ca).await?;
            return match c.modules().await {
                Ok(modules) => {
                    print_modules(&modules, *json)?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(s) => {
                    eprintln!("{}", client::describe(&s));
                    Ok(ExitCode::FAILURE)
                }
            };
        }
        _ => {}
    }
    let command = match command {
        Command::Deployment(d) => return deploy_cli::run(d, api_key.as_deref(), tls_ca).await,
        other => other,
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "the modules folder {} does not exist (use --modules DIR)",
            dir.display()
        );
    }
    // Read the TLS files and bind before loading, so a mistake there fails at once, not
    // after every build.
    let webhooks = match &command {
        Command::Serve(args) => webhook::parse_urls(&args.webhooks)?,
        _ => Vec::new(),
    };
    let tls = match &command {
        Command::Serve(ServeArgs {
            tls_cert: Some(cert),
            tls_key: Some(key),
            ..
        }) => Some(grpc::load_identity(cert, key)?),
        _ => None,
    };
    let listener = match &command {
        Command::Serve(args) => Some(
            tokio::net::TcpListener::bind(args.grpc_addr)
                .await
                .with_context(|| {
                    format!("cannot listen on {} (use --grpc-addr)", args.grpc_addr)
                })?,
        ),
        _ => None,
    };
    let http_listener = match &command {
        Command::Serve(args) => bind_http(args.http_addr).await?,
        _ => None,
    };
    // Installed before any module is loaded: a module version registers its metric
    // handles at its first call.
    let exporter = match &command {
        Command::Serve(_) => Some(metrics::Exporter::install()?),
        _ => None,
    };
    let config = RuntimeConfig { drain_timeout };
    let runtime = match &command {
        Command::Serve(args) => {
            Runtime::with_deployments(config, args.analysis.config(args.state_file.as_deref()))
        }
        _ => Runtime::new(config),
    };
    if !no_builtins {
        // The handlers compiled into this host, served in its own process to the modules
        // whose manifest names them as `builtin`.
        polyglot_core::register_builtins(&runtime);
    }
    let auth = auth::Auth::new(api_key);
    let life = Arc::new(lifecycle::Lifecycle::default());
    // Probes answer while the modules load: live, not started, not ready.
    let http = match (http_listener, exporter) {
        (Some(l), Some(exporter)) => {
            let h =
                http::HttpServer::start(l, runtime.clone(), life.clone(), auth.clone(), exporter)?;
            println!("HTTP on {} (/health/*, /metrics, /v1/modules)", h.addr());
            if let Some(why) = h.calls_refused() {
                tracing::warn!(addr = %h.addr(), reason = %why, "the HTTP call API is refused");
                eprintln!("WARNING: {why}");
            }
            Some(h)
        }
        _ => None,
    };
    let quiet = listener.is_none();
    let report = runtime.load_dir(&dir).await;
    for e in &report.errors {
        if quiet {
            eprintln!("warning: {e}");
        } else {
            tracing::error!("{e}");
        }
    }
    life.mark_started(report.errors.iter().map(ToString::to_string).collect());
    let code = match command {
        Command::Serve(args) => {
            let listener = listener.expect("bound above");
            let _webhooks = webhook::start(&runtime, webhooks)?;
            let stop = Stopping {
                life: &life,
                delay: args.shutdown_delay,
            };
            let watch = if args.watch {
                Some(watch::start(runtime.clone(), &dir)?)
            } else {
                None
            };
            let code = serve(&runtime, &dir, listener, auth, tls, stop).await;
            if let Some(w) = watch {
                w.stop().await;
            }
            code?
        }
        Command::Call {
            module,
            method,
            params,
            timeout_ms,
            meta,
            ..
        } => local_call(&runtime, &module, &method, &params, timeout_ms, meta).await?,
        Command::Modules { json, .. } => {
            let modules: Vec<pb::ModuleInfo> = runtime.modules().iter().map(module_info).collect();
            print_modules(&modules, json)?;
            ExitCode::SUCCESS
        }
        Command::Deployment(_) => unreachable!("run against a host above"),
    };
    runtime.shutdown().await;
    // Probes answered (not ready) while the calls drained; now they stop too.
    if let Some(h) = http {
        h.stop().await;
    }
    Ok(code)
}

/// How `serve` stops: readiness goes false first, then, after `delay`, new calls are
/// refused.
struct Stopping<'a> {
    life: &'a Arc<lifecycle::Lifecycle>,
    delay: Duration,
}

/// The address `serve` listens on by default.
const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50051";

impl Default for ServeArgs {
    /// `serve` with no flags: the defaults clap gives them.
    fn default() -> ServeArgs {
        #[derive(Parser)]
        struct Bare {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Bare::parse_from(["serve"]).serve
    }
}

fn print_modules(modules: &[pb::ModuleInfo], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&table::json(modules))?);
    } else {
        print!("{}", table::render(modules));
    }
    Ok(())
}

async fn serve(
    runtime: &Runtime,
    dir: &std::path::Path,
    listener: tokio::net::TcpListener,
    auth: auth::Auth,
    tls: Option<grpc::Tls>,
    stopping: Stopping<'_>,
) -> anyhow::Result<ExitCode> {
    // Listen before announcing readiness, so a signal right after it is handled.
    let signals = Signals::new()?;
    let addr = listener.local_addr()?;
    if auth::is_exposed(&addr) && !auth.has_key() {
        tracing::warn!(%addr, "THE gRPC API LISTENS BEYOND THIS MACHINE WITHOUT AN API KEY: anyone who can reach it can call every module. Set --api-key or POLYGLOT_API_KEY.");
        eprintln!("WARNING: the gRPC API on {addr} is reachable from other machines and has no API key (--api-key).");
    }
    let modules: Vec<pb::ModuleInfo> = runtime.modules().iter().map(module_info).collect();
    println!(
        "polyglot-host serving {} module(s) from {}",
        modules.len(),
        dir.display()
    );
    print!("{}", table::render(&modules));
    println!("gRPC API on {addr}");
    if let Some(t) = &tls {
        println!("TLS with the certificate {}", t.cert.display());
    }
    println!("Ctrl-C or SIGTERM stops it (in-flight calls finish first).");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(grpc::serve(
        runtime.clone(),
        listener,
        auth,
        tls,
        stopping.life.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));
    tokio::select! {
        () = signals.wait() => {}
        r = server => {
            r??;
            anyhow::bail!("the gRPC server stopped by itself");
        }
    }
    // Not ready first, so that a load balancer stops sending calls before they are refused.
    stopping.life.mark_stopping();
    if !stopping.delay.is_zero() {
        tracing::info!(
            delay_ms = stopping.delay.as_millis() as u64,
            "stopping: not ready; still taking calls for the shutdown delay"
        );
        tokio::time::sleep(stopping.delay).await;
    }
    tracing::info!("stopping: no new RPCs; draining calls in flight, then stopping workers");
    let _ = stop_tx.send(());
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and SIGINT (Ctrl-C), listened for from creation on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

fn parse_params(params: &str) -> anyhow::Result<Value> {
    let json: serde_json::Value = serde_json::from_str(params)
        .with_context(|| format!("the params are not valid JSON: {params}"))?;
    Value::from_json(json).context("the params are not valid")
}

fn print_result(
    result: serde_json::Value,
    served_by: &str,
    version: &str,
    fallback: bool,
    us: Option<u64>,
    meta: bool,
) -> anyhow::Result<()> {
    let out = if meta {
        serde_json::json!({
            "result": result, "servedBy": served_by, "version": version,
            "fallback": fallback, "executionTimeUs": us,
        })
    } else {
        result
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

async fn local_call(
    runtime: &Runtime,
    module: &str,
    method: &str,
    params: &str,
    timeout_ms: Option<u64>,
    meta: bool,
) -> anyhow::Result<ExitCode> {
    let params = parse_params(params)?;
    let opts = CallOptions {
        timeout: timeout_ms.map(Duration::from_millis),
        ..CallOptions::default()
    };
    match runtime.call_with(module, method, params, opts).await {
        Ok(r) => {
            let us = r.execution_time.map(|d| d.as_micros() as u64);
            print_result(
                r.value.to_json(),
                &r.served_by,
                &r.version,
                r.fallback,
                us,
                meta,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error ({}): {e}", e.kind());
            Ok(ExitCode::FAILURE)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn remote_call(
    url: &str,
    api_key: Option<&str>,
    tls_ca: Option<&std::path::Path>,
    module: &str,
    method: &str,
    params: &str,
    timeout_ms: Option<u64>,
    meta: bool,
) -> anyhow::Result<ExitCode> {
    let params = parse_params(params)?;
    let mut c = client::Client::connect(url, api_key, tls_ca).await?;
    let req = pb::CallRequest {
        module: module.into(),
        method: method.into(),
        params: serde_json::to_vec(&params)?,
        codec: pb::Codec::Json as i32,
        timeout_ms,
        routing_key: String::new(),
        max_attempts: None,
    };
    match c.call(req).await {
        Ok(r) => {
            let result: serde_json::Value =
                serde_json::from_slice(&r.result).context("the host's result is not JSON")?;
            let us = (r.execution_time_us > 0).then_some(r.execution_time_us);
            print_result(result, &r.served_by, &r.version, r.fallback, us, meta)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(s) => {
            eprintln!("{}", client::describe(&s));
            Ok(ExitCode::FAILURE)
        }
    }
}
