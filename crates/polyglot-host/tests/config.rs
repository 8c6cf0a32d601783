//! `polyglot.toml`, run for real: a file's values are where the host listens, the
//! environment wins over the file and a flag over the environment, `--print-config`'s
//! output read back as a file gives the same configuration, and a bad or missing file
//! stops the host before anything starts, naming the file, the line and the key.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A folder with an empty modules folder, where each test writes its config files and
/// runs the host (so that no `./polyglot.toml` of the repository is picked up).
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("modules")).unwrap();
        Dir(d)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let f = self.path().join(name);
        std::fs::write(&f, text).unwrap();
        f
    }

    /// The host, run in this folder with no `POLYGLOT_*` variable but those of `env`.
    fn host(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_polyglot-host"));
        c.current_dir(self.path()).args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("POLYGLOT_") {
                c.env_remove(k);
            }
        }
        c.envs(env.iter().copied());
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.host(args, env).output().unwrap()
    }

    /// `--print-config`'s output, asserting it succeeded.
    fn print_config(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut all = args.to_vec();
        all.push("--print-config");
        let out = self.run(&all, env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The value and the source `--print-config` gives a key: `("7", "env POLYGLOT_MIN_CALLS")`.
fn setting(printed: &str, key: &str) -> (String, String) {
    let line = printed
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} ")))
        .unwrap_or_else(|| panic!("no {key} in\n{printed}"));
    let (value, source) = line.rsplit_once(" # ").unwrap();
    let value = value.split_once(" = ").map_or("", |(_, v)| v);
    (value.trim().to_owned(), source.trim().to_owned())
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A serving host; killed when dropped.
struct Serving {
    child: Child,
    http: SocketAddr,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (a `serve`) and reads its output until it serves.
fn serve(mut cmd: Command) -> Serving {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut http = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("HTTP on ") {
            http = rest.split_whitespace().next().map(|a| a.parse().unwrap());
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let http = http.expect("the host prints its HTTP address");
    Serving { child, http }
}

/// The status of `GET path` at `addr`.
fn get_status(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_files_values_apply_with_paths_relative_to_it() {
    let dir = Dir::new();
    let port = free_port();
    // Relative to the file's folder (`modules`), not to where the host runs.
    let file = dir.write(
        "polyglot.toml",
        &format!(
            "modules = \"modules\"\ngrpc-addr = \"127.0.0.1:0\"\nhttp-addr = \"127.0.0.1:{port}\"\n\
             shutdown-delay = \"250ms\"\n"
        ),
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let mut cmd = dir.host(&["--config", file.to_str().unwrap(), "serve"], &[]);
    cmd.current_dir(elsewhere.path());
    let host = serve(cmd);
    assert_eq!(
        host.http.port(),
        port,
        "the host listens where the file says"
    );
    assert_eq!(get_status(host.http, "/health/live"), 200);
    drop(host);

    // ./polyglot.toml is read without --config.
    let printed = dir.print_config(&[], &[]);
    assert!(
        printed.contains(&format!("# config file: {}", file.display())),
        "{printed}"
    );
    assert_eq!(
        setting(&printed, "http-addr"),
        (format!("\"127.0.0.1:{port}\""), "file".into())
    );
    assert_eq!(
        setting(&printed, "modules"),
        (
            format!("{:?}", dir.path().join("modules").display().to_string()),
            "file".into()
        )
    );
    assert_eq!(
        setting(&printed, "shutdown-delay"),
        ("\"250ms\"".into(), "file".into())
    );
    assert_eq!(
        setting(&printed, "min-calls"),
        ("20".into(), "default".into())
    );
}

#[test]
fn the_environment_beats_the_file_and_a_flag_beats_the_environment() {
    let dir = Dir::new();
    let (file_port, env_port) = (free_port(), free_port());
    let file = dir.write(
        "host.toml",
        &format!(
            "grpc-addr = \"127.0.0.1:0\"\nhttp-addr = \"127.0.0.1:{file_port}\"\nmin-calls = 5\n\
             no-auto-rollback = true\ndrain-timeout = 10\n"
        ),
    );
    let config = file.to_str().unwrap();
    let env_addr = format!("127.0.0.1:{env_port}");
    let env = [
        ("POLYGLOT_HTTP_ADDR", env_addr.as_str()),
        ("POLYGLOT_MIN_CALLS", "6"),
        ("POLYGLOT_NO_AUTO_ROLLBACK", "false"),
        ("POLYGLOT_MODULES", "modules"),
    ];
    let host = serve(dir.host(&["--config", config, "serve"], &env));
    assert_eq!(
        host.http.port(),
        env_port,
        "POLYGLOT_HTTP_ADDR wins over the file"
    );
    assert_eq!(get_status(host.http, "/health/live"), 200);
    drop(host);

    let printed = dir.print_config(&["--config", config, "serve"], &env);
    assert_eq!(
        setting(&printed, "min-calls"),
        ("6".into(), "env POLYGLOT_MIN_CALLS".into())
    );
    assert_eq!(
        setting(&printed, "no-auto-rollback"),
        ("false".into(), "env POLYGLOT_NO_AUTO_ROLLBACK".into())
    );
    assert_eq!(
        setting(&printed, "drain-timeout"),
        ("\"10s\"".into(), "file".into())
    );

    let printed = dir.print_config(
        &[
            "--config",
            config,
            "serve",
            "--min-calls",
            "7",
            "--http-addr",
            "off",
        ],
        &env,
    );
    assert_eq!(setting(&printed, "min-calls"), ("7".into(), "flag".into()));
    assert_eq!(
        setting(&printed, "http-addr"),
        ("\"off\"".into(), "flag".into())
    );
    // A global flag after the subcommand is a flag too.
    let printed = dir.print_config(
        &["--config", config, "serve", "--drain-timeout", "2m"],
        &env,
    );
    assert_eq!(
        setting(&printed, "drain-timeout"),
        ("\"2m\"".into(), "flag".into())
    );
}

#[test]
fn print_config_read_back_as_a_file_gives_the_same_configuration() {
    let dir = Dir::new();
    // Found as ./polyglot.toml.
    dir.write(
        "polyglot.toml",
        "modules = \"modules\"\nlog-format = \"json\"\nwebhooks = [\"https://hooks.test/a\"]\n\
         max-p99 = \"250ms\"\nmax-error-rate = 0.1\nwatch = true\n\
         tls-cert = \"cert.pem\"\ntls-key = \"key.pem\"\n",
    );
    let env = [
        ("POLYGLOT_API_KEY", "s3cret"),
        ("POLYGLOT_MAX_TIMEOUTS", "3"),
        ("POLYGLOT_NO_BUILTINS", "yes"),
    ];
    let first = dir.print_config(
        &[
            "serve",
            "--health-window",
            "90s",
            "--grpc-addr",
            "0.0.0.0:6000",
        ],
        &env,
    );
    assert!(
        !first.contains("s3cret"),
        "the API key is never printed:\n{first}"
    );
    assert_eq!(
        setting(&first, "api-key"),
        ("\"<redacted>\"".into(), "env POLYGLOT_API_KEY".into())
    );
    assert_eq!(setting(&first, "max-timeouts").0, "3");
    assert_eq!(setting(&first, "no-builtins").0, "true");
    assert_eq!(setting(&first, "watch"), ("true".into(), "file".into()));
    assert_eq!(setting(&first, "health-window").0, "\"1m 30s\"");

    let printed = dir.write("printed.toml", &first);
    // The API key is given again as the secret it is; everything else comes from the file.
    let second = dir.print_config(
        &["--config", printed.to_str().unwrap()],
        &[("POLYGLOT_API_KEY", "s3cret")],
    );
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("# config file:"))
            .map(|l| l.rsplit_once(" # ").map_or(l, |(v, _)| v).trim().to_owned())
            .collect()
    };
    assert_eq!(values(&first), values(&second), "\n{first}\n{second}");
    let as_toml = |text: &str| text.parse::<toml::Table>().unwrap();
    assert_eq!(as_toml(&first), as_toml(&second));
    for line in second.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.ends_with("# file"), "{line}");
    }
}

#[test]
fn a_bad_file_stops_the_host_naming_the_file_the_line_and_the_key() {
    let dir = Dir::new();
    let cases = [
        (
            "min-calls = 3\nhttp-adr = \"0.0.0.0:9464\"\n",
            "line 2, column 1, key `http-adr`",
            "unknown field",
        ),
        (
            "\nmin-calls = \"many\"\n",
            "line 2, column 13, key `min-calls`",
            "invalid type",
        ),
        (
            "grpc-addr = \"0.0.0.0\"\n",
            "line 1, column 13, key `grpc-addr`",
            "is not an address",
        ),
        (
            "http-addr = \"everywhere\"\n",
            "line 1, column 13, key `http-addr`",
            "or `off`",
        ),
        (
            "max-error-rate = 2.0\n",
            "key `max-error-rate`",
            "between 0 and 1",
        ),
        (
            "shutdown-delay = \"a while\"\n",
            "key `shutdown-delay`",
            "e.g. 250ms",
        ),
        (
            "webhooks = [\n  \"gopher://x/\",\n]\n",
            "line 2, column 3, key `webhooks`",
            "scheme",
        ),
        ("modules = [\"a\"\n", "line 1", "modules"),
    ];
    for (text, at, what) in cases {
        let file = dir.write("bad.toml", text);
        let out = dir.run(
            &[
                "--config",
                file.to_str().unwrap(),
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(
            out.stdout.is_empty(),
            "nothing starts: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(err.contains(&file.display().to_string()), "{text}: {err}");
        assert!(err.contains(at), "{text}: {err}");
        assert!(err.contains(what), "{text}: {err}");
    }
    // Also for --print-config, which must not show a configuration the host would refuse.
    let file = dir.write("bad.toml", "deploy-tick = 5\n");
    let out = dir.run(&["--config", file.to_str().unwrap(), "--print-config"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("key `deploy-tick`"));

    // A certificate without its key, whichever source each comes from.
    let file = dir.write("half.toml", "tls-cert = \"cert.pem\"\n");
    let out = dir.run(&["--config", file.to_str().unwrap(), "serve"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`tls-cert` in the config file is given without tls-key"),
        "{err}"
    );
}

#[test]
fn a_missing_config_file_is_an_error() {
    let dir = Dir::new();
    let missing = dir.path().join("nope.toml");
    let out = dir.run(&["--config", missing.to_str().unwrap(), "serve"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("does not exist"),
        "{err}"
    );

    let out = dir.run(
        &["--print-config"],
        &[("POLYGLOT_CONFIG", missing.to_str().unwrap())],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    // Without --config, no ./polyglot.toml is no file at all.
    let printed = dir.print_config(&[], &[]);
    assert!(printed.contains("# config file: none"), "{printed}");
}
