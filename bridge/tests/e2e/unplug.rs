//! End to end, a car leaving: 20 simulated bays on a 3x32 A site over a real Mosquitto, so
//! the bays charging are capped. When one charging car is unplugged (the simulator's
//! simulator-only `simctl` topic), the current it frees must reach another, limited bay
//! within one control cycle plus the mesh round trips, and the fuse must hold throughout.

use std::collections::HashMap;
use std::time::Duration;

use ctrl22_node::mesh::{Address, Command, MacAddr, NodeMessage};
use ctrl22_node::CcssGroup;
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::wire::{self, WireMessage, WireRecord};
use ctrl22_testkit::Recorded;

use crate::mqtt_site::MqttSite;

/// One control cycle (1 s) plus the mesh round trips of the lowering and its reply, with
/// room for a loaded machine.
const UNPLUG_TO_RAISE: Duration = Duration::from_secs(3);

/// `smaxcur` raises in `records` from `from` on: (index, bay, old, new). A bay's first
/// setpoint counts as a raise from 0.
fn raises(mesh: &str, records: &[Recorded], from: usize) -> Vec<(usize, MacAddr, i16, i16)> {
    let mut last: HashMap<MacAddr, i16> = HashMap::new();
    let mut found = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(WireMessage::Command {
            dst: Address::Node(mac),
            cmd: Command::AvrSetPar { par, val },
        }) = r.decode(mesh)
        {
            if par.as_str() != "smaxcur" {
                continue;
            }
            let old = last.insert(mac, val).unwrap_or(0);
            if i >= from && val > old {
                found.push((i, mac, old, val));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_car_frees_current_for_a_limited_bay_within_a_cycle() -> anyhow::Result<()> {
    let site = MqttSite::start().await?;
    let (broker, mesh, watcher) = (&site.broker, &site.mesh, &site.watcher);

    let mut bridge = site.bridge()?;
    let simulator = Simulator::start(broker, mesh, 20, 7);
    let wire = site.wire();

    // Steady state: bays charge, capped, and no raise has gone out for a while (so the raise
    // after the unplug is its consequence, not the tail of the start-up).
    wire.wait_charging(0, 4, Duration::from_secs(40)).await?;
    let quiet_deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let records = watcher.messages();
        let quiet_since = records
            .last()
            .map(|r| r.at - Duration::from_secs(3))
            .unwrap_or_else(std::time::Instant::now);
        let recent = raises(mesh, &records, 0)
            .iter()
            .any(|(i, ..)| records[*i].at >= quiet_since);
        if !recent || tokio::time::Instant::now() > quiet_deadline {
            break;
        }
    }
    wire.check("steady state")?;

    // The charging bay with the highest current leaves.
    let records = watcher.messages();
    let latest = wire::latest_heartbeats(mesh, &records);
    let (&leaving, _) = latest
        .iter()
        .filter(|(_, hb)| hb.ccss.group() == CcssGroup::C)
        .max_by_key(|(_, hb)| hb.cur.iter().map(|c| c.get()).max())
        .ok_or_else(|| anyhow::anyhow!("no bay charges"))?;
    let limited = latest
        .values()
        .filter(|hb| hb.ccss.group() == CcssGroup::C && hb.amaxcur.get() < hb.cmaxcur.get())
        .count();
    assert!(limited >= 2, "bays are capped by the site: {latest:#?}");
    let unplug_from = records.len();
    watcher
        .publish(
            &format!("/{mesh}/{}/simctl", leaving.topic_form()),
            r#"{"car":"leave"}"#,
        )
        .await?;

    // The unplug as the bridge hears it: the bay's first heartbeat without a cable.
    let gone = watcher
        .wait_for(Duration::from_secs(5), "the unplug heartbeat", |r| {
            matches!(
                r.decode(mesh),
                Some(WireMessage::Uplink { src, msg: NodeMessage::Heartbeat(hb) })
                    if src == leaving && hb.cmaxcur.get() <= 0
            )
        })
        .await?;
    let deadline = tokio::time::Instant::now() + UNPLUG_TO_RAISE + Duration::from_secs(5);
    let (raise, raised_from) = loop {
        let records = watcher.messages();
        let first = raises(mesh, &records, unplug_from)
            .into_iter()
            .find(|(i, mac, ..)| *mac != leaving && records[*i].at >= gone.at);
        if let Some((i, _, old, _)) = first {
            break (records[i].clone(), old);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no other bay was raised after the unplug"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let latency = raise.at.duration_since(gone.at);
    eprintln!(
        "unplug heartbeat -> raise: {latency:?} ({} from {raised_from}: {})",
        raise.topic,
        raise.text()
    );
    assert!(
        latency <= UNPLUG_TO_RAISE,
        "the freed current reached another bay only after {latency:?}"
    );

    // The car comes back; everything stays within the fuse.
    watcher
        .publish(
            &format!("/{mesh}/{}/simctl", leaving.topic_form()),
            r#"{"car":"arrive"}"#,
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let stats = wire.check("through unplug and arrival")?;
    eprintln!("wire stats: {stats:?}");

    bridge.kill();
    simulator.stop().await;
    Ok(())
}
