//! The dashboard in a real browser: runs `e2e/dashboard.mjs` (Playwright driving the Debian
//! `chromium`). Against `ctrl22-bridge demo`: the page must load, list the bays, and a mode
//! change made on the page must reach the bay on the mesh. Against a bridge with
//! `protect_reads`, served under a path prefix as Home Assistant's ingress does: the page
//! shows only its login form, logs in through it, its stream, controls and CSV link work with
//! the login cookie, and logging out ends it. Screenshots land in `test-artifacts/` at the
//! workspace root.
//!
//! These tests fail, never skip, when Node, the npm packages or Chromium are missing:
//! `scripts/test.sh` installs them (`apt-get install chromium`, `npm ci --prefix e2e`).

#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::Router;
use ctrl22_bridge::http::HttpOptions;

use crate::http::fixture;

/// The whole run (bridge start, browser, mesh check, screenshots) normally takes ~20 s.
const TIMEOUT: Duration = Duration::from_secs(90);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Runs the script with `args` and `--out test-artifacts`; panics with its output if it fails.
pub(crate) fn run_script(args: &[OsString]) {
    let root = workspace();
    let chromium =
        std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    assert!(
        chromium.exists(),
        "{} is missing: apt-get install chromium (scripts/test.sh does)",
        chromium.display()
    );
    assert!(
        root.join("e2e/node_modules/playwright-core").is_dir(),
        "e2e/node_modules is missing: npm ci --prefix e2e (scripts/test.sh does)"
    );
    let out = root.join("test-artifacts");
    let mut child = Command::new("node")
        .arg(root.join("e2e/dashboard.mjs"))
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("--chromium")
        .arg(&chromium)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node cannot start ({e}): install Node.js"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        status.success(),
        "browser test failed after {:?}:\n{text}",
        started.elapsed()
    );
    println!("{text}");
}

#[test]
fn dashboard_changes_a_bay_mode_that_reaches_the_mesh() {
    run_script(&[
        "--bridge".into(),
        env!("CARGO_BIN_EXE_ctrl22-bridge").into(),
    ]);
    assert!(workspace().join("test-artifacts/dashboard.png").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_logs_in_under_a_path_prefix_with_protect_reads() {
    let f = fixture::fixture(fixture::Setup {
        options: HttpOptions {
            protect_reads: true,
            ..HttpOptions::default()
        },
        ..fixture::Setup::default()
    })
    .await;
    // What Home Assistant's ingress proxy does: the page lives under a prefix, which the
    // proxy strips before it forwards to the bridge.
    let prefix = "/api/hassio_ingress/Xy7_token";
    let strip = move |mut request: Request| {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let inner = path.strip_prefix(prefix).unwrap_or("/not-under-the-prefix");
        *request.uri_mut() = inner.parse().unwrap();
        request
    };
    let app = Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .map_request(strip)
            .service(f.app.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let broker = f.broker.url();
    let mqtt_port = broker.rsplit(':').next().unwrap().to_owned();
    let args: Vec<OsString> = [
        "--url".to_owned(),
        format!("http://{addr}{prefix}/"),
        "--mqtt-port".to_owned(),
        mqtt_port,
        "--token".to_owned(),
        fixture::TOKEN.to_owned(),
        "--bays".to_owned(),
        fixture::BAYS.to_string(),
        "--login".to_owned(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    tokio::task::spawn_blocking(move || run_script(&args))
        .await
        .unwrap();
    assert!(workspace()
        .join("test-artifacts/dashboard-login-form.png")
        .is_file());
    server.abort();
}
