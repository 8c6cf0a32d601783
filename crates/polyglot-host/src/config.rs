//! `polyglot.toml`: the host's settings in a file, merged with the command line and the
//! environment.
//!
//! Every setting of `polyglot-host`, its global flags and `serve`'s, has a key in the file
//! named as its flag (`grpc-addr`; `webhooks` for the repeatable `--webhook`) and an
//! environment variable `POLYGLOT_<KEY>` (`POLYGLOT_GRPC_ADDR`). A value given as a flag
//! wins over the environment, which wins over the file, which wins over the built-in
//! default.
//!
//! The file is `--config FILE` (or `POLYGLOT_CONFIG`), else `./polyglot.toml` when it
//! exists, else none. It is read in two steps, as manifests are: [`RawFile`] is what serde
//! reads (an unknown key is an error), validated into [`FileSettings`], whose values
//! cannot be invalid; every error names the file, the line and column, and the key. Then
//! [`load`] puts each file value where clap's value came from neither the command line nor
//! the environment (`ArgMatches::value_source`), so flags and environment variables keep
//! clap's own parsing and messages.
//!
//! Relative paths in the file are relative to the file's folder, so a file and the
//! modules beside it can move together.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args as _, CommandFactory as _, FromArgMatches as _, ValueEnum as _};
use serde::Deserialize;
use toml::Spanned;

use crate::{Cli, Command, HttpAddr, LogFormat, ServeArgs};

/// The file read when `--config` is not given, from the current directory, if it exists.
pub const DEFAULT_FILE: &str = "polyglot.toml";

/// The environment variable of a key: `POLYGLOT_` and the key, upper case, `-` as `_`.
pub fn env_var(key: &str) -> String {
    format!("POLYGLOT_{}", key.to_ascii_uppercase().replace('-', "_"))
}

/// The clap id of a key's argument (its field name).
fn arg_id(key: &str) -> String {
    key.replace('-', "_")
}

/// Where a setting's value came from, in order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    Flag,
    /// Its `POLYGLOT_*` environment variable.
    Env,
    /// The config file.
    File,
    /// The built-in default.
    Default,
}

/// The command line with the config file merged in, and where each setting came from.
pub struct Loaded {
    cli: Cli,
    /// `serve`'s settings: those of the command when it is `serve` (or none), else what
    /// `serve` would have, for `--print-config`; `None` when neither needs them.
    serve: Option<ServeArgs>,
    file: Option<PathBuf>,
    sources: BTreeMap<&'static str, Source>,
}

/// Parses the command line, reads the config file and merges them.
///
/// # Errors
/// A `--config` file that does not exist or cannot be read; a file with a syntax error,
/// an unknown key or a bad value (naming the file, line, column and key); `--tls-cert`
/// without `--tls-key` or the reverse, from whichever sources. Clap's own errors (a bad
/// flag) exit as clap does.
pub fn load() -> anyhow::Result<Loaded> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let file = match &cli.config {
        Some(f) => Some(f.clone()),
        None => Some(PathBuf::from(DEFAULT_FILE)).filter(|f| f.is_file()),
    };
    let settings = match &file {
        Some(f) => {
            if !f.exists() {
                anyhow::bail!(
                    "the config file {} does not exist (--config or POLYGLOT_CONFIG)",
                    f.display()
                );
            }
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the config file {}", f.display()))?;
            FileSettings::parse(&text, f)?
        }
        None => FileSettings::default(),
    };
    let mut sources = BTreeMap::new();
    settings.merge_global(&matches, &mut cli, &mut sources);
    let wants_serve = cli.print_config || matches!(cli.command, None | Some(Command::Serve(_)));
    let serve = if wants_serve {
        let bare;
        let m = match matches.subcommand_matches("serve") {
            Some(m) => m,
            None => {
                // No `serve` on the command line: its flags' defaults and environment.
                bare = ServeArgs::augment_args(clap::Command::new("serve"))
                    .try_get_matches_from(["serve"])?;
                &bare
            }
        };
        let mut serve = ServeArgs::from_arg_matches(m)?;
        settings.merge_serve(m, &mut serve, &mut sources);
        check_tls_pair(&serve, &sources)?;
        Some(serve)
    } else {
        None
    };
    Ok(Loaded {
        cli,
        serve,
        file,
        sources,
    })
}

