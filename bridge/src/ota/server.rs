//! The firmware server of the mesh: the root fetches `http://<bridge>:<esp32_port>/demesh_<board>_<M>_<m>.bin`
//! after an `upgrade` (the node firmware's address and naming). Only `GET` and `HEAD` of a
//! file name that parses as an ESP32 image are served, straight from the firmware folder:
//! no paths, no listings, nothing else in the folder. A few connections at a time (a root
//! fetches one image per upgrade), one request each; more get `503` and the root retries.
//! A connection ends after [`CONNECTION_TIMEOUT`] whatever it does: the slot (and the image
//! in memory) is held until the response is written, so a slow or stalled reader must not
//! keep it. `axum::serve` bounds neither, hence the accept loop here.
//!
//! Counted for `/metrics` ([`ServerMetrics`]): requests by answer, bytes served.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::firmware::{is_plain_file_name, ImageName};
use crate::http::server::next_connection;

/// Connections (downloads) at the same time.
const MAX_CONCURRENT: usize = 4;
/// A whole connection, request head to the last byte of the image: a root on a slow link
/// fetches a few MB in well under a minute.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(300);
/// The request head (a client that never finishes it gives up its slot early).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// What a connection over the limit is told before it is closed.
const BUSY_ANSWER: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
/// Largest ESP32 image served (an ESP32 app partition is at most a few MB).
pub const MAX_ESP32_BYTES: usize = 4 * 1024 * 1024;

/// What the server has done since the process started (one server per bridge process).
static SERVED: AtomicU64 = AtomicU64::new(0);
static NOT_FOUND: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
static BUSY: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

#[derive(Clone)]
struct Folder {
    dir: Arc<PathBuf>,
    max_bytes: usize,
}

/// Serves `dir`'s ESP32 images on `addr` until the process ends.
///
/// # Errors
/// When `addr` cannot be bound or the server fails.
pub async fn serve(addr: SocketAddr, dir: PathBuf, max_bytes: usize) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(
        "serving ESP32 images of {} on http://{}",
        dir.display(),
        listener.local_addr()?
    );
    serve_on(listener, router(dir, max_bytes), CONNECTION_TIMEOUT).await;
    Ok(())
}

/// The accept loop: at most [`MAX_CONCURRENT`] connections, each one request within
/// `timeout`.
async fn serve_on(listener: TcpListener, routes: Router, timeout: Duration) {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer, permit) =
            next_connection(&listener, &permits, "image server", BUSY_ANSWER, |_| {
                BUSY.fetch_add(1, Ordering::Relaxed);
            })
            .await;
        let service = TowerToHyperService::new(routes.clone());
        connections.spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT.min(timeout))
                .keep_alive(false)
                .serve_connection(TokioIo::new(tcp), service);
            match tokio::time::timeout(timeout, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("image server, connection from {peer}: {e}"),
                Err(_) => {
                    REFUSED.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("image server: {peer} not done within {timeout:?}, closed");
                }
            }
        });
    }
}

fn router(dir: PathBuf, max_bytes: usize) -> Router {
    let folder = Folder {
        dir: Arc::new(dir),
        max_bytes: max_bytes.min(MAX_ESP32_BYTES),
    };
    Router::new()
        .route("/{file}", any(image))
        .fallback(|| async {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            StatusCode::NOT_FOUND
        })
        .with_state(folder)
}

