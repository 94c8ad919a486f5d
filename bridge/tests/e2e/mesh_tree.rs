//! `mesh tree` as an operator runs it, beside the bridge binary on a real Mosquitto with
//! simulated bays: through the running bridge (its fleet API) and `--standalone` (the
//! `status` and `system` answers of the mesh), both showing the simulator's mesh with every
//! node under its parent; `mesh avrflash` through the bridge prints its progress as plain
//! lines when stdout is no terminal; `mesh cancel` of a job that does not exist fails with
//! a message, never hangs.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use ctrl22_testkit::sim::Simulator;
use serde_json::Value;

use crate::ota::{boards_known, ota_site};

const BAYS: usize = 4;

/// Every node of a nested `mesh tree --json` answer with its parent's MAC (`None` at a top).
fn edges(nodes: &Value, parent: Option<&str>, out: &mut Vec<(String, Option<String>)>) {
    for node in nodes.as_array().into_iter().flatten() {
        let mac = node["node"].as_str().unwrap_or_default().to_owned();
        out.push((mac.clone(), parent.map(str::to_owned)));
        edges(&node["children"], Some(&mac), out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_tree_shows_every_node_under_its_parent_with_and_without_the_bridge(
) -> anyhow::Result<()> {
    let ota = ota_site().await?;
    let (site, http, mut bridge) = (&ota.site, ota.http, ota.site.bridge()?);
    let sim = Simulator::start(&site.broker, &site.mesh, BAYS, 7);
    boards_known(http, BAYS).await?;
    let config = site.config.clone();
    let mesh = |args: &[&str]| {
        let mut command = std::process::Command::new(crate::bridge_binary());
        command.args(["mesh", "--config"]).arg(&config).args(args);
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            command.output().map(|o| (o, started.elapsed()))
        })
    };

    let mut trees = Vec::new();
    for args in [
        &["tree", "--json"][..],
        &["--standalone", "--wait", "3s", "tree", "--json"][..],
    ] {
        let (out, took) = mesh(args).await??;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_str(&stdout).context("tree --json")?;
        let mut found = Vec::new();
        edges(&json, None, &mut found);
        found.sort();
        eprintln!("{args:?} in {took:.1?}: {found:?}");
        ensure!(found.len() == BAYS, "{args:?}: {stdout}");
        ensure!(
            found.iter().filter(|(_, p)| p.is_none()).count() == 1
                && found.iter().any(|(_, p)| p.is_some()),
            "{args:?}: one root with children expected: {stdout}"
        );
        trees.push(found);
    }
    ensure!(
        trees[0] == trees[1],
        "the bridge's tree and the mesh's differ: {trees:?}"
    );

    // The text form: the root first, its children indented, board and versions on each line.
    let (out, _) = mesh(&["tree"]).await??;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.len() == BAYS, "{text}");
    ensure!(
        lines[0].contains("layer 1") && lines[1..].iter().all(|l| l.contains("─ ")),
        "{text}"
    );
    ensure!(
        lines
            .iter()
            .all(|l| l.contains("agccs12") && l.contains("avr 14")),
        "{text}"
    );
    eprintln!("{text}");

    // avrflash through the bridge, stdout no terminal: progress as plain lines.
    let image = ota.firmware.path().join("ctrl22_agccs12_15.hex");
    let image = image.to_string_lossy().into_owned();
    let (out, took) = mesh(&["avrflash", &sim.devs[2], &image, "--force"]).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.contains("avrflash ok: ver 15"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let progress: Vec<&str> = stdout.lines().filter(|l| l.ends_with('%')).collect();
    ensure!(
        progress.iter().any(|l| l.contains("transferring")) && progress.len() <= 20,
        "{stdout}"
    );
    eprintln!("avrflash in {took:.1?}:\n{stdout}");

    // No such job: an answer, not a hang.
    let (out, took) = mesh(&["cancel", "999999"]).await??;
    ensure!(
        !out.status.success() && took < Duration::from_secs(15),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "cancel of no job: {} in {took:.1?}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    bridge.kill();
    sim.stop().await;
    Ok(())
}
