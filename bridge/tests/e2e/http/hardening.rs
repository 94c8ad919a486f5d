//! The bounds on outside input: the time to send a request head and to answer, connections
//! at once, `limit=`, live streams, the `Host` of a loopback listener. Each refusal is counted
//! under its kind and changes nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ctrl22_bridge::http::HttpOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use super::fixture::{fixture, raw, raw_get, Setup, TOKEN};

fn loopback() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_request_head_is_dropped() {
    let f = fixture(Setup {
        options: HttpOptions {
            listen: loopback(),
            header_timeout: Duration::from_millis(300),
            ..HttpOptions::default()
        },
        ..Setup::default()
    })
    .await;
    for half in ["GET /heal", ""] {
        let started = Instant::now();
        let answer = raw(f.addr(), half).await;
        let took = started.elapsed();
        assert!(!answer.contains("200 OK"), "{half:?}: {answer}");
        assert!(
            took >= Duration::from_millis(250),
            "{half:?}: dropped after {took:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{half:?}: dropped after {took:?}"
        );
    }
    f.counted("http_header_timeout", 2).await;
    // A whole request in time is served.
    assert!(raw_get(f.addr(), "/healthz", "localhost")
        .await
        .starts_with("HTTP/1.1 200"));
    // An idle keep-alive connection does not hold its slot for ever either: the wait for
    // the next request head has the same timeout.
    let mut tcp = tokio::net::TcpStream::connect(f.addr()).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0_u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(matches!(rest, Ok(Ok(0) | Err(_))), "still open: {rest:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // ... and that is no refusal: still the two above.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(f.site.snapshot().rejected["http_header_timeout"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_times_out_with_408_and_changes_nothing() {
    let f = fixture(Setup {
        options: HttpOptions {
            listen: loopback(),
            request_timeout: Duration::from_millis(400),
            ..HttpOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let before = f.site.snapshot().limit_a;
    let started = Instant::now();
    let answer = raw(
        f.addr(),
        &format!(
            "PUT /api/v1/site HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"max_current\":"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    f.counted("http_request_timeout", 1).await;
    assert_eq!(f.site.snapshot().limit_a, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_get_503_until_one_closes() {
    let f = fixture(Setup {
        options: HttpOptions {
            listen: loopback(),
            max_connections: 2,
            ..HttpOptions::default()
        },
        ..Setup::default()
    })
    .await;
    // Two idle keep-alive connections hold both slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = tokio::net::TcpStream::connect(f.addr()).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0_u8; 512];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(tcp);
    }
    let refused = raw_get(f.addr(), "/healthz", "localhost").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("too many connections"), "{refused}");
    f.counted("http_connections", 1).await;

    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = raw_get(f.addr(), "/healthz", "localhost").await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot never came back: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_is_bounded() {
    let f = fixture(Setup::default()).await;
    for uri in [
        "/api/v1/sessions?limit=10001",
        "/api/v1/events?limit=4000000000",
    ] {
        let answer = f.get(uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(answer.error().contains("10000"), "{uri}: {}", answer.text);
    }
    for uri in ["/api/v1/sessions?limit=10000", "/api/v1/events?limit=10000"] {
        assert_eq!(f.get(uri).await.status, StatusCode::OK, "{uri}");
    }
    f.counted("http", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_over_the_cap_get_503_until_one_ends() {
    let f = fixture(Setup {
        options: HttpOptions {
            max_sse_clients: 2,
            ..HttpOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let open = || async {
        f.app
            .clone()
            .oneshot(Request::get("/api/v1/stream").body(Body::empty()).unwrap())
            .await
            .unwrap()
    };
    let first = open().await;
    let second = open().await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    let third = f.get("/api/v1/stream").await;
    assert_eq!(third.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(third.error().contains("max_sse_clients"), "{}", third.text);
    f.counted("http_sse", 1).await;
    // A client that goes away gives its place back.
    drop(first);
    assert_eq!(open().await.status(), StatusCode::OK);
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_listener_answers_only_to_its_own_names() {
    let f = fixture(Setup {
        options: HttpOptions {
            listen: loopback(),
            allowed_hosts: vec!["bridge.lan".to_owned()],
            ..HttpOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let dev = f.devs[0].clone();
    let before = f.bay(&dev).settings;
    let auth = format!("Bearer {TOKEN}");
    let evil = f
        .call(
            "PUT",
            &format!("/api/v1/nodes/{dev}"),
            &[("host", "evil.example"), ("authorization", &auth)],
            r#"{"mode":"off"}"#,
        )
        .await;
    assert_eq!(
        evil.status,
        StatusCode::MISDIRECTED_REQUEST,
        "{}",
        evil.text
    );
    assert!(evil.error().contains("evil.example"), "{}", evil.text);
    let read = f
        .call("GET", "/api/v1/site", &[("host", "evil.example:8080")], "")
        .await;
    assert_eq!(read.status, StatusCode::MISDIRECTED_REQUEST);
    f.counted("http_host", 2).await;
    assert_eq!(f.bay(&dev).settings, before, "nothing changed");

    for host in ["localhost:8080", "127.0.0.1", "[::1]:80", "bridge.lan:8080"] {
        let answer = f.call("GET", "/api/v1/site", &[("host", host)], "").await;
        assert_eq!(answer.status, StatusCode::OK, "{host}");
    }
    // The same over the socket.
    let port = f.addr().port();
    let ok = raw_get(f.addr(), "/api/v1/site", &format!("localhost:{port}")).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let refused = raw_get(f.addr(), "/healthz", "rebound.evil.example").await;
    assert!(refused.starts_with("HTTP/1.1 421"), "{refused}");
    f.counted("http_host", 3).await;
}
