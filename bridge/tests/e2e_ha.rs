//! Home Assistant end to end over a real Mosquitto: the bridge binary with device-based
//! discovery, three simulated bays, and a recorder standing in for Home Assistant. It checks
//! what Home Assistant would see (discovery for every bay after the site device, state equal
//! to what the nodes report), that its commands reach the mesh and nonsense does not, that
//! `homeassistant/status` `online` brings a new announcement, and that a killed bridge turns
//! everything unavailable through its last will.

use std::time::{Duration, Instant};

use ctrl22_ha::ctrl22::{bay_device_id, site_device_id, BayCommand, Topics};
use ctrl22_node::mesh::{
    decode_command_mqtt, decode_uplink_mqtt, Address, Command as MeshCommand, Heartbeat,
    NodeMessage,
};
use ctrl22_testkit::{Mosquitto, Recorded, Recorder};
use serde_json::Value;

mod ha_common;

use ctrl22_testkit::sim::Simulator;
use ha_common::{start_bridge, write_config, MESH, PREFIX};

const SITE: &str = "e2e";
const BAYS: usize = 3;
const WAIT: Duration = Duration::from_secs(30);

/// `smaxcur` writes to `dev` in `messages`, in order.
fn setpoints<'a>(
    messages: &'a [Recorded],
    dev: &'a str,
) -> impl Iterator<Item = (Instant, i16)> + 'a {
    messages.iter().filter_map(move |m| {
        let (Address::Node(mac), MeshCommand::AvrSetPar { par, val }) =
            decode_command_mqtt(MESH, &m.topic, &m.payload).ok()?
        else {
            return None;
        };
        (par.as_str() == "smaxcur" && mac.topic_form().to_string() == dev).then_some((m.at, val))
    })
}

fn heartbeats_of<'a>(messages: &'a [Recorded], dev: &'a str) -> Vec<(usize, Heartbeat)> {
    messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.topic == format!("/{MESH}/{dev}/heartbeat"))
        .filter_map(
            |(i, m)| match decode_uplink_mqtt(MESH, &m.topic, &m.payload) {
                Ok((_, NodeMessage::Heartbeat(hb))) => Some((i, hb)),
                _ => None,
            },
        )
        .collect()
}

fn json(m: &Recorded) -> Value {
    serde_json::from_slice(&m.payload).unwrap_or(Value::Null)
}

