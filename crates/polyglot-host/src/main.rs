//! `polyglot-host`: loads the modules of a folder and serves them, or runs one call.
//!
//! ```text
//! polyglot-host                          # serve ./polyglot-modules until Ctrl-C / SIGTERM
//! polyglot-host call text-rust slugify '["Hello World"]'
//! polyglot-host modules                  # modules, versions, instances, health
//! ```
//!
//! # Layout
//! - `main`: the command line and the three commands.
//! - `table`: the module table printed by `serve` and `modules`.

mod table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use polyglot_core::{CallOptions, Runtime, RuntimeConfig, Value};

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
        value_name = "DIR"
    )]
    modules: PathBuf,

    /// Log format: text for people, json for machines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// How long calls in flight may take to finish when the host stops, in seconds.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    drain_timeout: u64,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the modules until Ctrl-C or SIGTERM (the default).
    Serve,
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
    },
    /// List the modules with their versions, instances and health.
    Modules {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, None | Some(Command::Serve));
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
    let runtime = Runtime::new(RuntimeConfig {
        drain_timeout: Duration::from_secs(cli.drain_timeout),
    });
    let quiet = !matches!(cli.command, None | Some(Command::Serve));
    if !cli.modules.is_dir() {
        anyhow::bail!(
            "the modules folder {} does not exist (use --modules DIR)",
            cli.modules.display()
        );
    }
    let report = runtime.load_dir(&cli.modules).await;
    for e in &report.errors {
        if quiet {
            eprintln!("warning: {e}");
        } else {
            tracing::error!("{e}");
        }
    }
    let code = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&runtime, &cli.modules).await?,
        Command::Call {
            module,
            method,
            params,
            timeout_ms,
            meta,
        } => call(&runtime, &module, &method, &params, timeout_ms, meta).await?,
        Command::Modules { json } => {
            let modules = runtime.modules();
            if json {
                println!("{}", serde_json::to_string_pretty(&modules)?);
            } else {
                print!("{}", table::render(&modules));
            }
            ExitCode::SUCCESS
        }
    };
    runtime.shutdown().await;
    Ok(code)
}

async fn serve(runtime: &Runtime, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    // Listen before announcing readiness, so a signal right after it is handled.
    let signals = Signals::new()?;
    let modules = runtime.modules();
    println!(
        "polyglot-host serving {} module(s) from {}",
        modules.len(),
        dir.display()
    );
    print!("{}", table::render(&modules));
    println!("Ctrl-C or SIGTERM stops it (in-flight calls finish first).");
    signals.wait().await;
    tracing::info!("stopping: draining calls in flight, then stopping workers");
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

async fn call(
    runtime: &Runtime,
    module: &str,
    method: &str,
    params: &str,
    timeout_ms: Option<u64>,
    meta: bool,
) -> anyhow::Result<ExitCode> {
    let json: serde_json::Value = serde_json::from_str(params)
        .with_context(|| format!("the params are not valid JSON: {params}"))?;
    let params = Value::from_json(json).context("the params are not valid")?;
    let opts = CallOptions {
        timeout: timeout_ms.map(Duration::from_millis),
        ..CallOptions::default()
    };
    match runtime.call_with(module, method, params, opts).await {
        Ok(reply) => {
            let out = if meta {
                serde_json::json!({
                    "result": reply.value.to_json(),
                    "servedBy": reply.served_by,
                    "version": reply.version,
                    "fallback": reply.fallback,
                    "executionTimeUs": reply.execution_time.map(|d| d.as_micros() as u64),
                })
            } else {
                reply.value.to_json()
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error ({}): {e}", e.kind());
            Ok(ExitCode::FAILURE)
        }
    }
}