async fn image(method: Method, State(folder): State<Folder>, Path(file): Path<String>) -> Response {
    if method != Method::GET && method != Method::HEAD {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    if !is_plain_file_name(&file)
        || !matches!(ImageName::parse(&file), Some(ImageName::Esp32 { .. }))
    {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("image server: {file:?} is not an ESP32 image name");
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = folder.dir.join(&file);
    let len = match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => {
            NOT_FOUND.fetch_add(1, Ordering::Relaxed);
            return StatusCode::NOT_FOUND.into_response();
        }
    };
    if usize::try_from(len).map_or(true, |len| len > folder.max_bytes) {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "image server: {file} is larger than {} bytes",
            folder.max_bytes
        );
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::CONTENT_LENGTH, len.to_string()),
    ];
    if method == Method::HEAD {
        SERVED.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::OK, headers).into_response();
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) if bytes.len() <= folder.max_bytes => {
            SERVED.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            tracing::info!(bytes = bytes.len(), "image server: {file} served");
            let headers = [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::CONTENT_LENGTH, bytes.len().to_string()),
            ];
            (StatusCode::OK, headers, bytes).into_response()
        }
        Ok(_) => {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            StatusCode::PAYLOAD_TOO_LARGE.into_response()
        }
        Err(e) => {
            NOT_FOUND.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("image server: {file}: {e}");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

/// The image server's counters as `/metrics` families.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerMetrics;

impl prometheus_client::collector::Collector for ServerMetrics {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::MetricType;

        let mut requests = encoder.encode_descriptor(
            "ctrl22_firmware_server_requests",
            "Requests to the ESP32 image server by answer",
            None,
            MetricType::Counter,
        )?;
        for (answer, count) in [
            ("served", &SERVED),
            ("not_found", &NOT_FOUND),
            ("refused", &REFUSED),
            ("busy", &BUSY),
        ] {
            let labels = vec![("answer".to_owned(), answer.to_owned())];
            ConstCounter::new(count.load(Ordering::Relaxed) as f64)
                .encode(requests.encode_family(&labels)?)?;
        }
        let bytes = encoder.encode_descriptor(
            "ctrl22_firmware_server_bytes",
            "Bytes of ESP32 images served",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(BYTES.load(Ordering::Relaxed) as f64).encode(bytes)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn ask(router: &Router, method: &str, path: &str) -> (StatusCode, usize) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.len())
    }

    #[tokio::test]
    async fn only_esp32_images_are_served_by_exact_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("demesh_agccs12_3_6.bin"), [7u8; 1000]).unwrap();
        std::fs::write(dir.path().join("ctrl22_agccs12_15.hex"), "x").unwrap();
        std::fs::write(dir.path().join("demesh_big_1_0.bin"), [0u8; 2000]).unwrap();
        let router = router(dir.path().to_owned(), 1500);
        assert_eq!(
            ask(&router, "GET", "/demesh_agccs12_3_6.bin").await,
            (StatusCode::OK, 1000)
        );
        assert_eq!(
            ask(&router, "HEAD", "/demesh_agccs12_3_6.bin").await.0,
            StatusCode::OK
        );
        for path in [
            "/ctrl22_agccs12_15.hex",
            "/demesh_agccs12_3_7.bin",
            "/..%2Fdemesh_agccs12_3_6.bin",
            "/a/demesh_agccs12_3_6.bin",
            "/",
        ] {
            assert_eq!(
                ask(&router, "GET", path).await.0,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        assert_eq!(
            ask(&router, "PUT", "/demesh_agccs12_3_6.bin").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            ask(&router, "GET", "/demesh_big_1_0.bin").await.0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert!(BYTES.load(Ordering::Relaxed) >= 1000);
    }

    /// Connections that never finish (or never read) hold their slot only until the
    /// timeout; over the limit the answer is 503 at once.
    #[tokio::test]
    async fn stalled_connections_are_bounded_and_closed_after_the_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("demesh_agccs12_3_6.bin"), [7u8; 1000]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let timeout = Duration::from_millis(400);
        let server = tokio::spawn(serve_on(
            listener,
            router(dir.path().to_owned(), MAX_ESP32_BYTES),
            timeout,
        ));
        let mut stalled = Vec::new();
        for _ in 0..MAX_CONCURRENT {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            // Half a request head, never finished.
            tcp.write_all(b"GET /demesh_agccs12_3_6.bin HTTP/1.1\r\n")
                .await
                .unwrap();
            stalled.push(tcp);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut over = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut answer = String::new();
        over.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
        // The stalled ones are closed by the server within the timeout.
        for tcp in &mut stalled {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest));
            assert!(read.await.is_ok(), "closed by the server");
        }
        // And the slots are free again.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /demesh_agccs12_3_6.bin HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        assert!(answer.ends_with(&[7u8; 1000]));
        // A client that asks for a large image and does not read it is cut off.
        let big = vec![1u8; MAX_ESP32_BYTES];
        std::fs::write(dir.path().join("demesh_agccs12_9_9.bin"), &big).unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut tcp = socket.connect(addr).await.unwrap();
        tcp.write_all(b"GET /demesh_agccs12_9_9.bin HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(timeout * 3).await;
        let mut got = Vec::new();
        let _ = tcp.read_to_end(&mut got).await;
        assert!(got.len() < big.len(), "cut off after {} bytes", got.len());
        server.abort();
    }
}
