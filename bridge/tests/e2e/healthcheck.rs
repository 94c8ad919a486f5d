//! `ctrl22-bridge healthcheck`, the container health check: exit 0 against a running bridge
//! found through its configuration (file or `CTRL22_CONFIG`), exit 1 when the bridge is gone,
//! answers anything but 200, or does not answer within the timeout; exit 2 on bad arguments.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use ctrl22_testkit::bridge::{http_get, BridgeConfig, BridgeProcess};
use ctrl22_testkit::{free_port, Mosquitto};

fn healthcheck(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctrl22-bridge"));
    c.env_remove("CTRL22_CONFIG").env_remove("RUST_LOG");
    c.arg("healthcheck").args(args);
    for (key, value) in env {
        c.env(key, value);
    }
    c.output().unwrap()
}

/// Runs the probe off the test's runtime, which must keep serving the answers.
async fn healthcheck_async(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    tokio::task::spawn_blocking(move || {
        healthcheck(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    })
    .await
    .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny HTTP server whose `/healthz` answers `status`.
async fn serve_healthz(status: StatusCode) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/healthz", get(move || async move { (status, "x\n") }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_bridge_is_healthy_and_a_stopped_one_is_not() {
    let broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut bridge_config = BridgeConfig::new(broker.url());
    let http: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    bridge_config.http_listen = http;
    let config = bridge_config.write(dir.path()).unwrap();
    let mut bridge =
        BridgeProcess::start(Path::new(env!("CARGO_BIN_EXE_ctrl22-bridge")), &config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(http, "/healthz").await.is_err() {
        assert!(bridge.is_running(), "the bridge exited");
        assert!(Instant::now() < deadline, "no /healthz within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // As the image's HEALTHCHECK runs it: no arguments, the configuration from CTRL22_CONFIG.
    let config_path = config.clone();
    let out = tokio::task::spawn_blocking(move || {
        healthcheck(&[], &[("CTRL22_CONFIG", config_path.as_path())])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let url = format!("http://{http}/healthz");
    let out = healthcheck_async(&["--url", &url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    bridge.kill();
    let config_arg = config.to_str().unwrap().to_owned();
    let out = healthcheck_async(&["--config", &config_arg]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_200_is_healthy() {
    let ok = serve_healthz(StatusCode::OK).await;
    let out = healthcheck_async(&["--url", &format!("http://{ok}/healthz")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let unavailable = serve_healthz(StatusCode::SERVICE_UNAVAILABLE).await;
    let out = healthcheck_async(&["--url", &format!("http://{unavailable}/healthz")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("503"), "{}", stderr(&out));

    let out = healthcheck_async(&["--url", &format!("http://{ok}/no-such-path")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_that_does_not_answer_fails_within_the_timeout() {
    // Accepts connections (the kernel does, from the backlog) but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/healthz", silent.local_addr().unwrap());
    let started = Instant::now();
    let out = healthcheck_async(&["--url", &url, "--timeout", "300ms"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no answer within 300 ms"),
        "{}",
        stderr(&out)
    );
    // Generous for a loaded machine; without the timeout the probe would wait forever.
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
}

#[test]
fn bad_arguments_exit_2() {
    for timeout in ["0s", "2h", "soon"] {
        let out = healthcheck(
            &["--url", "http://127.0.0.1:1/healthz", "--timeout", timeout],
            &[],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "--timeout {timeout}: {}",
            stderr(&out)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[http]\nlisten = \"nowhere\"\n").unwrap();
    let out = healthcheck(&["--config", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("http.listen"), "{}", stderr(&out));
    let out = healthcheck(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--url"));
}
