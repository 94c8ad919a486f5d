//! Validation against Home Assistant's own code: the newest release that installs on this
//! machine's Python (2024.3.3 on 3.11), in the venv `scripts/test.sh` creates (`.venv-ha`,
//! or `HA_VENV`). Both tests run the bridge binary against a real Mosquitto with simulated
//! bays (in process):
//!
//! - device-based discovery as the bridge publishes it, every component checked against that
//!   release's MQTT platform schemas (`ha-discovery/validate/validate_schemas.py`);
//! - Home Assistant running for real, the bridge in per-entity mode
//!   (`ha-discovery/validate/e2e_live.py`): entities, classes, units, values, service calls
//!   reaching the mesh, a controller firmware installed from the update entity (refused on a
//!   charging bay), unavailability when the bridge dies.
//!
//! A missing venv is a failure, not a skip: these are the only tests that run Home Assistant.

use crate::ha_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ctrl22_ha::ctrl22::{bay_device_id, site_device_id};
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::{Mosquitto, Recorder};
use ha_common::{start_bridge, write_config, MESH, PREFIX};

const BAYS: usize = 3;

fn validate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ha-discovery/validate")
}

/// The venv's python, or the way to make one.
fn ha_python() -> anyhow::Result<PathBuf> {
    let venv = std::env::var_os("HA_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-ha"),
        PathBuf::from,
    );
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

/// Runs `python args...` in `dir` (a neutral directory: Home Assistant's package names shadow
/// the standard library when run from inside its components) without blocking the runtime.
async fn run_python(
    python: PathBuf,
    dir: &Path,
    args: Vec<std::ffi::OsString>,
) -> anyhow::Result<()> {
    let dir = dir.to_path_buf();
    let status = tokio::task::spawn_blocking(move || {
        Command::new(python).current_dir(dir).args(args).status()
    })
    .await??;
    anyhow::ensure!(status.success(), "{status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_device_payloads_pass_home_assistant_schemas() -> anyhow::Result<()> {
    let python = ha_python()?;
    let started = Instant::now();
    let broker = Mosquitto::start()?;
    let dir = tempfile::tempdir()?;
    let site = "schema";
    let config = write_config(dir.path(), &broker, site, "device")?;
    let recorder = Recorder::connect(
        broker.port(),
        "ha-schema-watcher",
        &[&format!("{PREFIX}/device/+/config")],
    )
    .await?;
    let _bridge = start_bridge(&config)?;
    let simulator = Simulator::start(&broker, MESH, BAYS, 3);
    let wanted: Vec<String> = std::iter::once(site_device_id(site))
        .chain(simulator.devs.iter().map(|d| bay_device_id(d)))
        .map(|id| format!("{PREFIX}/device/{id}/config"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let latest = loop {
        let seen = recorder.messages();
        let latest: Vec<_> = wanted
            .iter()
            .filter_map(|t| {
                seen.iter()
                    .rev()
                    .find(|m| &m.topic == t && !m.payload.is_empty())
            })
            .cloned()
            .collect();
        if latest.len() == wanted.len() {
            break latest;
        }
        anyhow::ensure!(Instant::now() < deadline, "discovery of site and bays");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let dump = dir.path().join("discovery-device.jsonl");
    let lines: Vec<String> = latest
        .iter()
        .map(|m| serde_json::json!({"topic": m.topic, "payload": m.text()}).to_string())
        .collect();
    std::fs::write(&dump, lines.join("\n"))?;
    run_python(
        python,
        dir.path(),
        vec![
            validate_dir().join("validate_schemas.py").into(),
            "-v".into(),
            dump.into(),
        ],
    )
    .await?;
    eprintln!(
        "schema validation of the bridge's device payloads: {:.0?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_runs_the_bridge_entities_and_commands() -> anyhow::Result<()> {
    let python = ha_python()?;
    let started = Instant::now();
    let broker = Mosquitto::start()?;
    let _simulator = Simulator::start(&broker, MESH, BAYS, 5);
    let dir = tempfile::tempdir()?;
    run_python(
        python,
        dir.path(),
        vec![
            validate_dir().join("e2e_live.py").into(),
            "--bridge".into(),
            env!("CARGO_BIN_EXE_ctrl22-bridge").into(),
            "--broker-port".into(),
            broker.port().to_string().into(),
            "--nodes".into(),
            BAYS.to_string().into(),
            "--ota".into(),
        ],
    )
    .await?;
    eprintln!("live Home Assistant check: {:.0?}", started.elapsed());
    Ok(())
}
