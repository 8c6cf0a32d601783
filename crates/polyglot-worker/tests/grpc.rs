//! The Rust SDK's gRPC transport against the real test worker process
//! (`examples/test_worker.rs`): the announced address, a session in each codec, the unary
//! RPCs, and the ways the worker ends.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use polyglot_proto::v1 as pb;
use polyglot_protocol::{Codec, Frame, FrameReader, Handshake, Request, Value, WorkerMessage};
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint, Uri};

fn test_worker() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/test_worker")
}

/// Starts the test worker on the gRPC transport; returns it and its handshake.
fn start(env: &[(&str, &str)]) -> (Child, Handshake) {
    let mut child = Command::new(test_worker())
        .env("POLYGLOT_PROTOCOL", "1")
        .env("POLYGLOT_MODULE", "t")
        .env("POLYGLOT_TRANSPORT", "grpc")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test worker is built with the tests");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let h = Handshake::parse(line.trim_end().as_bytes()).unwrap();
    assert_eq!(h.transport.as_deref(), Some("grpc"), "{line}");
    (child, h)
}

async fn connect(address: &str) -> Channel {
    let path = address
        .strip_prefix("unix:")
        .expect("a Unix socket by default")
        .to_owned();
    Endpoint::from_static("http://worker.local")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .unwrap()
}

fn client(ch: Channel) -> pb::worker_client::WorkerClient<Channel> {
    pb::worker_client::WorkerClient::new(ch)
}

