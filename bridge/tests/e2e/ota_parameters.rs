//! `mesh getpar`/`setpar` beside a running bridge go through its API: the bridge sends the
//! command and hands back the node's reply (a tool on the broker could lose it to the
//! bridge), and refuses to let an operator write what its sequencer owns on an enabled bay.

use anyhow::ensure;
use ctrl22_node::mesh::{Address, Command};
use ctrl22_testkit::wire::{WireMessage, WireRecord};

use crate::ota::{call, ota_site, two_bays_charging};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ota_parameters_go_through_the_running_bridge() -> anyhow::Result<()> {
    let ota = ota_site().await?;
    let (site, http, mut bridge) = (&ota.site, ota.http, ota.site.bridge()?);
    let sim = two_bays_charging(&ota).await?;
    let config = site.config.clone();
    let dev = sim.devs[0].clone();
    let mesh = |args: &[&str]| {
        let mut command = std::process::Command::new(crate::bridge_binary());
        command.args(["mesh", "--config"]).arg(&config).args(args);
        tokio::task::spawn_blocking(move || command.output())
    };

    let read = mesh(&["getpar", &dev, "wdtsec"]).await??;
    let stdout = String::from_utf8_lossy(&read.stdout);
    ensure!(
        read.status.success()
            && stdout.contains("getpar wdtsec")
            && stdout.contains("through the bridge"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&read.stderr)
    );

    // What the sequencer writes is the bridge's while the bay is enabled.
    let refused = mesh(&["setpar", &dev, "smaxcur", "320"]).await??;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && stderr.contains("sequencer") && stderr.contains("409"),
        "{stderr}"
    );
    // Anything else goes through, its reply handed back even while the sequencer writes.
    let blinks = mesh(&["setpar", &dev, "blinks", "3"]).await??;
    ensure!(
        blinks.status.success()
            && String::from_utf8_lossy(&blinks.stdout).contains("setpar blinks 3 ok"),
        "{}{}",
        String::from_utf8_lossy(&blinks.stdout),
        String::from_utf8_lossy(&blinks.stderr)
    );
    // A disabled bay is the operator's.
    let (status, body) = call(
        http,
        "PUT",
        &format!("/api/v1/nodes/{dev}"),
        r#"{"enabled":false}"#,
    )
    .await?;
    ensure!(status == 200, "{status} {body}");
    let written = mesh(&["setpar", &dev, "fsafecur", "60"]).await??;
    ensure!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let (status, body) = call(
        http,
        "GET",
        &format!("/api/v1/nodes/{dev}/parameters/fsafecur"),
        "",
    )
    .await?;
    // The sequencer takes a disabled bay's fail-safe back to 0 once the operator's write
    // is answered (it now knows the node may hold 60).
    ensure!(
        status == 200 && (body.contains("\"value\":60") || body.contains("\"value\":0")),
        "{status} {body}"
    );
    let (status, body) = call(http, "GET", "/api/v1/nodes/nosuchbay/parameters/ver", "").await?;
    ensure!(status == 404, "{status} {body}");

    // The operator's writes went out once each, from the bridge.
    let records = site.watcher.messages();
    let sent = |name: &str| {
        records
            .iter()
            .filter_map(|r| r.decode(&site.mesh))
            .filter(|m| matches!(m, WireMessage::Command { dst: Address::Node(d), cmd: Command::AvrSetPar { par, .. } } if *d == sim.macs[0] && par.as_str() == name))
            .count()
    };
    ensure!(
        sent("blinks") == 1 && sent("fsafecur") >= 1,
        "blinks {} fsafecur {}",
        sent("blinks"),
        sent("fsafecur")
    );
    site.wire()
        .check("operator parameters through the bridge")?;
    bridge.kill();
    sim.stop().await;
    Ok(())
}
