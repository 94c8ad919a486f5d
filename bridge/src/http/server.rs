//! The accept loop: at most `max_connections` at once (the next one gets a 503 and is
//! closed), HTTP/1.1 with a header-read timeout, so a client that never finishes its request
//! head (slowloris) is dropped instead of holding a connection for ever.
//!
//! `axum::serve` has neither bound. HTTP/1.1 only: the dashboard and API clients need no
//! more, and hyper-util's HTTP/1-or-2 detection waits for the first bytes without a timeout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::refusal::Refusals;

/// What a connection over the limit is told before it is closed.
fn busy() -> Vec<u8> {
    let body = "{\"error\":\"too many connections; try again later\"}\n";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The bounds of the accept loop.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) max_connections: usize,
    pub(super) header_timeout: Duration,
}

/// Serves `routes` on `listener` until the task is aborted (which ends every connection).
pub(super) async fn serve(
    listener: TcpListener,
    routes: Router,
    limits: Limits,
    refusals: Arc<Refusals>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let busy = busy();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer, permit) = next_connection(&listener, &permits, "HTTP", &busy, |peer| {
            refusals.refuse(
                "http_connections",
                &format!("{peer}: already {} connections", limits.max_connections),
            );
        })
        .await;
        // A browser leaves a connection idle after its requests; that ends on the same
        // timeout but is no refusal. Only a connection that never sent a whole request
        // head is counted.
        let answered = Arc::new(AtomicBool::new(false));
        let service = TowerToHyperService::new(routes.clone().map_request({
            let answered = Arc::clone(&answered);
            move |request: Request<Incoming>| {
                answered.store(true, Ordering::Relaxed);
                request
            }
        }));
        let refusals = Arc::clone(&refusals);
        connections.spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            match served {
                Ok(()) => {}
                Err(e) if e.is_timeout() && !answered.load(Ordering::Relaxed) => refusals.refuse(
                    "http_header_timeout",
                    &format!(
                        "{peer}: no complete request head within {:?}",
                        limits.header_timeout
                    ),
                ),
                Err(e) => tracing::debug!("HTTP connection from {peer}: {e}"),
            }
        });
    }
}

/// The next connection with its slot of `permits`. An accept error (out of file descriptors,
/// a peer gone before accept) waits a little rather than spin; a connection over the limit
/// is answered `busy` and closed, and `on_busy` is told of it.
pub(crate) async fn next_connection(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    server: &str,
    busy: &[u8],
    mut on_busy: impl FnMut(SocketAddr),
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("{server} accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match Arc::clone(permits).try_acquire_owned() {
            Ok(permit) => return (tcp, peer, permit),
            Err(_) => {
                // A fresh socket's send buffer takes these few bytes at once; no waiting on
                // the peer in the accept loop.
                let _ = tcp.try_write(busy);
                on_busy(peer);
            }
        }
    }
}