/// `--tls-cert` and `--tls-key` go together, wherever each came from.
fn check_tls_pair(
    serve: &ServeArgs,
    sources: &BTreeMap<&'static str, Source>,
) -> anyhow::Result<()> {
    let (given, missing) = match (&serve.tls_cert, &serve.tls_key) {
        (Some(_), None) => ("tls-cert", "tls-key"),
        (None, Some(_)) => ("tls-key", "tls-cert"),
        _ => return Ok(()),
    };
    let by = match sources.get(given) {
        Some(Source::Flag) => format!("--{given}"),
        Some(Source::Env) => env_var(given),
        _ => format!("`{given}` in the config file"),
    };
    anyhow::bail!(
        "{by} is given without {missing} (--{missing}, {} or `{missing}` in the config file): \
         serving TLS needs both the certificate and its key",
        env_var(missing)
    )
}

impl Loaded {
    /// Whether `--print-config` was given.
    pub fn print_config(&self) -> bool {
        self.cli.print_config
    }

    /// The command line to run, with `serve`'s merged settings in its command.
    pub fn into_cli(self) -> Cli {
        let mut cli = self.cli;
        if let Some(serve) = self.serve {
            if matches!(cli.command, None | Some(Command::Serve(_))) {
                cli.command = Some(Command::Serve(serve));
            }
        }
        cli
    }

    /// The effective configuration as a config file: every key with its value and, in a
    /// comment after it, where the value came from. Keys without a value, and the API key
    /// (never printed), are commented out, so the text read back as a config file gives
    /// the same configuration (with the API key given again, by its environment variable).
    pub fn render(&self) -> String {
        let serve = self.serve.as_ref().expect("loaded for --print-config");
        let mut out = String::from(
            "# polyglot-host's effective configuration (--print-config). After each setting,\n\
             # where its value came from: flag, env (its POLYGLOT_* variable), file or default.\n",
        );
        match &self.file {
            Some(f) => out.push_str(&format!("# config file: {}\n", absolute(f).display())),
            None => out.push_str(&format!(
                "# config file: none (--config FILE, POLYGLOT_CONFIG or ./{DEFAULT_FILE})\n"
            )),
        }
        for (key, value) in values(&self.cli, serve) {
            let line = match (key, value) {
                ("api-key", Some(_)) => "# api-key = \"<redacted>\"".to_owned(),
                ("http-addr", None) => format!(
                    "# http-addr = \"{}\" (without HTTP when it is taken)",
                    crate::http::DEFAULT_HTTP_ADDR
                ),
                (_, Some(v)) => format!("{key} = {v}"),
                (_, None) => format!("# {key} (not set)"),
            };
            let source = match self.sources.get(key).copied().unwrap_or(Source::Default) {
                Source::Flag => "flag".to_owned(),
                Source::Env => format!("env {}", env_var(key)),
                Source::File => "file".to_owned(),
                Source::Default => "default".to_owned(),
            };
            out.push_str(&format!("{line:<48} # {source}\n"));
        }
        out
    }
}

