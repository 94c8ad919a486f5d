//! An operator raises `smaxcur` of a bay through the running bridge: refused while the bay
//! is enabled (the sequencer owns it), allowed once it is disabled as far as the fuse has
//! room; then the bay is enabled and started again. The independent wire check reads every
//! message: at no instant may the bays together be allowed more than the fuse, neither
//! after the operator's writes on the disabled bay (which the node applies at once) nor
//! when the sequencer takes the bay back.
//!
//! Before the site counted an operator's write in the bay's reservation, `phases 123` then
//! `smaxcur 320` on the disabled bay both went out, and the wire check saw 33.0 A possible
//! on L1 against a 32 A fuse; now 32 A is refused as above the bay's 20 A cable (`400`),
//! 20 A goes through only where it fits, and 6 A goes through.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure};
use ctrl22_node::mesh::{Address, Command, MacAddr};
use ctrl22_testkit::wire::{WireMessage, WireRecord};
use serde_json::Value;

use crate::ota::{call, ota_site, two_bays_charging};

/// `PUT /api/v1/nodes/{dev}` `{"enabled": enabled}`.
pub(crate) async fn set_enabled(http: SocketAddr, dev: &str, enabled: bool) -> anyhow::Result<()> {
    let body = serde_json::json!({ "enabled": enabled }).to_string();
    let (status, answer) = call(http, "PUT", &format!("/api/v1/nodes/{dev}"), &body).await?;
    ensure!(status == 200, "{status} {answer}");
    Ok(())
}

/// Waits until `GET /api/v1/nodes/{dev}` satisfies `done`; returns that answer.
pub(crate) async fn node_until(
    http: SocketAddr,
    dev: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let mut last = Value::Null;
    for _ in 0..80 {
        let (status, body) = call(http, "GET", &format!("/api/v1/nodes/{dev}"), "").await?;
        if status == 200 {
            last = serde_json::from_str(&body)?;
            if done(&last) {
                return Ok(last);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("{dev}: not {what} after 20 s: {last:#}")
}

/// The parameter writes the bridge sent to `bay`, in wire order.
fn writes_to<R: WireRecord>(mesh: &str, records: &[R], bay: MacAddr) -> Vec<(String, i16)> {
    records
        .iter()
        .filter_map(|r| r.decode(mesh))
        .filter_map(|m| match m {
            WireMessage::Command {
                dst: Address::Node(d),
                cmd: Command::AvrSetPar { par, val },
            } if d == bay => Some((par.as_str().to_owned(), val)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_raise_on_a_disabled_bay_stays_within_the_fuse_when_it_is_enabled(
) -> anyhow::Result<()> {
    let ota = ota_site().await?;
    let (site, http, mut bridge) = (&ota.site, ota.http, ota.site.bridge()?);
    let sim = two_bays_charging(&ota).await?;
    let config = site.config.clone();
    let (dev, mac) = (sim.devs[0].clone(), sim.macs[0]);
    let setpar = |par: &str, value: &str| {
        let mut command = std::process::Command::new(crate::bridge_binary());
        command
            .args(["mesh", "--config"])
            .arg(&config)
            .args(["setpar", &dev, par, value]);
        tokio::task::spawn_blocking(move || command.output())
    };
    let written = |out: &std::process::Output, what: &str| {
        ensure!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(what),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };

    // Enabled: the sequencer's.
    let refused = setpar("smaxcur", "160").await??;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && stderr.contains("sequencer") && stderr.contains("409"),
        "{stderr}"
    );

    // Disabled: the bridge stops the bay (smaxcur 0, confirmed), the other bay may have the
    // whole fuse.
    set_enabled(http, &dev, false).await?;
    node_until(http, &dev, "stopped", |b| b["confirmed_a"] == 0.0).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    site.wire().check("after disabling the bay")?;

    // The operator's writes on the disabled bay are the operator's to make; the node applies
    // them at once, so the site counts them from the moment they are sent: all three phases
    // and 32 A would not fit beside the other bay's share of the fuse, 6 A does.
    written(&setpar("phases", "123").await??, "setpar phases 123 ok")?;
    // Above the bay's cable (20 A) is refused as such, whatever room the site has.
    let above = setpar("smaxcur", "320").await??;
    let stderr = String::from_utf8_lossy(&above.stderr);
    ensure!(
        !above.status.success() && stderr.contains("60..=200") && stderr.contains("400"),
        "{stderr}"
    );
    // 20 A fits only once the sequencer has taken the disabled bay back to phases 0 (its
    // write waits for no operator's, nor an operator's for it): either answer is safe, the
    // wire check below is what counts.
    let twenty = setpar("smaxcur", "200").await??;
    let stderr = String::from_utf8_lossy(&twenty.stderr);
    ensure!(
        twenty.status.success() || (stderr.contains("no room") && stderr.contains("409")),
        "{stderr}"
    );
    written(&setpar("smaxcur", "60").await??, "setpar smaxcur 60 ok")?;
    let after_raise = node_until(http, &dev, "heard after the raise", |_| true).await?;
    eprintln!(
        "after the raise: reserved {}, writes to the bay so far: {:?}",
        after_raise["reserved_a"],
        writes_to(&site.mesh, &site.watcher.messages(), mac)
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    site.wire().check("after the operator's raise")?;

    // Enabled again: the sequencer takes the bay back, from a reservation that covered the
    // raise, and both bays charge within the fuse.
    set_enabled(http, &dev, true).await?;
    // The bridge stopped the session when the bay was disabled; the operator starts it.
    let from = site.watcher.messages().len();
    let (status, body) = call(http, "POST", &format!("/api/v1/nodes/{dev}/start"), "").await?;
    ensure!(matches!(status, 200 | 202 | 204), "{status} {body}");
    let charging = site
        .wire()
        .wait_charging(from, 2, Duration::from_secs(40))
        .await;
    let writes = writes_to(&site.mesh, &site.watcher.messages(), mac);
    eprintln!("writes to the bay: {writes:?}");
    charging?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stats = site.wire().check("after enabling the bay")?;
    ensure!(
        writes.contains(&("smaxcur".to_owned(), 60)),
        "writes {writes:?}"
    );
    eprintln!("wire: {stats:?}");
    bridge.kill();
    sim.stop().await;
    Ok(())
}
