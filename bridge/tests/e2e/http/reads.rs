//! Reads: every resource, the docs and the dashboard, sessions and events, metrics, the
//! live stream, readiness.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use ctrl22_bridge::config::Config;
use ctrl22_bridge::http::{self, HttpOptions};
use ctrl22_bridge::runtime::Bridge;
use futures::StreamExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::fixture::{fixture, raw_get, Setup, BAYS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_site_bays_health_docs_and_dashboard() {
    let f = fixture(Setup::default()).await;

    let site = f.get("/api/v1/site").await;
    assert_eq!(site.status, StatusCode::OK);
    let site = site.json();
    assert_eq!(site["limit_a"], json!([32.0, 32.0, 32.0]));
    assert_eq!(site["mesh_connected"], json!(true));
    assert!(site.get("bays").is_none(), "bays have their own resource");

    let nodes = f.get("/api/v1/nodes").await.json();
    assert_eq!(nodes.as_array().unwrap().len(), BAYS);
    let dev = &f.devs[0];
    let node = f.get(&format!("/api/v1/nodes/{dev}")).await;
    assert_eq!(node.status, StatusCode::OK);
    assert_eq!(node.json()["dev"], json!(dev));
    let missing = f.get("/api/v1/nodes/001122334455").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.error().contains("001122334455"));

    assert_eq!(f.get("/healthz").await.status, StatusCode::OK);
    let ready = f.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);

    let unknown = f.get("/api/v1/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(!unknown.error().is_empty());

    // The OpenAPI document parses and describes every API route.
    let doc = f.get("/api/v1/openapi.json").await.json();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    for path in [
        "/api/v1/site",
        "/api/v1/nodes",
        "/api/v1/nodes/{dev}",
        "/api/v1/nodes/{dev}/{action}",
        "/api/v1/sessions",
        "/api/v1/events",
        "/api/v1/history",
        "/api/v1/stream",
        "/api/v1/auth",
        "/api/v1/login",
        "/api/v1/logout",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} not in openapi.json"
        );
    }

    // The dashboard and its assets come from the binary, with nothing from elsewhere, and
    // every URL relative: under a path prefix (Home Assistant ingress) they stay under it.
    let page = f.get("/").await;
    assert!(page.content_type.starts_with("text/html"));
    for asset in ["app.js", "style.css", "favicon.svg"] {
        assert!(
            page.text.contains(&format!("\"{asset}\"")),
            "{asset} not linked"
        );
        let answer = f.get(&format!("/{asset}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{asset}");
        assert!(!answer.text.is_empty());
    }
    assert!(!page.text.contains("http://") && !page.text.contains("https://"));
    let script = f.get("/app.js").await.text;
    for text in [&page.text, &script] {
        for absolute in ["=\"/", "('/", "(\"/", "`/", "'/api", "\"/api"] {
            assert!(!text.contains(absolute), "an absolute URL ({absolute}...)");
        }
    }

    let history = f.get("/api/v1/history").await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(!history.json().as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_as_json_and_csv_with_filters_and_events() {
    let f = fixture(Setup::default()).await;
    let all = f.get("/api/v1/sessions").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.json().as_array().unwrap().len(), 2);

    let day2 = f
        .get("/api/v1/sessions?from=1970-01-03&to=1970-01-04")
        .await
        .json();
    assert_eq!(day2.as_array().unwrap().len(), 1);
    assert_eq!(day2[0]["bay"], json!("aa0000000002"));
    let by_bay = f
        .get("/api/v1/sessions?bay=aa0000000001&limit=5")
        .await
        .json();
    assert_eq!(by_bay.as_array().unwrap().len(), 1);
    let by_ms = f.get("/api/v1/sessions?from=172800000").await.json();
    assert_eq!(by_ms.as_array().unwrap().len(), 1);

    let csv = f
        .call("GET", "/api/v1/sessions", &[("accept", "text/csv")], "")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type.starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", csv.text);
    assert!(lines[0].starts_with("id,bay,started"));
    assert!(lines[1].contains("'=cmd"), "formula defused: {}", lines[1]);
    let csv2 = f.get("/api/v1/sessions?format=csv&bay=aa0000000002").await;
    assert_eq!(csv2.text.lines().count(), 2);

    for bad in [
        "/api/v1/sessions?from=yesterday",
        "/api/v1/sessions?to=2026-13-01",
        "/api/v1/sessions?format=xml",
        "/api/v1/sessions?limit=-1",
        "/api/v1/sessions?colour=red",
    ] {
        let answer = f.get(bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!answer.error().is_empty());
    }

    let events = f.get("/api/v1/events?limit=10").await;
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(events.json()[0]["text"], json!("started"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_sessions_are_unavailable_but_ready() {
    let f = fixture(Setup {
        store: false,
        ..Setup::default()
    })
    .await;
    let answer = f.get("/api/v1/sessions").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.error().contains("no store"));
    assert_eq!(f.get("/readyz").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_prometheus_text() {
    let f = fixture(Setup::default()).await;
    // One refused request, so the rejected counter has a row.
    f.put("/api/v1/site", "{").await;
    f.rejected_http().await;
    let answer = f.get("/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer
        .content_type
        .starts_with("application/openmetrics-text"));
    let text = &answer.text;
    let dev = &f.devs[0];
    for needle in [
        format!("ctrl22_bay_current_amperes{{bay=\"{dev}\",phase=\"L1\"}}"),
        format!("ctrl22_bay_power_watts{{bay=\"{dev}\"}}"),
        format!("ctrl22_bay_energy_wh_total{{bay=\"{dev}\"}}"),
        format!("ctrl22_bay_state{{bay=\"{dev}\",state=\""),
        format!("ctrl22_bay_online{{bay=\"{dev}\"}} 1"),
        "ctrl22_site_reserved_amperes{phase=\"L3\"}".to_owned(),
        "ctrl22_site_limit_amperes{phase=\"L1\"} 32".to_owned(),
        "ctrl22_site_measured_amperes{phase=\"L2\"}".to_owned(),
        "ctrl22_rejected_input_total{kind=\"http\"} 1".to_owned(),
        "ctrl22_mesh_connected 1".to_owned(),
        "# TYPE ctrl22_control_cycle_seconds histogram".to_owned(),
        "ctrl22_control_cycle_seconds_bucket{le=\"+Inf\"}".to_owned(),
        "# TYPE ctrl22_bay_energy_wh counter".to_owned(),
        "# EOF".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} missing in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_sends_snapshots_at_most_once_a_second() {
    let f = fixture(Setup::default()).await;
    let response = f
        .app
        .clone()
        .oneshot(Request::get("/api/v1/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = response.into_body().into_data_stream();
    let started = tokio::time::Instant::now();
    let mut events = 0;
    let mut text = String::new();
    while events < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        events = text.matches("event: snapshot").count();
    }
    // The first at once, then one a second: three take at least two seconds.
    assert!(started.elapsed() >= Duration::from_millis(1900));
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let snapshot: Value = serde_json::from_str(data).unwrap();
    assert_eq!(snapshot["bays"].as_array().unwrap().len(), BAYS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_when_the_store_cannot_open_and_the_server_listens() {
    let f = fixture(Setup::default()).await;
    // A store under a file: the directory cannot exist.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let options = HttpOptions {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        token: None,
        store: Some(blocker.path().join("sub/http.db")),
        ..HttpOptions::default()
    };
    let server = http::spawn(options, f.site.clone()).await.unwrap();
    let addr = server.addr;
    let get = |path: &'static str| raw_get(addr, path, "localhost");
    assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
    let ready = get("/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("cannot open the store"), "{ready}");
    drop(server);

    // The port is taken: spawn says so.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let options = HttpOptions {
        listen: Some(taken.local_addr().unwrap()),
        ..HttpOptions::default()
    };
    let e = http::spawn(options, f.site.clone()).await.unwrap_err();
    assert!(format!("{e:#}").contains("[http] listen"), "{e:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_mesh_link_is_down() {
    let mut config = Config::default();
    // Nothing listens there: the link never comes up.
    config.mqtt.url = format!("mqtt://127.0.0.1:{}", ctrl22_testkit::free_port().unwrap());
    let store_dir = tempfile::tempdir().unwrap();
    config.storage.path = store_dir.path().join("readyz.db");
    let bridge = Bridge::start(&config).await.unwrap();
    let (app, _observer) = http::app(HttpOptions::default(), bridge.handle.clone());
    let response = app
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&text).contains("mesh link down"));
}
