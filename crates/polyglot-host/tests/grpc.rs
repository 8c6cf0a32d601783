//! The gRPC API of a real `polyglot-host serve` on loopback, with real workers: calls in
//! both codecs, streamed progress, error statuses with details, module listing, reload,
//! events, the health service per module, reflection, API keys, TLS, `--connect`, and
//! calls larger than tonic's default message size.

#[path = "../../polyglot-core/tests/support/mod.rs"]
mod support;

mod common;

use std::process::Command;
use std::time::Duration;

use common::{channel, client, detail, json_call, start, start_with, Host};
use polyglot_core::Value;
use polyglot_proto::v1 as pb;
use serde_json::json;
use support::{Lang, Modules};
use tokio_stream::StreamExt;
use tonic::Code;

fn fixture() -> Modules {
    let mods = Modules::new();
    mods.add(
        "calc",
        Lang::Rust,
        json!({"instances": 2, "fallback": "backup"}),
    );
    mods.add("backup", Lang::Python, json!({}));
    mods.add(
        "down",
        Lang::Rust,
        json!({"env": {"TEST_EXIT_AT_START": "1"}, "restart": {"maxRestarts": 0}}),
    );
    mods
}

#[tokio::test]
async fn calls_in_both_codecs_say_who_served_them() {
    let mods = fixture();
    let host = start(&mods, None);
    let mut c = client(&host).await;
    let r = c
        .call(json_call("calc", "add", json!([40, 2])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.result).unwrap(),
        json!(42)
    );
    assert_eq!(
        (r.served_by.as_str(), r.version.as_str(), r.fallback),
        ("calc", "1.0.0", false)
    );
    assert!(r.execution_time_us > 0);

    let params = Value::Array(vec![Value::Bytes(vec![0, 1, 255])]);
    let req = pb::CallRequest {
        params: rmp_serde::to_vec(&params).unwrap(),
        codec: pb::Codec::Msgpack as i32,
        ..json_call("calc", "echo", json!(null))
    };
    let r = c.call(req).await.unwrap().into_inner();
    assert_eq!(r.codec, pb::Codec::Msgpack as i32);
    assert_eq!(
        rmp_serde::from_slice::<Value>(&r.result).unwrap(),
        Value::Bytes(vec![0, 1, 255])
    );
}

#[tokio::test]
async fn errors_map_to_status_codes_with_details() {
    let mods = fixture();
    let host = start(&mods, None);
    let mut c = client(&host).await;

    let s = c
        .call(json_call("nope", "add", json!([])))
        .await
        .unwrap_err();
    assert_eq!(
        (
            s.code(),
            detail(&s).kind.as_str(),
            detail(&s).module.as_str()
        ),
        (Code::NotFound, "module_not_found", "nope")
    );

    let s = c
        .call(json_call("calc", "teleport", json!([])))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), detail(&s).kind.as_str()),
        (Code::NotFound, "method_not_found")
    );

    let s = c
        .call(json_call("calc", "add", json!(["x"])))
        .await
        .unwrap_err();
    let d = detail(&s);
    assert_eq!(
        (s.code(), d.kind.as_str(), d.code.as_str()),
        (Code::InvalidArgument, "remote", "INVALID_PARAMS")
    );

    let s = c
        .call(json_call(
            "calc",
            "fail",
            json!(["NOT_READY", "model not loaded"]),
        ))
        .await
        .unwrap_err();
    let d = detail(&s);
    assert_eq!(
        (s.code(), d.code.as_str(), d.message.as_str()),
        (Code::Unknown, "NOT_READY", "model not loaded")
    );

    let mut slow = json_call("calc", "sleep", json!([5000]));
    slow.timeout_ms = Some(100);
    let s = c.call(slow).await.unwrap_err();
    assert_eq!(
        (s.code(), detail(&s).kind.as_str()),
        (Code::DeadlineExceeded, "timeout")
    );

    let s = c
        .call(json_call("down", "echo", json!([1])))
        .await
        .unwrap_err();
    let d = detail(&s);
    assert_eq!(
        (s.code(), d.kind.as_str()),
        (Code::Unavailable, "unavailable")
    );
    assert_eq!(d.causes.len(), 1);
    assert!(
        d.causes[0].reason.contains("exit status 1"),
        "{:?}",
        d.causes
    );

    let bad = pb::CallRequest {
        params: b"[1,".to_vec(),
        ..json_call("calc", "add", json!(null))
    };
    let s = c.call(bad).await.unwrap_err();
    assert_eq!(
        (s.code(), detail(&s).kind.as_str()),
        (Code::InvalidArgument, "invalid_argument")
    );
    assert!(s.message().contains("not valid JSON"), "{}", s.message());

    // The host still serves.
    assert!(c
        .call(json_call("calc", "add", json!([1, 1])))
        .await
        .is_ok());
}