#[tokio::test]
async fn a_session_carries_the_protocol_in_either_codec() {
    let (mut child, h) = start(&[]);
    let ch = connect(h.address.as_deref().unwrap()).await;
    for codec in [Codec::Json, Codec::Msgpack] {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        req.metadata_mut()
            .insert("polyglot-codec", codec.as_str().parse().unwrap());
        let mut out = client(ch.clone()).session(req).await.unwrap().into_inner();
        let mut wire = Vec::new();
        for (id, n) in [(1u64, 300u64), (2, 10)] {
            Request::new(id, "sleep", Value::Array(vec![n.into()])).encode(codec, &mut wire);
        }
        // One chunk holding two requests, the second split across another chunk.
        let split = wire.len() - 3;
        tx.send(pb::Chunk {
            data: wire[..split].to_vec().into(),
        })
        .await
        .unwrap();
        tx.send(pb::Chunk {
            data: wire[split..].to_vec().into(),
        })
        .await
        .unwrap();
        let mut reader = FrameReader::new(Codec::Json, 1 << 20);
        let mut handshake = None;
        let mut answered = Vec::new();
        while answered.len() < 2 {
            let chunk = out.next().await.unwrap().unwrap();
            reader.extend(&chunk.data);
            while let Some(Frame::Data(f)) = reader.next_frame() {
                if handshake.is_none() {
                    let hs = Handshake::parse(f).unwrap();
                    assert_eq!(hs.codec, codec);
                    assert_eq!(hs.address, h.address, "the session repeats the handshake");
                    handshake = Some(hs);
                    reader.set_codec(codec);
                    continue;
                }
                match WorkerMessage::decode(codec, f).unwrap() {
                    WorkerMessage::Response(r) => answered.push(r.id.as_u64().unwrap()),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(answered, vec![2, 1], "{codec}: answered out of order");
        drop(tx);
        // The worker ends the session when the host does.
        assert!(out.next().await.is_none_or(|r| r.is_err()), "{codec}");
    }
    // Ending a session does not end the worker.
    let d = client(ch.clone())
        .describe(pb::DescribeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((d.module.as_str(), d.pid), ("t", child.id()));
    assert!(d.methods.contains(&"echo".to_owned()));
    drop(child.stdin.take());
    assert!(
        child.wait().unwrap().success(),
        "stdin's end ends the worker"
    );
    let path = h.address.unwrap().strip_prefix("unix:").unwrap().to_owned();
    assert!(
        !std::path::Path::new(&path).exists(),
        "its socket is removed"
    );
}

#[tokio::test]
async fn unary_rpcs_call_the_handler() {
    let (mut child, h) = start(&[("TEST_HEALTH", "degraded")]);
    let mut c = client(connect(h.address.as_deref().unwrap()).await);
    for codec in [Codec::Json, Codec::Msgpack] {
        let params = Value::Array(vec![2.into(), 40.into()]).encode(codec);
        let r = c
            .call(pb::WorkerCallRequest {
                method: "add".into(),
                params,
                timeout_ms: 0,
                codec: codec.as_str().into(),
            })
            .await
            .unwrap()
            .into_inner();
        match r.outcome {
            Some(pb::worker_call_response::Outcome::Result(b)) => {
                assert_eq!(Value::decode(codec, &b).unwrap(), Value::from(42))
            }
            other => panic!("{other:?}"),
        }
    }
    let r = c
        .call(pb::WorkerCallRequest {
            method: "fail".into(),
            params: br#"["NOT_READY","no model"]"#.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    match r.outcome {
        Some(pb::worker_call_response::Outcome::Error(e)) => {
            assert_eq!(
                (e.code.as_str(), e.message.as_str()),
                ("NOT_READY", "no model")
            )
        }
        other => panic!("{other:?}"),
    }
    for (method, code) in [
        ("$health", "METHOD_NOT_FOUND"),
        ("nope", "METHOD_NOT_FOUND"),
    ] {
        let r = c
            .call(pb::WorkerCallRequest {
                method: method.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        match r.outcome {
            Some(pb::worker_call_response::Outcome::Error(e)) => assert_eq!(e.code, code),
            other => panic!("{method}: {other:?}"),
        }
    }
    let bad = c
        .call(pb::WorkerCallRequest {
            method: "echo".into(),
            params: b"{not json".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("echo"), "{}", bad.message());

    let mut events = c
        .call_stream(pb::WorkerCallRequest {
            method: "progress".into(),
            params: b"[3]".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut progress = 0;
    let result = loop {
        match events.next().await.unwrap().unwrap().event.unwrap() {
            pb::worker_call_event::Event::Progress(_) => progress += 1,
            pb::worker_call_event::Event::Result(r) => break r,
        }
    };
    assert_eq!(progress, 3);
    assert!(matches!(
        result.outcome,
        Some(pb::worker_call_response::Outcome::Result(_))
    ));

    // A deadline cancels the call: the method's future is dropped (and writes its marker).
    let marker = std::env::temp_dir().join(format!("polyglot-grpc-cancel-{}", child.id()));
    let _ = std::fs::remove_file(&marker);
    let mut slow = tonic::Request::new(pb::WorkerCallRequest {
        method: "sleep".into(),
        params: serde_json::to_vec(&serde_json::json!([5000, marker.display().to_string()]))
            .unwrap(),
        ..Default::default()
    });
    slow.set_timeout(Duration::from_millis(100));
    let e = c.call(slow).await.unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{e:?}"
    );
    let mut waited = 0;
    while !marker.exists() {
        assert!(waited < 100, "the worker never cancelled the call");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    let _ = std::fs::remove_file(&marker);

    let health = c
        .health(pb::WorkerHealthRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (health.status.as_str(), health.reason.as_str()),
        ("degraded", "warming up")
    );
    c.shutdown(pb::WorkerShutdownRequest {}).await.unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(
        status.success(),
        "Shutdown ends the worker with 0: {status}"
    );
}

#[tokio::test]
async fn an_unhealthy_worker_says_so_with_its_reason() {
    let (mut child, h) = start(&[("TEST_HEALTH", "unhealthy")]);
    let mut c = client(connect(h.address.as_deref().unwrap()).await);
    let health = c
        .health(pb::WorkerHealthRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (health.status.as_str(), health.reason.as_str()),
        ("unhealthy", "told to be unhealthy")
    );
    // An unhealthy worker still ends when its stdin does, and cleans up.
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let path = h.address.unwrap().strip_prefix("unix:").unwrap().to_owned();
    assert!(
        !std::path::Path::new(&path).exists(),
        "its socket is removed"
    );
}
