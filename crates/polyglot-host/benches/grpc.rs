//! A `Call` through the host against a direct tonic echo, measured in one run.
//!
//! - direct: a tonic server process implementing `polyglot.v1.Runtime/Call` as an echo (no
//!   host, no worker): the floor of a gRPC round trip on this machine;
//! - host: `polyglot-host serve` (release) with a Rust stdio worker (release), `Call` to
//!   its `echo`, in each codec.
//!
//! Both servers are separate processes; the client is this process, one HTTP/2 channel.
//! Prints p50/p99 of one call at a time, throughput with 64 in flight, and the ratios of
//! the targets (p50 at most 2x direct; throughput at least 60% of direct).
//!
//! ```text
//! cargo bench -p polyglot-host --bench grpc
//! ```

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

const ROUNDS: usize = 10_000;
const CALLS: usize = 100_000;
const IN_FLIGHT: usize = 64;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// The direct echo server, run as `grpc --direct-server` in a child process.
struct Echo;

#[tonic::async_trait]
impl pb::runtime_server::Runtime for Echo {
    async fn call(
        &self,
        req: Request<pb::CallRequest>,
    ) -> Result<Response<pb::CallResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(pb::CallResponse {
            result: r.params,
            codec: r.codec,
            ..Default::default()
        }))
    }
    type CallStreamStream = tokio_stream::Empty<Result<pb::CallEvent, Status>>;
    async fn call_stream(
        &self,
        _: Request<pb::CallRequest>,
    ) -> Result<Response<Self::CallStreamStream>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn list_modules(
        &self,
        _: Request<pb::ListModulesRequest>,
    ) -> Result<Response<pb::ListModulesResponse>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn get_module(
        &self,
        _: Request<pb::GetModuleRequest>,
    ) -> Result<Response<pb::ModuleInfo>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn reload_module(
        &self,
        _: Request<pb::ReloadModuleRequest>,
    ) -> Result<Response<pb::ReloadModuleResponse>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    type WatchEventsStream = tokio_stream::Empty<Result<pb::Event, Status>>;
    async fn watch_events(
        &self,
        _: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn deploy(
        &self,
        _: Request<pb::DeployRequest>,
    ) -> Result<Response<pb::DeployResponse>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn rollback(
        &self,
        _: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn advance_deployment(
        &self,
        _: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn pause_deployment(
        &self,
        _: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn resume_deployment(
        &self,
        _: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn abort_deployment(
        &self,
        _: Request<pb::AbortDeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn set_split(
        &self,
        _: Request<pb::SetSplitRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn get_deployment(
        &self,
        _: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn list_deployments(
        &self,
        _: Request<pb::ListDeploymentsRequest>,
    ) -> Result<Response<pb::ListDeploymentsResponse>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    async fn get_history(
        &self,
        _: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        Err(Status::unimplemented("echo only"))
    }
    type WatchDeploymentsStream = tokio_stream::Empty<Result<pb::DeploymentEvent, Status>>;
    async fn watch_deployments(
        &self,
        _: Request<pb::WatchDeploymentsRequest>,
    ) -> Result<Response<Self::WatchDeploymentsStream>, Status> {
        Err(Status::unimplemented("echo only"))
    }
}

fn direct_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("gRPC API on {}", l.local_addr().unwrap());
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        tonic::transport::Server::builder()
            .add_service(pb::runtime_server::RuntimeServer::new(Echo))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l))
            .await
            .unwrap();
    });
}

/// Starts a server process and returns it with its URL (from its "gRPC API on" line).
fn start(cmd: &mut Command) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(addr) = line.strip_prefix("gRPC API on ") {
            break format!("http://{addr}");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

struct Row {
    name: String,
    p50: f64,
    p99: f64,
    tput: f64,
}

async fn measure(name: &str, url: &str, module: &str, codec: pb::Codec) -> Row {
    let channel = Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let params = match codec {
        pb::Codec::Msgpack => rmp_serde::to_vec(&vec!["hello"]).unwrap(),
        _ => b"[\"hello\"]".to_vec(),
    };
    let module = module.to_owned();
    let req = move || pb::CallRequest {
        module: module.clone(),
        method: "echo".into(),
        params: params.clone(),
        codec: codec as i32,
        timeout_ms: None,
        routing_key: String::new(),
        max_attempts: None,
    };
    let mut c = RuntimeClient::new(channel.clone());
    for _ in 0..1000 {
        c.call(req()).await.unwrap();
    }
    let mut lat = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        c.call(req()).await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let done = Arc::new(AtomicUsize::new(0));
    let req = Arc::new(req);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (mut c, done, req) = (
                RuntimeClient::new(channel.clone()),
                done.clone(),
                req.clone(),
            );
            tokio::spawn(async move {
                while done.fetch_add(1, Ordering::Relaxed) < CALLS {
                    c.call(req()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Row {
        name: name.into(),
        p50: lat[ROUNDS / 2],
        p99: lat[ROUNDS * 99 / 100],
        tput: CALLS as f64 / t0.elapsed().as_secs_f64(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--direct-server") {
        return direct_server();
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    for (what, a) in [
        (
            "the Rust test worker",
            &["--example", "test_worker", "-p", "polyglot-worker"][..],
        ),
        ("polyglot-host", &["--bin", "polyglot-host"][..]),
    ] {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet"])
            .args(a)
            .current_dir(repo())
            .status()
            .unwrap();
        assert!(ok.success(), "building {what} failed");
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("echo")).unwrap();
    let manifest = serde_json::json!({
        "name": "echo", "language": "rust", "version": "1.0.0",
        "command": target().join("release/examples/test_worker").display().to_string(),
        "codec": "msgpack", "instances": 1, "env": {"TEST_MAX_CONCURRENCY": "64"},
        "healthCheck": {"intervalMs": 60000},
    });
    std::fs::write(tmp.path().join("echo/module.json"), manifest.to_string()).unwrap();

    let (mut direct, direct_url) =
        start(Command::new(std::env::current_exe().unwrap()).arg("--direct-server"));
    let (mut host, host_url) = start(
        Command::new(target().join("release/polyglot-host"))
            .arg("--modules")
            .arg(tmp.path())
            .args(["serve", "--grpc-addr", "127.0.0.1:0"]),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        vec![
            measure(
                "direct tonic echo (floor)",
                &direct_url,
                "echo",
                pb::Codec::Json,
            )
            .await,
            measure(
                "host Call -> Rust stdio worker, json",
                &host_url,
                "echo",
                pb::Codec::Json,
            )
            .await,
            measure(
                "host Call -> Rust stdio worker, msgpack",
                &host_url,
                "echo",
                pb::Codec::Msgpack,
            )
            .await,
        ]
    });
    let _ = direct.kill();
    let _ = host.kill();
    let _ = direct.wait();
    let _ = host.wait();

    println!(
        "\n{:<44} {:>9} {:>9} {:>14}",
        "gRPC echo, one at a time / 64 in flight", "p50 µs", "p99 µs", "calls/s @64"
    );
    for r in &rows {
        println!(
            "{:<44} {:>9.1} {:>9.1} {:>14.0}",
            r.name, r.p50, r.p99, r.tput
        );
    }
    let d = &rows[0];
    println!("\nratios (target):");
    for r in &rows[1..] {
        println!(
            "  {:<40} p50 {:.2}x direct (<= 2.0), throughput {:.0}% of direct (>= 60%)",
            r.name,
            r.p50 / d.p50,
            100.0 * r.tput / d.tput
        );
    }
}