/// Each key of the file with its effective value as TOML (`None` when it has none), in
/// the order `--print-config` prints them: the global flags, then `serve`'s. A key is its
/// flag's clap id with `-` for `_`.
fn values(cli: &Cli, serve: &ServeArgs) -> Vec<(&'static str, Option<toml::Value>)> {
    use toml::Value as V;
    let path = |p: &Path| V::String(absolute(p).to_string_lossy().into_owned());
    let duration = |d: Duration| V::String(humantime::format_duration(d).to_string());
    let count = |n: u64| V::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let a = &serve.analysis;
    let log_format = cli
        .log_format
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let http_addr = serve.http_addr.map(|h| match h {
        HttpAddr::Off => V::String("off".into()),
        HttpAddr::At(a) => V::String(a.to_string()),
    });
    let webhooks = V::Array(serve.webhooks.iter().cloned().map(V::String).collect());
    vec![
        ("modules", Some(path(&cli.modules))),
        ("log-format", Some(V::String(log_format))),
        ("drain-timeout", Some(duration(cli.drain_timeout))),
        ("api-key", cli.api_key.clone().map(V::String)),
        ("tls-ca", cli.tls_ca.as_deref().map(path)),
        ("no-builtins", Some(V::Boolean(cli.no_builtins))),
        ("grpc-addr", Some(V::String(serve.grpc_addr.to_string()))),
        ("http-addr", http_addr),
        ("shutdown-delay", Some(duration(serve.shutdown_delay))),
        ("tls-cert", serve.tls_cert.as_deref().map(path)),
        ("tls-key", serve.tls_key.as_deref().map(path)),
        ("state-file", serve.state_file.as_deref().map(path)),
        ("webhooks", Some(webhooks)),
        ("watch", Some(V::Boolean(serve.watch))),
        ("min-calls", Some(count(a.min_calls))),
        ("max-error-rate", Some(V::Float(a.max_error_rate))),
        ("max-p99", a.max_p99.map(duration)),
        ("max-timeouts", a.max_timeouts.map(count)),
        ("health-window", Some(duration(a.health_window))),
        ("deploy-tick", Some(duration(a.deploy_tick))),
        ("no-auto-rollback", Some(V::Boolean(a.no_auto_rollback))),
    ]
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

// ------------------------------------------------------------------------- raw form

/// The config file as serde reads it; [`FileSettings::parse`] validates it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    modules: Option<Spanned<String>>,
    log_format: Option<Spanned<String>>,
    /// `"30s"`, or a number of seconds as `--drain-timeout` has always taken.
    drain_timeout: Option<Spanned<toml::Value>>,
    api_key: Option<String>,
    tls_ca: Option<Spanned<String>>,
    no_builtins: Option<bool>,
    grpc_addr: Option<Spanned<String>>,
    http_addr: Option<Spanned<String>>,
    shutdown_delay: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    state_file: Option<Spanned<String>>,
    webhooks: Option<Vec<Spanned<String>>>,
    watch: Option<bool>,
    min_calls: Option<u64>,
    max_error_rate: Option<Spanned<f64>>,
    max_p99: Option<Spanned<String>>,
    max_timeouts: Option<u64>,
    health_window: Option<Spanned<String>>,
    deploy_tick: Option<Spanned<String>>,
    no_auto_rollback: Option<bool>,
}

// ------------------------------------------------------------------------- validated

/// A config file's settings, each valid; `None` for a key the file does not set.
#[derive(Default)]
struct FileSettings {
    modules: Option<PathBuf>,
    log_format: Option<LogFormat>,
    drain_timeout: Option<Duration>,
    api_key: Option<String>,
    tls_ca: Option<PathBuf>,
    no_builtins: Option<bool>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<HttpAddr>,
    shutdown_delay: Option<Duration>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    state_file: Option<PathBuf>,
    webhooks: Option<Vec<String>>,
    watch: Option<bool>,
    min_calls: Option<u64>,
    max_error_rate: Option<f64>,
    max_p99: Option<Duration>,
    max_timeouts: Option<u64>,
    health_window: Option<Duration>,
    deploy_tick: Option<Duration>,
    no_auto_rollback: Option<bool>,
}