/// Calls beyond tonic's default 4 MiB get through, both ways: the host decodes and encodes
/// messages up to `MAX_MESSAGE_SIZE` (64 MiB), as does the API's client
/// (`polyglot_core::api::runtime_client`, which `--connect` and Python's client use).
#[tokio::test]
async fn calls_larger_than_tonics_default_limit_get_through() {
    let mods = fixture();
    let host = start(&mods, None);
    let mut c = polyglot_core::api::runtime_client(channel(&host).await);
    let blob: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let params = Value::Array(vec![Value::Bytes(blob.clone())]);
    let req = pb::CallRequest {
        params: rmp_serde::to_vec(&params).unwrap(),
        codec: pb::Codec::Msgpack as i32,
        ..json_call("calc", "echo", json!(null))
    };
    assert!(req.params.len() > 8 * 1024 * 1024);
    let r = c.call(req).await.unwrap().into_inner();
    assert_eq!(
        rmp_serde::from_slice::<Value>(&r.result).unwrap(),
        Value::Bytes(blob),
        "8 MiB echoed back"
    );
}

#[tokio::test]
async fn call_stream_delivers_progress_before_the_result() {
    let mods = fixture();
    let host = start(&mods, None);
    let mut c = client(&host).await;
    let mut stream = c
        .call_stream(json_call("calc", "progress", json!([3])))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(e) = stream.next().await {
        match e.unwrap().event.unwrap() {
            pb::call_event::Event::Progress(p) => {
                got.push(serde_json::from_slice::<serde_json::Value>(&p).unwrap())
            }
            pb::call_event::Event::Result(r) => got.push(
                json!({"result": serde_json::from_slice::<serde_json::Value>(&r.result).unwrap()}),
            ),
        }
    }
    assert_eq!(
        got,
        vec![
            json!({"step": 1}),
            json!({"step": 2}),
            json!({"step": 3}),
            json!({"result": 3})
        ]
    );
}

