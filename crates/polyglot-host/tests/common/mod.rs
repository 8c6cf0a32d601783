//! A real `polyglot-host serve` on free loopback ports, and what tests need to talk to
//! it over gRPC (and where its HTTP endpoints are).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use tonic::transport::Channel;

use crate::support::Modules;

/// A host serving `mods` on a free loopback port; killed when dropped.
pub struct Host {
    pub child: Child,
    /// The gRPC API, `http://ADDR` (empty for a host returned by [`start_early`]).
    pub url: String,
    /// The HTTP endpoints, `http://ADDR`, when it serves them.
    pub http: Option<String>,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(mods: &Modules, api_key: Option<&str>) -> Host {
    start_with(mods, api_key, &[])
}

pub fn start_with(mods: &Modules, api_key: Option<&str>, extra: &[&str]) -> Host {
    let host = launch(mods, api_key, extra, "Ctrl-C");
    assert!(!host.url.is_empty(), "the host prints its gRPC address");
    host
}

/// A host returned as soon as its HTTP endpoints listen, while its modules still load.
pub fn start_early(mods: &Modules, extra: &[&str]) -> Host {
    let host = launch(mods, None, extra, "HTTP on ");
    assert!(host.http.is_some(), "the host prints its HTTP address");
    host
}

/// Starts a host and reads its output up to the line containing `until`.
fn launch(mods: &Modules, api_key: Option<&str>, extra: &[&str], until: &str) -> Host {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_polyglot-host"));
    cmd.arg("--modules")
        .arg(mods.dir())
        .arg("serve")
        .args(extra);
    if !extra.contains(&"--grpc-addr") {
        cmd.args(["--grpc-addr", "127.0.0.1:0"]);
    }
    // Tests run in parallel: each host on its own free port, not the default one.
    if !extra.contains(&"--http-addr") {
        cmd.args(["--http-addr", "127.0.0.1:0"]);
    }
    if let Some(k) = api_key {
        cmd.args(["--api-key", k]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut http) = (String::new(), None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix("gRPC API on ") {
            url = format!("http://{addr}");
        }
        if let Some(rest) = line.strip_prefix("HTTP on ") {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            http = Some(format!("http://{}", addr.replace("0.0.0.0", "127.0.0.1")));
        }
        if line.contains(until) {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Host { child, url, http }
}

pub async fn channel(h: &Host) -> Channel {
    Channel::from_shared(h.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn client(h: &Host) -> RuntimeClient<Channel> {
    RuntimeClient::connect(h.url.clone()).await.unwrap()
}

pub fn json_call(module: &str, method: &str, params: serde_json::Value) -> pb::CallRequest {
    pb::CallRequest {
        module: module.into(),
        method: method.into(),
        params: serde_json::to_vec(&params).unwrap(),
        codec: pb::Codec::Json as i32,
        timeout_ms: None,
        routing_key: String::new(),
        max_attempts: None,
    }
}

pub fn detail(s: &tonic::Status) -> pb::ErrorDetail {
    polyglot_proto::error_detail(s).expect("an ErrorDetail in the status details")
}