impl FileSettings {
    /// Reads and validates the text of the config file `file`.
    fn parse(text: &str, file: &Path) -> Result<FileSettings, FileError> {
        let at = |span: Range<usize>, key: Option<&str>, message: String| {
            FileError::new(file, text, span, key.map(str::to_owned), message)
        };
        // The document's structure first: its syntax errors, and each top-level key's
        // span, to name the key of a later error that gives only a position.
        let doc = toml::de::DeTable::parse(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), None, e.message().to_owned()))?;
        let key_at = |pos: usize| {
            doc.get_ref().iter().find_map(|(k, v)| {
                (k.span().start <= pos && pos < v.span().end.max(k.span().end))
                    .then(|| k.get_ref().to_string())
            })
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            at(
                span.clone(),
                key_at(span.start).as_deref(),
                e.message().to_owned(),
            )
        })?;

        let dir = file.parent().unwrap_or(Path::new(""));
        let path = |p: Option<Spanned<String>>| p.map(|p| dir.join(p.into_inner()));
        let duration = |key: &str, v: Option<Spanned<String>>| {
            v.map(|v| crate::duration(v.get_ref()).map_err(|m| at(v.span(), Some(key), m)))
                .transpose()
        };
        let drain_timeout = match raw.drain_timeout {
            None => None,
            Some(v) => Some(match v.get_ref() {
                toml::Value::Integer(n) if *n >= 0 => Duration::from_secs(*n as u64),
                toml::Value::String(s) => crate::seconds_or_duration(s)
                    .map_err(|m| at(v.span(), Some("drain-timeout"), m))?,
                other => {
                    return Err(at(
                        v.span(),
                        Some("drain-timeout"),
                        format!("{other} is not a duration (e.g. \"30s\", or 30 for seconds)"),
                    ))
                }
            }),
        };
        let log_format = raw
            .log_format
            .map(|v| {
                LogFormat::from_str(v.get_ref(), false).map_err(|_| {
                    at(
                        v.span(),
                        Some("log-format"),
                        format!(
                            "{:?} is not a log format: \"text\" or \"json\"",
                            v.get_ref()
                        ),
                    )
                })
            })
            .transpose()?;
        let grpc_addr = raw
            .grpc_addr
            .map(|v| {
                v.get_ref().parse::<SocketAddr>().map_err(|e| {
                    at(
                        v.span(),
                        Some("grpc-addr"),
                        format!(
                            "{:?} is not an address (e.g. 0.0.0.0:50051): {e}",
                            v.get_ref()
                        ),
                    )
                })
            })
            .transpose()?;
        let http_addr = raw
            .http_addr
            .map(|v| crate::http_addr(v.get_ref()).map_err(|m| at(v.span(), Some("http-addr"), m)))
            .transpose()?;
        let webhooks = raw
            .webhooks
            .map(|list| {
                list.into_iter()
                    .map(|u| match crate::webhook::parse_url(u.get_ref()) {
                        Ok(_) => Ok(u.into_inner()),
                        Err(m) => Err(at(u.span(), Some("webhooks"), m)),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let max_error_rate = raw
            .max_error_rate
            .map(|v| {
                crate::rate(&v.get_ref().to_string())
                    .map_err(|m| at(v.span(), Some("max-error-rate"), m))
            })
            .transpose()?;
        Ok(FileSettings {
            modules: path(raw.modules),
            log_format,
            drain_timeout,
            api_key: raw.api_key,
            tls_ca: path(raw.tls_ca),
            no_builtins: raw.no_builtins,
            grpc_addr,
            http_addr,
            shutdown_delay: duration("shutdown-delay", raw.shutdown_delay)?,
            tls_cert: path(raw.tls_cert),
            tls_key: path(raw.tls_key),
            state_file: path(raw.state_file),
            webhooks,
            watch: raw.watch,
            min_calls: raw.min_calls,
            max_error_rate,
            max_p99: duration("max-p99", raw.max_p99)?,
            max_timeouts: raw.max_timeouts,
            health_window: duration("health-window", raw.health_window)?,
            deploy_tick: duration("deploy-tick", raw.deploy_tick)?,
            no_auto_rollback: raw.no_auto_rollback,
        })
    }

    /// Puts the global settings of the file into `cli` where neither a flag nor the
    /// environment gave them.
    fn merge_global(
        &self,
        m: &ArgMatches,
        cli: &mut Cli,
        sources: &mut BTreeMap<&'static str, Source>,
    ) {
        let mut merge = Merge { m, sources };
        merge.set("modules", &mut cli.modules, self.modules.clone());
        merge.set("log-format", &mut cli.log_format, self.log_format);
        merge.set("drain-timeout", &mut cli.drain_timeout, self.drain_timeout);
        merge.set("api-key", &mut cli.api_key, self.api_key.clone().map(Some));
        merge.set("tls-ca", &mut cli.tls_ca, self.tls_ca.clone().map(Some));
        merge.set("no-builtins", &mut cli.no_builtins, self.no_builtins);
    }

    /// Puts `serve`'s settings of the file into `s`, as [`FileSettings::merge_global`].
    fn merge_serve(
        &self,
        m: &ArgMatches,
        s: &mut ServeArgs,
        sources: &mut BTreeMap<&'static str, Source>,
    ) {
        let mut merge = Merge { m, sources };
        merge.set("grpc-addr", &mut s.grpc_addr, self.grpc_addr);
        merge.set("http-addr", &mut s.http_addr, self.http_addr.map(Some));
        merge.set("shutdown-delay", &mut s.shutdown_delay, self.shutdown_delay);
        merge.set("tls-cert", &mut s.tls_cert, self.tls_cert.clone().map(Some));
        merge.set("tls-key", &mut s.tls_key, self.tls_key.clone().map(Some));
        merge.set(
            "state-file",
            &mut s.state_file,
            self.state_file.clone().map(Some),
        );
        merge.set("webhooks", &mut s.webhooks, self.webhooks.clone());
        merge.set("watch", &mut s.watch, self.watch);
        let a = &mut s.analysis;
        merge.set("min-calls", &mut a.min_calls, self.min_calls);
        merge.set("max-error-rate", &mut a.max_error_rate, self.max_error_rate);
        merge.set("max-p99", &mut a.max_p99, self.max_p99.map(Some));
        merge.set(
            "max-timeouts",
            &mut a.max_timeouts,
            self.max_timeouts.map(Some),
        );
        merge.set("health-window", &mut a.health_window, self.health_window);
        merge.set("deploy-tick", &mut a.deploy_tick, self.deploy_tick);
        merge.set(
            "no-auto-rollback",
            &mut a.no_auto_rollback,
            self.no_auto_rollback,
        );
    }
}

/// Puts file values under clap's, recording where each setting came from.
struct Merge<'a> {
    m: &'a ArgMatches,
    sources: &'a mut BTreeMap<&'static str, Source>,
}

impl Merge<'_> {
    fn set<T>(&mut self, key: &'static str, value: &mut T, from_file: Option<T>) {
        let source = match self.m.value_source(&arg_id(key)) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => Source::Env,
            _ => match from_file {
                Some(v) => {
                    *value = v;
                    Source::File
                }
                None => Source::Default,
            },
        };
        self.sources.insert(key, source);
    }
}

