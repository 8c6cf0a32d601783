//! A real `polyglot-host serve` on a free loopback port, and what tests need to talk to
//! it over gRPC.
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
    pub url: String,
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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_polyglot-host"));
    cmd.arg("--modules")
        .arg(mods.dir())
        .arg("serve")
        .args(extra);
    if !extra.contains(&"--grpc-addr") {
        cmd.args(["--grpc-addr", "127.0.0.1:0"]);
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
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix("gRPC API on ") {
            url = Some(format!("http://{addr}"));
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Host {
        child,
        url: url.expect("the host prints its gRPC address"),
    }
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
    }
}

pub fn detail(s: &tonic::Status) -> pb::ErrorDetail {
    polyglot_proto::error_detail(s).expect("an ErrorDetail in the status details")
}
