//! The dashboard in a real browser: runs `e2e/dashboard.mjs` (Playwright driving the Debian
//! `chromium`) against `ctrl22-bridge demo`. The page must load, list the bays, and a mode
//! change made on the page must reach the bay on the mesh. Screenshots land in
//! `test-artifacts/` at the workspace root.
//!
//! This test fails, never skips, when Node, the npm packages or Chromium are missing:
//! `scripts/test.sh` installs them (`apt-get install chromium`, `npm ci --prefix e2e`).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole test (demo start, browser, mesh check, screenshots) normally takes ~20 s.
const TIMEOUT: Duration = Duration::from_secs(90);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn dashboard_changes_a_bay_mode_that_reaches_the_mesh() {
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
        .arg("--bridge")
        .arg(env!("CARGO_BIN_EXE_ctrl22-bridge"))
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
    assert!(
        out.join("dashboard.png").is_file(),
        "no screenshot:\n{text}"
    );
    println!("{text}");
}