// ------------------------------------------------------------------------- errors

/// A config file that cannot be used: the file, where in it, the key, what is wrong.
#[derive(Debug)]
pub struct FileError {
    /// The config file.
    pub file: PathBuf,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
    /// The key at fault, when the error is in one.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
    /// The line, with the span underlined.
    excerpt: String,
}

impl FileError {
    fn new(
        file: &Path,
        text: &str,
        span: Range<usize>,
        key: Option<String>,
        message: String,
    ) -> FileError {
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let content = text[line_start..line_end].trim_end_matches('\r');
        let line = text[..line_start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let width = text[start..span.end.clamp(start, line_end)]
            .chars()
            .count()
            .max(1);
        let gutter = " ".repeat(line.to_string().len());
        let excerpt = format!(
            "{gutter} |\n{line} | {content}\n{gutter} | {}{}",
            " ".repeat(column - 1),
            "^".repeat(width)
        );
        FileError {
            file: file.to_path_buf(),
            line,
            column,
            key,
            message,
            excerpt,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid config file {}, line {}, column {}",
            self.file.display(),
            self.line,
            self.column
        )?;
        if let Some(k) = &self.key {
            write!(f, ", key `{k}`")?;
        }
        write!(f, ": {}\n{}", self.message, self.excerpt)
    }
}

impl std::error::Error for FileError {}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn parse(text: &str) -> Result<FileSettings, FileError> {
        FileSettings::parse(text, Path::new("/etc/polyglot/polyglot.toml"))
    }

