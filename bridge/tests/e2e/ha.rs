//! Home Assistant end to end over a real Mosquitto: the bridge binary with device-based
//! discovery, three simulated bays, and a recorder standing in for Home Assistant. It checks
//! what Home Assistant would see (discovery for every bay after the site device, state equal
//! to what the nodes report), that its commands reach the mesh and nonsense does not, that
//! `homeassistant/status` `online` brings a new announcement, and that a killed bridge turns
//! everything unavailable through its last will. Two more runs check the safety envelope
//! from Home Assistant's side: the sliders end at the configured ceilings, values above them
//! are refused (counted, the slider snaps back, nothing above reaches the mesh), and a
//! retained command left on the broker is never applied.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ctrl22_ha::ctrl22::{bay_device_id, site_device_id, BayCommand, SiteCommand, Topics};
use ctrl22_node::mesh::{
    decode_command_mqtt, decode_uplink_mqtt, Address, Command as MeshCommand, Heartbeat,
    NodeMessage,
};
use ctrl22_testkit::bridge::{
    http_get, rejected_counts, BridgeConfig, BridgeProcess, HomeAssistant,
};
use ctrl22_testkit::{free_port, Mosquitto, Recorded, Recorder};
use serde_json::Value;

use crate::ha_common;

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

/// A recorder standing in for Home Assistant that also sees the mesh.
async fn watch_as_home_assistant(broker: &Mosquitto) -> anyhow::Result<Recorder> {
    Recorder::connect(
        broker.port(),
        "e2e-ha-watcher",
        &[&format!("{PREFIX}/#"), "ctrl22/#", &format!("/{MESH}/#")],
    )
    .await
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
    let ha = watch_as_home_assistant(&broker).await?;

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

/// A bridge on a 3x32 A site whose first bay is configured at 16 A, two simulated bays, a
/// recorder standing in for Home Assistant, and `/metrics`.
struct CeilingSite {
    _broker: Mosquitto,
    _dir: tempfile::TempDir,
    _bridge: BridgeProcess,
    simulator: Simulator,
    ha: Recorder,
    http: SocketAddr,
    topics: Topics,
}

const SITE_CEILING_A: f64 = 32.0;
const BAY_CEILING_A: f64 = 16.0;

impl CeilingSite {
    /// `before_bridge` runs once the simulator and the recorder are up, before the bridge
    /// starts (to leave retained messages on the broker).
    async fn start(
        before_bridge: impl AsyncFnOnce(&Recorder, &Topics, &[String]) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let broker = Mosquitto::start()?;
        let dir = tempfile::tempdir()?;
        let topics = Topics::new(SITE)?;
        let ha = watch_as_home_assistant(&broker).await?;
        let simulator = Simulator::start(&broker, MESH, 2, 5);
        before_bridge(&ha, &topics, &simulator.devs).await?;
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = BridgeConfig {
            mesh_id: MESH.to_owned(),
            http_listen: http,
            max_current_amps: [32; 3],
            site_name: SITE.to_owned(),
            min_on_off_s: 2,
            homeassistant: Some(HomeAssistant {
                discovery_prefix: PREFIX.to_owned(),
                discovery: "device".to_owned(),
            }),
            ..BridgeConfig::new(broker.url())
        }
        .write(dir.path())?;
        place_bay_ceiling(&config, &simulator.devs[0])?;
        let bridge = start_bridge(&config)?;
        Ok(Self {
            _broker: broker,
            _dir: dir,
            _bridge: bridge,
            simulator,
            ha,
            http,
            topics,
        })
    }

    fn dev(&self, i: usize) -> &str {
        &self.simulator.devs[i]
    }

    /// The newest retained-config payload of `topic`, once there is one.
    async fn config(&self, topic: &str) -> anyhow::Result<Value> {
        wait_until(topic, || self.latest(topic).is_some()).await?;
        self.latest(topic)
            .ok_or_else(|| anyhow::anyhow!("no {topic}"))
    }

    fn latest(&self, topic: &str) -> Option<Value> {
        self.ha
            .messages()
            .iter()
            .rev()
            .find(|m| m.topic == topic && !m.payload.is_empty())
            .map(json)
    }

    /// The first message on `topic` after `after`, as JSON.
    async fn next_on(&self, topic: &str, after: Instant) -> anyhow::Result<Value> {
        let m = self
            .ha
            .wait_for(Duration::from_secs(10), topic, |m| {
                m.topic == topic && m.at > after
            })
            .await?;
        Ok(json(&m))
    }

    async fn rejected(&self) -> anyhow::Result<BTreeMap<String, f64>> {
        Ok(rejected_counts(&http_get(self.http, "/metrics").await?))
    }
}

/// `[nodes.<dev>] max_current = 16` in the written configuration.
fn place_bay_ceiling(config: &Path, dev: &str) -> anyhow::Result<()> {
    let mut text = std::fs::read_to_string(config)?;
    text.push_str(&format!("\n[nodes.{dev}]\nmax_current = {BAY_CEILING_A}\n"));
    std::fs::write(config, text)?;
    Ok(())
}

fn count(counts: &BTreeMap<String, f64>, kind: &str) -> f64 {
    counts.get(kind).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sliders_end_at_the_ceilings_and_a_retained_command_is_never_applied(
) -> anyhow::Result<()> {
    // Left on the broker by anyone: it would be replayed at every reconnect.
    let site = CeilingSite::start(async |ha, topics, devs| {
        let topic = topics.bay_command(&devs[1], BayCommand::MaxCurrentA);
        ha.client()
            .publish(&topic, rumqttc::QoS::AtLeastOnce, true, "10")
            .await?;
        ha.wait_for(Duration::from_secs(5), "the retained command", |m| {
            m.topic == topic
        })
        .await?;
        Ok(())
    })
    .await?;

    // The ceilings as the sliders' `max`, per phase and per bay (min 6 A for a bay).
    let site_config = site
        .config(&format!("{PREFIX}/device/{}/config", site_device_id(SITE)))
        .await?;
    for phase in ["l1", "l2", "l3"] {
        let number = &site_config["cmps"][format!("limit_{phase}")];
        assert_eq!(number["max"], SITE_CEILING_A, "limit_{phase}: {number}");
    }
    for (i, ceiling) in [(0, BAY_CEILING_A), (1, 32.0)] {
        let bay_config = site
            .config(&format!(
                "{PREFIX}/device/{}/config",
                bay_device_id(site.dev(i))
            ))
            .await?;
        let number = &bay_config["cmps"]["max_current"];
        assert_eq!(number["max"], ceiling, "bay {i}: {number}");
        assert_eq!(number["min"], 6.0, "bay {i}: {number}");
    }

    // The retained command was not applied, and it was counted.
    let state_topic = site.topics.bay_state(site.dev(1));
    wait_until("the second bay's state", || {
        site.latest(&state_topic)
            .is_some_and(|s| s["online"] == true)
    })
    .await?;
    let state = site.latest(&state_topic).unwrap_or_default();
    assert_eq!(state["max_current_a"], 32.0, "{state}");
    let counts = site.rejected().await?;
    assert_eq!(count(&counts, "ha_command_retained"), 1.0, "{counts:?}");
    assert!(
        setpoints(&site.ha.messages(), site.dev(1)).all(|(_, v)| v > 100 || v == 0),
        "a setpoint of 10 A reached the mesh"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, told in order
async fn home_assistant_cannot_set_a_value_above_a_ceiling() -> anyhow::Result<()> {
    let site = CeilingSite::start(async |_, _, _| Ok(())).await?;
    let ha = &site.ha;
    let dev = site.dev(0).to_owned();
    let bay_state = site.topics.bay_state(&dev);
    let site_state = site.topics.site_state();
    wait_until("the first bay charging", || {
        site.latest(&bay_state)
            .is_some_and(|s| s["charging"] == true)
    })
    .await?;
    let before = site.rejected().await?;

    // Above the ceilings: refused, and the state in force is published again at once, so
    // Home Assistant's slider snaps back. Collected, so one run shows every refusal.
    let mut problems = Vec::new();
    let refusals = [
        (
            site.topics.site_command(SiteCommand::LimitL1A),
            "3200",
            &site_state,
            "limit_l1_a",
            SITE_CEILING_A,
        ),
        (
            site.topics.bay_command(&dev, BayCommand::MaxCurrentA),
            "80",
            &bay_state,
            "max_current_a",
            BAY_CEILING_A,
        ),
    ];
    for (command, payload, state_topic, field, ceiling) in &refusals {
        let sent = Instant::now();
        ha.publish(command, *payload).await?;
        let state = site.next_on(state_topic, sent).await?;
        if state[*field] != *ceiling {
            problems.push(format!("{command} {payload}: {field} = {}", state[*field]));
        }
    }
    // Counted by the site task; /metrics shows it from the next snapshot (a control cycle).
    let mut refused = 0.0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while refused < 2.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let after = site.rejected().await?;
        refused = count(&after, "ha_command") - count(&before, "ha_command");
    }
    if refused < 2.0 {
        problems.push(format!("{refused} of 2 refusals counted as ha_command"));
    }

    // Below the ceilings: accepted, and the mesh follows.
    let sent = Instant::now();
    ha.publish(
        &site.topics.bay_command(&dev, BayCommand::MaxCurrentA),
        "10",
    )
    .await?;
    wait_until("smaxcur <= 10 A after max_current_a = 10", || {
        setpoints(&ha.messages(), &dev).any(|(at, v)| at > sent && v <= 100)
    })
    .await?;
    ha.publish(&site.topics.site_command(SiteCommand::LimitL1A), "20")
        .await?;
    wait_until("limit_l1_a = 20 in the site's state", || {
        ha.messages()
            .iter()
            .any(|m| m.topic == site_state && m.at > sent && json(m)["limit_l1_a"] == 20.0)
    })
    .await?;

    // Nothing above a ceiling ever reached the mesh: the bay's own and the site's.
    let seen = ha.messages();
    let too_high: Vec<i16> = setpoints(&seen, &dev)
        .map(|(_, v)| v)
        .filter(|v| f64::from(*v) > BAY_CEILING_A * 10.0)
        .collect();
    if !too_high.is_empty() {
        problems.push(format!("setpoints above the bay's ceiling: {too_high:?}"));
    }
    for other in &site.simulator.devs {
        if let Some((_, v)) =
            setpoints(&seen, other).find(|(_, v)| f64::from(*v) > SITE_CEILING_A * 10.0)
        {
            problems.push(format!("{other}: setpoint {v} above the site's ceiling"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}
