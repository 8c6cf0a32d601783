//! The host's side of the gRPC transport (`docs/protocol.md`, section 10): connecting to a
//! worker's address or a remote endpoint, and opening a `Session`, whose byte streams then
//! carry the same protocol as stdio through [`crate::connection::Connection`].

use std::time::Duration;

use polyglot_proto::v1 as pb;
use polyglot_protocol::{Codec, Value};
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::connection::Sink;

/// A client of `polyglot.v1.Worker`.
pub(crate) type WorkerClient = pb::worker_client::WorkerClient<Channel>;

/// Chunks the host may queue ahead of the HTTP/2 connection before writers wait.
const CHUNKS_QUEUED: usize = 64;

/// Connects to a worker at `address`: `unix:/path`, `host:port`, or an `http://` URL.
pub(crate) async fn connect(address: &str, timeout: Duration) -> Result<Channel, String> {
    if let Some(path) = address.strip_prefix("unix:") {
        let path = path.to_owned();
        // The URI is a placeholder: the connector ignores it and dials the socket.
        return Endpoint::from_static("http://worker.local")
            .connect_timeout(timeout)
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|e| format!("cannot connect to {address}: {}", crate::error::chain(&e)));
    }
    let uri = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|e| format!("{address:?} is not a gRPC address: {e}"))?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {address}: {}", crate::error::chain(&e)))
}

/// A session's two byte streams and a client for the worker's other RPCs.
pub(crate) struct Session {
    pub input: Box<dyn AsyncRead + Unpin + Send>,
    pub sink: Sink,
    pub client: WorkerClient,
}

/// Opens a `Session` on `channel` in `codec`.
pub(crate) async fn open_session(
    channel: Channel,
    codec: Codec,
    max_frame: usize,
) -> Result<Session, String> {
    let limit = max_frame.saturating_add(1 << 16).max(4 << 20);
    let client = WorkerClient::new(channel)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let (tx, rx) = mpsc::channel::<pb::Chunk>(CHUNKS_QUEUED);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    request.metadata_mut().insert(
        polyglot_proto::SESSION_CODEC_METADATA,
        tonic::metadata::MetadataValue::from_static(codec.as_str()),
    );
    let response = client
        .clone()
        .session(request)
        .await
        .map_err(|s| format!("the worker refused a session: {}", describe(&s)))?;
    let stream = response.into_inner().map(|r| {
        r.map(|c| c.data)
            .map_err(|s| std::io::Error::other(format!("the session ended: {}", describe(&s))))
    });
    Ok(Session {
        input: Box::new(tokio_util::io::StreamReader::new(stream)),
        sink: Sink::Grpc(tx),
        client,
    })
}

/// `$health` through the `Health` RPC: `{"status": "ok"}`, `{"status": "degraded",
/// "reason": ...}`, or an `UNHEALTHY` error.
pub(crate) async fn health(
    client: &WorkerClient,
    timeout: Duration,
) -> Result<Value, polyglot_protocol::ErrorObject> {
    let mut request = tonic::Request::new(pb::WorkerHealthRequest {});
    request.set_timeout(timeout);
    match client.clone().health(request).await {
        Ok(r) => {
            let r = r.into_inner();
            let mut m = polyglot_protocol::Map::new();
            match r.status.as_str() {
                "ok" | "" => {
                    m.insert("status".into(), Value::from("ok"));
                    Ok(Value::Map(m))
                }
                "degraded" => {
                    m.insert("status".into(), Value::from("degraded"));
                    m.insert("reason".into(), Value::from(r.reason));
                    Ok(Value::Map(m))
                }
                other => Err(polyglot_protocol::ErrorObject::new(
                    polyglot_protocol::code::UNHEALTHY,
                    if r.reason.is_empty() {
                        format!("the worker reports {other}")
                    } else {
                        r.reason
                    },
                )),
            }
        }
        Err(s) => Err(polyglot_protocol::ErrorObject::new(
            polyglot_protocol::code::UNHEALTHY,
            format!("the Health RPC failed: {}", describe(&s)),
        )),
    }
}

/// A status as "code: message".
fn describe(s: &tonic::Status) -> String {
    if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        format!("{:?}: {}", s.code(), s.message())
    }
}