    #[test]
    fn every_setting_has_a_key_and_its_environment_variable() {
        // A flag added to the host without a key here fails this test: every setting can
        // be given in the file, and by POLYGLOT_<KEY>.
        let cli = Cli::command();
        let serve = ServeArgs::augment_args(clap::Command::new("serve"));
        let not_settings = ["help", "version", "config", "print_config"];
        let keys: Vec<&str> = values(&Cli::parse_from(["polyglot-host"]), &ServeArgs::default())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut ids = Vec::new();
        for arg in cli.get_arguments().chain(serve.get_arguments()) {
            let id = arg.get_id().as_str().to_owned();
            if not_settings.contains(&id.as_str()) {
                continue;
            }
            let key = id.replace('_', "-");
            assert!(keys.contains(&key.as_str()), "--{key} has no config key");
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(env_var(&key).as_str()),
                "--{key}'s environment variable"
            );
            ids.push(key);
        }
        for key in keys {
            assert!(ids.iter().any(|i| i == key), "{key} is no flag");
        }
        assert_eq!(env_var("max-p99"), "POLYGLOT_MAX_P99");
    }

    #[test]
    fn values_are_typed_and_paths_are_relative_to_the_file() {
        let s = parse(
            r#"
modules = "modules"
tls-ca = "/abs/ca.pem"
drain-timeout = 45
shutdown-delay = "5s"
http-addr = "off"
grpc-addr = "0.0.0.0:50051"
webhooks = ["https://hooks.example/a"]
max-error-rate = 0
no-builtins = true
"#,
        )
        .unwrap();
        assert_eq!(s.modules, Some(PathBuf::from("/etc/polyglot/modules")));
        assert_eq!(s.tls_ca, Some(PathBuf::from("/abs/ca.pem")));
        assert_eq!(s.drain_timeout, Some(Duration::from_secs(45)));
        assert_eq!(s.shutdown_delay, Some(Duration::from_secs(5)));
        assert!(matches!(s.http_addr, Some(HttpAddr::Off)));
        assert_eq!(s.grpc_addr, Some("0.0.0.0:50051".parse().unwrap()));
        assert_eq!(s.max_error_rate, Some(0.0));
        assert_eq!(s.no_builtins, Some(true));
        assert_eq!(
            parse("drain-timeout = \"1m\"").unwrap().drain_timeout,
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn errors_name_the_line_the_column_and_the_key() {
        let e = parse("min-calls = 3\ngrpc-addr = \"nowhere\"\n")
            .err()
            .unwrap();
        assert_eq!(
            (e.line, e.column, e.key.as_deref()),
            (2, 13, Some("grpc-addr"))
        );
        assert!(
            e.to_string().contains("\"nowhere\" is not an address"),
            "{e}"
        );
        assert!(e.to_string().contains("/etc/polyglot/polyglot.toml"), "{e}");

        let e = parse("\n\ngrpc-adr = \"0.0.0.0:1\"").err().unwrap();
        assert_eq!(
            (e.line, e.column, e.key.as_deref()),
            (3, 1, Some("grpc-adr"))
        );
        assert!(e.message.contains("unknown field `grpc-adr`"), "{e}");

        let e = parse("min-calls = \"many\"").err().unwrap();
        assert_eq!(
            (e.line, e.column, e.key.as_deref()),
            (1, 13, Some("min-calls"))
        );

        let e = parse("webhooks = [\n  \"https://a/\",\n  \"ftp://b/\",\n]")
            .err()
            .unwrap();
        assert_eq!((e.line, e.key.as_deref()), (3, Some("webhooks")));

        let e = parse("max-error-rate = 1.5").err().unwrap();
        assert_eq!(e.key.as_deref(), Some("max-error-rate"));
        let e = parse("health-window = \"soon\"").err().unwrap();
        assert_eq!(e.key.as_deref(), Some("health-window"));
        let e = parse("drain-timeout = true").err().unwrap();
        assert_eq!(e.key.as_deref(), Some("drain-timeout"));
        let e = parse("log-format = \"xml\"").err().unwrap();
        assert_eq!(e.key.as_deref(), Some("log-format"));

        // A syntax error has a position and no key.
        let e = parse("modules = \"unterminated\n").err().unwrap();
        assert_eq!(e.line, 1);
    }
}
