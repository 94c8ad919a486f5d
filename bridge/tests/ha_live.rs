//! Validation against Home Assistant's own code: the newest release that installs on this
//! machine's Python (2024.3.3 on 3.11), in the venv `scripts/test.sh` creates (`.venv-ha`,
//! or `HA_VENV`).
//!
//! - the device-based discovery payloads, component by component, against that release's MQTT
//!   platform schemas (`ha-discovery/validate/check.sh`);
//! - Home Assistant running for real with Mosquitto, this bridge in per-entity mode and the
//!   simulator (`ha-discovery/validate/e2e_live.py`): entities, classes, units, values, service
//!   calls reaching the mesh, unavailability when the bridge dies.
//!
//! A missing venv is a failure, not a skip: these are the only tests that run Home Assistant.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The venv's python, or the way to make one.
fn ha_python() -> anyhow::Result<PathBuf> {
    let venv = std::env::var_os("HA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-ha"));
    let python = venv.join("bin").join("python");
    anyhow::ensure!(
        python.exists(),
        "no Home Assistant venv at {}: run scripts/test.sh (it creates it), or \
         ha-discovery/validate/venv.sh {} and set HA_VENV",
        venv.display(),
        venv.display(),
    );
    Ok(python)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the simulator binary (another package's, so Cargo does not build it for this test)
/// and returns its path.
fn simulator_binary() -> anyhow::Result<PathBuf> {
    let output = cargo()
        .current_dir(repo_root())
        .args([
            "build",
            "-p",
            "ctrl22-node",
            "--features",
            "sim",
            "--bin",
            "ctrl22-node-sim",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()?;
    anyhow::ensure!(output.status.success(), "building ctrl22-node-sim failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .find(|p| p.file_name().is_some_and(|n| n == "ctrl22-node-sim"))
        .ok_or_else(|| anyhow::anyhow!("cargo named no ctrl22-node-sim executable"))
}

#[test]
fn device_payloads_pass_home_assistant_schemas() -> anyhow::Result<()> {
    let python = ha_python()?;
    let venv = python
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow::anyhow!("{} is not in a venv", python.display()))?;
    let started = Instant::now();
    let status = Command::new(repo_root().join("ha-discovery/validate/check.sh"))
        .arg(venv)
        .status()?;
    eprintln!("schema validation: {:.0?}", started.elapsed());
    anyhow::ensure!(status.success(), "check.sh: {status}");
    Ok(())
}

#[test]
fn home_assistant_runs_the_bridge_entities_and_commands() -> anyhow::Result<()> {
    let python = ha_python()?;
    let simulator = simulator_binary()?;
    // A neutral working directory: Home Assistant's package names shadow the standard library
    // when run from inside its components.
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let status = Command::new(python)
        .current_dir(dir.path())
        .arg(repo_root().join("ha-discovery/validate/e2e_live.py"))
        .arg("--bridge")
        .arg(env!("CARGO_BIN_EXE_ctrl22-bridge"))
        .arg("--sim")
        .arg(simulator)
        .status()?;
    eprintln!("live Home Assistant check: {:.0?}", started.elapsed());
    anyhow::ensure!(status.success(), "e2e_live.py: {status}");
    Ok(())
}