#[tokio::test]
async fn modules_reload_and_events() {
    let mods = fixture();
    let host = start(&mods, None);
    let mut c = client(&host).await;
    let list = c
        .list_modules(pb::ListModulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .modules;
    let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["backup", "calc", "down"]);
    let calc = c
        .get_module(pb::GetModuleRequest {
            module: "calc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((calc.health.as_str(), calc.instances.len()), ("healthy", 2));
    assert!(calc
        .instances
        .iter()
        .all(|i| i.pid > 0 && i.state == "healthy"));
    let down = c
        .get_module(pb::GetModuleRequest {
            module: "down".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (down.state.as_str(), down.health.as_str()),
        ("failed", "unhealthy")
    );
    assert!(
        down.last_error.contains("exit status 1"),
        "{}",
        down.last_error
    );
    assert_eq!(
        c.get_module(pb::GetModuleRequest { module: "x".into() })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    let mut events = c
        .watch_events(pb::WatchEventsRequest {
            modules: vec!["calc".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let dir = mods.dir().join("calc");
    let text = std::fs::read_to_string(dir.join("module.json")).unwrap();
    std::fs::write(
        dir.join("module.json"),
        text.replace("\"1.0.0\"", "\"1.1.0\""),
    )
    .unwrap();
    let r = c
        .reload_module(pb::ReloadModuleRequest {
            module: "calc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.old_version.as_str(), r.new_version.as_str()),
        ("1.0.0", "1.1.0")
    );
    let reload = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.next().await {
            let e = e.unwrap();
            assert_eq!(e.module, "calc", "filtered to calc");
            if let Some(pb::event::Kind::ReloadDone(d)) = e.kind {
                return d;
            }
        }
        panic!("the event stream ended");
    })
    .await
    .unwrap();
    assert_eq!(reload.new_version, "1.1.0");
    let s = c
        .reload_module(pb::ReloadModuleRequest {
            module: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
}

#[tokio::test]
async fn the_health_service_answers_per_module() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let mods = fixture();
    let host = start(&mods, Some("secret"));
    let mut h = HealthClient::new(channel(&host).await);
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    // Probes need no API key.
    let serving = ServingStatus::Serving as i32;
    assert_eq!(
        h.check(check("")).await.unwrap().into_inner().status,
        serving
    );
    assert_eq!(
        h.check(check("polyglot.v1.Runtime"))
            .await
            .unwrap()
            .into_inner()
            .status,
        serving
    );
    let mut calc = 0;
    let mut down = 0;
    for _ in 0..50 {
        calc = h
            .check(check("calc"))
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(-1);
        down = h
            .check(check("down"))
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(-1);
        if calc == serving && down == ServingStatus::NotServing as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((calc, down), (serving, ServingStatus::NotServing as i32));
    assert_eq!(
        h.check(check("no-such-module")).await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mods = fixture();
    let host = start(&mods, None);
    let mut r = ServerReflectionClient::new(channel(&host).await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = r
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("{resp:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["polyglot.v1.Runtime", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{names:?}");
    }
}

#[tokio::test]
async fn an_api_key_is_required_when_set() {
    let mods = fixture();
    let host = start(&mods, Some("s3cret"));
    let mut c = client(&host).await;
    let s = c
        .call(json_call("calc", "add", json!([1, 2])))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("API key"), "{}", s.message());
    let mut wrong = tonic::Request::new(json_call("calc", "add", json!([1, 2])));
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        c.call(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut right = tonic::Request::new(json_call("calc", "add", json!([1, 2])));
    right
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    assert!(c.call(right).await.is_ok());
    let mut header = tonic::Request::new(pb::ListModulesRequest {});
    header
        .metadata_mut()
        .insert("x-api-key", "s3cret".parse().unwrap());
    assert!(c.list_modules(header).await.is_ok());
}

#[test]
fn the_cli_calls_a_running_host_with_connect() {
    let mods = fixture();
    let host = start(&mods, Some("k"));
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_polyglot-host"))
            .args(args)
            .args(["--connect", &host.url])
            .env("POLYGLOT_API_KEY", "k")
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    let out = cli(&["call", "calc", "add", "[2, 3]", "--meta"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["result"].clone(), v["servedBy"].clone()),
        (json!(5), json!("calc"))
    );
    let out = cli(&["call", "calc", "add", "[\"x\"]"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error (remote)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["modules"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("calc") && l.contains("2/2")),
        "{table}"
    );
}

#[test]
fn tls_serves_clients_that_trust_the_certificate_and_only_them() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({}));
    let host = start_with(
        &mods,
        None,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let port = host.url.rsplit(':').next().unwrap().to_owned();
    let cli = |url: &str, ca: Option<&std::path::Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_polyglot-host"));
        cmd.args(["call", "calc", "add", "[20, 22]", "--connect", url]);
        if let Some(ca) = ca {
            cmd.arg("--tls-ca").arg(ca);
        }
        cmd.current_dir(std::env::temp_dir()).output().unwrap()
    };
    let https = format!("https://localhost:{port}");
    let out = cli(&https, Some(&cert));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    // Without trusting the certificate, or in plain text, nothing gets through.
    let out = cli(&https, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("certificate"), "{err}");
    let out = cli(&format!("http://localhost:{port}"), None);
    assert!(!out.status.success(), "plain text is refused");

    // A key that is not PEM is named before anything starts.
    std::fs::write(&key, "not a key").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_polyglot-host"))
        .arg("--modules")
        .arg(mods.dir())
        .args(["serve", "--grpc-addr", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key.pem") && err.contains("not PEM"), "{err}");
}

/// The Go example client (`go/examples/client`), built once.
fn go_client() -> std::path::PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().unwrap();
    let path = exe.ancestors().nth(3).unwrap().join("go/polyglot-client");
    BUILD.call_once(|| {
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&path)
            .arg("./examples/client")
            .current_dir(support::repo().join("go"))
            .output()
            .expect("run go build");
        assert!(
            out.status.success(),
            "building the Go client: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    path
}

#[test]
fn a_go_program_calls_through_a_running_host() {
    let mods = fixture();
    let host = start(&mods, Some("k"));
    let go = |key: &str, args: &[&str]| {
        Command::new(go_client())
            .args(["-connect", &host.url, "-api-key", key])
            .args(args)
            .output()
            .unwrap()
    };
    let out = go("k", &["calc", "add", "[20, 22]"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    let blob = json!([{"$bytes": "AAEC/w=="}]);
    let out = go("k", &["calc", "echo", &blob.to_string()]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, blob[0], "binary round trip (echo answers its argument)");
    // A method's own error, an unknown module, a wrong key: each says what it is, with the
    // error kind from the status details.
    for (key, args, expect) in [
        (
            "k",
            vec!["calc", "fail", r#"["NOT_READY","no model"]"#],
            vec!["(remote)", "NOT_READY", "no model"],
        ),
        (
            "k",
            vec!["nosuch", "echo"],
            vec!["NOT_FOUND (module_not_found)"],
        ),
        (
            "wrong",
            vec!["calc", "add", "[1, 2]"],
            vec!["UNAUTHENTICATED"],
        ),
    ] {
        let out = go(key, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for e in expect {
            assert!(err.contains(e), "{args:?}: {e:?} in {err}");
        }
    }
}

#[test]
fn serve_remembers_active_versions_in_its_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({}));
    let stop = |host: Host| {
        let status = Command::new("kill")
            .arg(host.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let mut host = host;
        assert!(
            host.child.wait().unwrap().success(),
            "SIGTERM stops it cleanly"
        );
    };
    let host = start_with(&mods, None, &["--state-file", state.to_str().unwrap()]);
    stop(host);
    let text = std::fs::read_to_string(&state).expect("the state file is written");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(text.contains("calc") && text.contains("1.0.0"), "{v:#}");

    // A corrupt state file is set aside, and the host still serves.
    std::fs::write(&state, "{ not json").unwrap();
    let host = start_with(&mods, None, &["--state-file", state.to_str().unwrap()]);
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "moved aside: {aside:?}");
    stop(host);
}