fn amps(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Whether a bay's state payload says what the heartbeat said.
fn state_matches(state: &Value, hb: &Heartbeat) -> bool {
    let currents = ["current_l1_a", "current_l2_a", "current_l3_a"]
        .iter()
        .zip(hb.cur)
        .all(|(field, cur)| (amps(&state[*field]) - f64::from(cur.get()) / 10.0).abs() < 0.05);
    state["ccss"] == hb.ccss.to_string() && currents && state["online"] == true
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, told in order
async fn home_assistant_sees_the_bays_and_controls_them() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &broker, SITE, "device")?;
    let topics = Topics::new(SITE)?;
    let ha = Recorder::connect(
        broker.port(),
        "e2e-ha-watcher",
        &[&format!("{PREFIX}/#"), "ctrl22/#", &format!("/{MESH}/#")],
    )
    .await?;

    let mut bridge = start_bridge(&config)?;
    let simulator = Simulator::start(&broker, MESH, BAYS, 11);
    let devs = simulator.devs.clone();

    // Discovery for every bay, each after the site device its `via_device` names.
    let config_topic = |id: &str| format!("{PREFIX}/device/{id}/config");
    let site_config = config_topic(&site_device_id(SITE));
    let bay_configs: Vec<String> = devs
        .iter()
        .map(|d| config_topic(&bay_device_id(d)))
        .collect();
    wait_until("discovery of every bay", || {
        let seen = ha.messages();
        bay_configs
            .iter()
            .all(|t| seen.iter().any(|m| &m.topic == t && !m.payload.is_empty()))
    })
    .await?;
    let seen = ha.messages();
    let first = |topic: &str| seen.iter().position(|m| m.topic == topic);
    let site_at = first(&site_config).ok_or_else(|| anyhow::anyhow!("no site discovery"))?;
    for topic in &bay_configs {
        let bay_at = first(topic).unwrap_or(usize::MAX);
        assert!(site_at < bay_at, "{topic} announced before the site device");
        let payload = seen
            .iter()
            .find(|m| &m.topic == topic)
            .map(json)
            .unwrap_or_default();
        assert!(
            payload["cmps"].as_object().is_some_and(|c| c.len() > 20),
            "{payload}"
        );
        assert_eq!(
            payload["dev"]["via_device"],
            site_device_id(SITE),
            "{topic}: via_device"
        );
    }

    // State as the nodes report it: each bay's state matches one of its two latest
    // heartbeats before it (the recorder may see a heartbeat before the bridge does).
    wait_until("bay states that match the simulator", || {
        let seen = ha.messages();
        devs.iter().all(|dev| {
            let state_topic = topics.bay_state(dev);
            let hbs = heartbeats_of(&seen, dev);
            seen.iter().enumerate().any(|(i, m)| {
                if m.topic != state_topic {
                    return false;
                }
                let state = json(m);
                // A charging bay, so that the currents say something.
                state["charging"] == true
                    && hbs
                        .iter()
                        .filter(|(at, _)| *at < i)
                        .rev()
                        .take(2)
                        .any(|(_, hb)| state_matches(&state, hb))
            })
        })
    })
    .await?;
    let site_state = ha
        .messages()
        .iter()
        .rev()
        .find(|m| m.topic == topics.site_state())
        .map(json)
        .ok_or_else(|| anyhow::anyhow!("no site state"))?;
    assert_eq!(site_state["limit_l1_a"], 63.0, "{site_state}");
    assert_eq!(site_state["strategy"], "fair", "{site_state}");

    // A number command lowers the bay's setpoint on the mesh.
    let dev = devs[0].clone();
    wait_until("a setpoint above 10 A for the first bay", || {
        setpoints(&ha.messages(), &dev).any(|(_, v)| v > 100)
    })
    .await?;
    let max_current = topics.bay_command(&dev, BayCommand::MaxCurrentA);
    let sent = Instant::now();
    ha.publish(&max_current, "10").await?;
    wait_until("smaxcur <= 10 A after max_current_a = 10", || {
        setpoints(&ha.messages(), &dev).any(|(at, v)| at > sent && v <= 100)
    })
    .await?;
    let state_topic = topics.bay_state(&dev);
    wait_until("max_current_a = 10 in the bay's state", || {
        ha.messages()
            .iter()
            .any(|m| m.topic == state_topic && m.at > sent && json(m)["max_current_a"] == 10.0)
    })
    .await?;
    let lowered = Instant::now();

    // Nonsense changes nothing, and Home Assistant's control is told the value in force.
    let mode = topics.bay_command(&dev, BayCommand::Mode);
    let mode_before = ha
        .messages()
        .iter()
        .rev()
        .find(|m| m.topic == state_topic)
        .map(|m| json(m)["mode"].clone())
        .unwrap_or_default();
    for (topic, payload) in [
        (&max_current, "abc"),
        (&max_current, "-5"),
        (&max_current, "1e9"),
        (&max_current, "NaN"),
        (&mode, "turbo"),
    ] {
        let sent = Instant::now();
        ha.publish(topic, payload).await?;
        let answer = ha
            .wait_for(
                Duration::from_secs(5),
                &format!("state after {payload:?}"),
                |m| m.topic == state_topic && m.at > sent,
            )
            .await?;
        let state = json(&answer);
        assert_eq!(state["max_current_a"], 10.0, "after {payload:?}: {state}");
        assert_eq!(state["mode"], mode_before, "after {payload:?}: {state}");
    }
    tokio::time::sleep(Duration::from_secs(4)).await; // two setpoint refreshes
    let after: Vec<i16> = setpoints(&ha.messages(), &dev)
        .filter(|(at, _)| *at > lowered)
        .map(|(_, v)| v)
        .collect();
    assert!(!after.is_empty(), "setpoint refreshes go on");
    assert!(
        after.iter().all(|v| *v <= 100),
        "after invalid commands: {after:?}"
    );
    assert!(
        ha.messages()
            .iter()
            .filter(|m| m.topic == state_topic && m.at > lowered)
            .all(|m| json(m)["max_current_a"] == 10.0),
        "a refused command changed the bay's maximum"
    );

    // Home Assistant restarted: everything is announced again.
    let restarted = Instant::now();
    ha.publish(&format!("{PREFIX}/status"), "online").await?;
    wait_until("discovery again after homeassistant/status online", || {
        let seen = ha.messages();
        std::iter::once(&site_config)
            .chain(&bay_configs)
            .all(|t| seen.iter().any(|m| &m.topic == t && m.at > restarted))
    })
    .await?;
    // With every bay known, the re-announcement must still lead with the site device.
    let again: Vec<Recorded> = ha
        .messages()
        .into_iter()
        .filter(|m| m.at > restarted && m.topic.ends_with("/config"))
        .collect();
    let site_again = again.iter().position(|m| m.topic == site_config);
    for topic in &bay_configs {
        let bay_again = again.iter().position(|m| &m.topic == topic);
        assert!(
            site_again < bay_again,
            "{topic} re-announced before the site device"
        );
    }

    // Killed without a word: the broker publishes the last will.
    let status = topics.bridge_status();
    let online = ha
        .messages()
        .iter()
        .rev()
        .find(|m| m.topic == status)
        .map(Recorded::text);
    assert_eq!(online.as_deref(), Some("online"));
    let killed = Instant::now();
    bridge.kill(); // SIGKILL
    let will = ha
        .wait_for(Duration::from_secs(10), "the last will", |m| {
            m.topic == status && m.at > killed
        })
        .await?;
    assert_eq!(will.text(), "offline");
    // Live subscribers get it without the retain flag (MQTT 3.1.1); one connecting later
    // (Home Assistant after a restart) must find it retained.
    let late = Recorder::connect(
        broker.port(),
        "e2e-ha-late",
        &[&status, &format!("{PREFIX}/device/+/config")],
    )
    .await?;
    let retained = late
        .wait_for(Duration::from_secs(5), "retained status", |m| {
            m.topic == status
        })
        .await?;
    assert_eq!(retained.text(), "offline");
    assert!(retained.retain);
    // So is the discovery: Home Assistant restarting while the bridge is down still knows
    // the devices (and shows them unavailable).
    for topic in std::iter::once(&site_config).chain(&bay_configs) {
        late.wait_for(Duration::from_secs(5), topic, |m| {
            &m.topic == topic && m.retain && !m.payload.is_empty()
        })
        .await?;
    }

    drop(simulator);
    Ok(())
}
