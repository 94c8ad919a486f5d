//! What to publish to Home Assistant and when, as a plain state machine: it is fed snapshots,
//! broker events and the time (monotonic milliseconds, never read here) and answers with
//! messages; the MQTT task only carries them and sleeps until [`Publisher::poll_timeout`].
//!
//! - Discovery (retained) for the site and each bay, again when a bay's name, board,
//!   firmware or ceiling changes, and all of it [`BIRTH_DELAY_MS`] after Home Assistant
//!   announces itself `online` (it subscribes right after its birth message).
//! - Availability per bay (retained), bridge availability via the last will.
//! - State (retained JSON) on change and at least every [`STATE_REFRESH_MS`].
//! - A bay that leaves the site (forgotten) gets empty retained configs and state, so no
//!   ghost entities stay behind.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use ctrl22_ha::ctrl22::{self, BayInfo, SiteInfo, Topics};
use ctrl22_ha::{discovery, removal, DeviceConfig, DiscoveryMode};

use super::state::{self, BayState, SiteState};
use crate::site::snapshot::{BaySnapshot, SiteSnapshot};

/// State is re-sent at least this often even when unchanged.
pub const STATE_REFRESH_MS: u64 = 60_000;

/// Wait after Home Assistant's `online` before announcing again: it subscribes to the
/// discovery topics right after its birth message.
pub const BIRTH_DELAY_MS: u64 = 2_000;

/// One MQTT message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    /// A discovery config or its removal: order matters (the site device before the bays).
    pub discovery: bool,
}

impl Publish {
    fn retained(topic: String, payload: String) -> Self {
        Self {
            topic,
            payload,
            retain: true,
            discovery: false,
        }
    }

    fn config(topic: String, payload: String) -> Self {
        Self {
            discovery: true,
            ..Self::retained(topic, payload)
        }
    }
}

/// A device whose discovery is due.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Announce {
    Site,
    /// A bay by its `dev`.
    Bay(String),
}

/// What the publisher asks to send: a message, or a device's discovery, which
/// [`Publisher::render`] writes only when there is room to send it. Announcing 10,000 bays
/// then waits as 10,000 names, not as 100 MB of JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Message(Publish),
    Announce(Announce),
}

impl Out {
    fn retained(topic: String, payload: String) -> Self {
        Self::Message(Publish::retained(topic, payload))
    }
}

/// Where and how to announce.
#[derive(Clone, Debug)]
pub struct HaSettings {
    pub prefix: String,
    pub mode: DiscoveryMode,
    pub bridge_version: String,
    pub configuration_url: Option<String>,
}

/// What was last sent for a bay: its device info (to write its discovery when there is
/// room, or its removal) and fingerprints, not payloads.
#[derive(Debug)]
struct Announced {
    info: BayInfo,
    /// [`info_fingerprint`] of the snapshot `info` came from.
    info_fingerprint: u64,
    online: bool,
    /// [`state::fingerprint`] of the last state sent; `None`: send the next one.
    state: Option<u64>,
    state_at_ms: u64,
}

/// What was last sent for the site.
#[derive(Debug)]
struct SiteAnnounced {
    info: SiteInfo,
    state: Option<u64>,
    state_at_ms: u64,
}

/// The Home Assistant publisher of one site.
#[derive(Debug)]
pub struct Publisher {
    settings: HaSettings,
    topics: Topics,
    site: Option<SiteAnnounced>,
    bays: HashMap<String, Announced>,
    /// When to announce everything again after Home Assistant's birth message.
    announce_at_ms: Option<u64>,
}

/// Why the publisher cannot serve a site.
pub type SetupError = ctrl22_ha::DiscoveryError;

impl Publisher {
    /// # Errors
    /// When the site name makes no usable topic level.
    pub fn new(settings: HaSettings, site_name: &str) -> Result<Self, SetupError> {
        let topics = Topics::new(&site_id(site_name))?;
        Ok(Self {
            settings,
            topics,
            site: None,
            bays: HashMap::new(),
            announce_at_ms: None,
        })
    }

    #[must_use]
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Home Assistant said `online` (it started, or its MQTT integration reloaded): announce
    /// everything again [`BIRTH_DELAY_MS`] from now. Births in quick succession (several
    /// Home Assistant instances, a flapping integration) make one announcement.
    pub fn handle_birth(&mut self, now_ms: u64) {
        self.announce_at_ms
            .get_or_insert(now_ms.saturating_add(BIRTH_DELAY_MS));
    }

    /// When [`Publisher::handle_timeout`] wants to be called next, if at all.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.announce_at_ms
    }

    /// The announcement due after a birth message, once its time has come.
    pub fn handle_timeout(&mut self, now_ms: u64, snapshot: &SiteSnapshot) -> Vec<Out> {
        match self.announce_at_ms {
            Some(at) if now_ms >= at => {
                self.announce_at_ms = None;
                self.announce_all(now_ms, snapshot)
            }
            _ => Vec::new(),
        }
    }

    /// Everything anew: after (re)connecting to the broker or when Home Assistant restarted.
    pub fn announce_all(&mut self, now_ms: u64, snapshot: &SiteSnapshot) -> Vec<Out> {
        self.site = None;
        self.bays.clear();
        let mut out = vec![Out::retained(
            self.topics.bridge_status(),
            "online".to_owned(),
        )];
        out.extend(self.update(now_ms, snapshot));
        out
    }

    /// The state of one bay again, unconditionally: after a refused command, so Home
    /// Assistant's control snaps back to what is in force.
    pub fn republish_bay(&mut self, now_ms: u64, snapshot: &SiteSnapshot, dev: &str) -> Vec<Out> {
        if let Some(a) = self.bays.get_mut(dev) {
            a.state = None;
            a.state_at_ms = now_ms;
        }
        if let Some(site) = self.site.as_mut() {
            site.state = None;
        }
        self.update(now_ms, snapshot)
    }

    /// What changed since the last call.
    pub fn update(&mut self, now_ms: u64, snapshot: &SiteSnapshot) -> Vec<Out> {
        let mut out = Vec::new();
        // The site device first: each bay names it as its `via_device`, and Home Assistant
        // only links a bay to a device it already knows.
        self.update_site(now_ms, snapshot, &mut out);
        let mut present = 0;
        for bay in &snapshot.bays {
            present += usize::from(self.update_bay(now_ms, bay, &mut out));
        }
        // Every bay known is still in the snapshot (its devs are unique): nobody left, and
        // no set of 10,000 names is built each cycle to find that out.
        if present != self.bays.len() {
            self.remove_gone(snapshot, &mut out);
        }
        out
    }

    /// The discovery messages of `device`, written now from what the publisher knows now
    /// (the newest names and ceilings); none for a bay that left meanwhile.
    #[must_use]
    pub fn render(&self, device: &Announce) -> Vec<Publish> {
        match self.config(device) {
            Some(config) => self.discovery(&config),
            None => Vec::new(),
        }
    }

    fn config(&self, device: &Announce) -> Option<DeviceConfig> {
        let site = &self.site.as_ref()?.info;
        let built = match device {
            Announce::Site => ctrl22::site_device(site),
            Announce::Bay(dev) => ctrl22::bay_device(site, &self.bays.get(dev)?.info),
        };
        built
            .inspect_err(|e| tracing::warn!(?device, "discovery: {e}"))
            .ok()
    }

    fn remove_gone(&mut self, snapshot: &SiteSnapshot, out: &mut Vec<Out>) {
        let present: HashSet<&str> = snapshot.bays.iter().map(|b| b.dev.as_str()).collect();
        let gone: Vec<String> = self
            .bays
            .keys()
            .filter(|dev| !present.contains(dev.as_str()))
            .cloned()
            .collect();
        for dev in gone {
            // Its config is built once more to know its topics, and then forgotten.
            let config = self.config(&Announce::Bay(dev.clone()));
            if let Some(config) = config {
                out.extend(self.removal(&config).into_iter().map(Out::Message));
            }
            self.bays.remove(&dev);
            out.push(Out::retained(self.topics.bay_state(&dev), String::new()));
            out.push(Out::retained(
                self.topics.bay_availability(&dev),
                String::new(),
            ));
        }
    }

    fn site_info(&self, snapshot: &SiteSnapshot) -> SiteInfo {
        SiteInfo {
            site_id: site_id(&snapshot.name),
            name: snapshot.name.clone(),
            bridge_version: self.settings.bridge_version.clone(),
            ceiling_a: snapshot.ceiling_a.map(whole_amps),
            configuration_url: self.settings.configuration_url.clone(),
        }
    }

    fn update_site(&mut self, now_ms: u64, snapshot: &SiteSnapshot, out: &mut Vec<Out>) {
        let info = self.site_info(snapshot);
        let payload = SiteState(snapshot);
        let state = state::fingerprint(&payload);
        let (announce, send_state) = match &self.site {
            Some(known) => (
                known.info != info,
                known.state != Some(state)
                    || now_ms.saturating_sub(known.state_at_ms) >= STATE_REFRESH_MS,
            ),
            None => (true, true),
        };
        if announce {
            if let Err(e) = ctrl22::site_device(&info) {
                tracing::warn!("site discovery: {e}");
            } else {
                out.push(Out::Announce(Announce::Site));
            }
        }
        if send_state || announce {
            out.push(Out::retained(
                self.topics.site_state(),
                state::to_json(&payload),
            ));
            self.site = Some(SiteAnnounced {
                info,
                state: Some(state),
                state_at_ms: now_ms,
            });
        }
    }

    /// Whether the bay is announced after this.
    fn update_bay(&mut self, now_ms: u64, bay: &BaySnapshot, out: &mut Vec<Out>) -> bool {
        let info_fingerprint = info_fingerprint(bay);
        let known = self.bays.get(&bay.dev);
        if known.is_none_or(|a| a.info_fingerprint != info_fingerprint) {
            let info = self.bay_info(bay);
            // Built once here to refuse what cannot be announced (a `dev` Home Assistant
            // would not take as an id), then dropped: it is written again when sent.
            let site = self.site.as_ref().map(|s| &s.info);
            if let Some(Err(e)) = site.map(|site| ctrl22::bay_device(site, &info)) {
                tracing::warn!(dev = %bay.dev, "bay discovery: {e}");
                return false;
            }
            out.push(Out::Announce(Announce::Bay(bay.dev.clone())));
            let announced = Announced {
                info,
                info_fingerprint,
                online: !bay.online,
                state: None,
                state_at_ms: now_ms,
            };
            self.bays.insert(bay.dev.clone(), announced);
        }
        let topics = &self.topics;
        let Some(a) = self.bays.get_mut(&bay.dev) else {
            return false;
        };
        if a.online != bay.online {
            a.online = bay.online;
            let text = if bay.online { "online" } else { "offline" };
            out.push(Out::retained(
                topics.bay_availability(&bay.dev),
                text.to_owned(),
            ));
        }
        let payload = BayState(bay);
        let state = state::fingerprint(&payload);
        if a.state != Some(state) || now_ms.saturating_sub(a.state_at_ms) >= STATE_REFRESH_MS {
            out.push(Out::retained(
                topics.bay_state(&bay.dev),
                state::to_json(&payload),
            ));
            a.state = Some(state);
            a.state_at_ms = now_ms;
        }
        true
    }

    fn bay_info(&self, bay: &BaySnapshot) -> BayInfo {
        BayInfo {
            dev: bay.dev.clone(),
            mac: bay.mac.clone(),
            name: bay.settings.name.clone(),
            board: bay.board.clone(),
            sw_version: bay.firmware.clone(),
            avr_version: state::avr_version(bay.avr_firmware),
            ceiling_a: whole_amps(bay.ceiling_a),
            configuration_url: self.settings.configuration_url.clone(),
        }
    }

    fn discovery(&self, config: &DeviceConfig) -> Vec<Publish> {
        match discovery(self.settings.mode, &self.settings.prefix, config) {
            Ok(messages) => messages
                .into_iter()
                .map(|m| Publish::config(m.topic, m.payload))
                .collect(),
            Err(e) => {
                tracing::warn!("discovery: {e}");
                Vec::new()
            }
        }
    }

    fn removal(&self, config: &DeviceConfig) -> Vec<Publish> {
        removal(self.settings.mode, &self.settings.prefix, config)
            .into_iter()
            .map(|m| Publish::config(m.topic, m.payload))
            .collect()
    }
}

/// A hash of what [`Publisher::bay_info`] reads from a bay, so an unchanged bay costs no
/// copy of its names each cycle.
fn info_fingerprint(bay: &BaySnapshot) -> u64 {
    let mut h = DefaultHasher::new();
    (
        &bay.dev,
        &bay.mac,
        &bay.settings.name,
        &bay.board,
        &bay.firmware,
        bay.avr_firmware,
        whole_amps(bay.ceiling_a),
    )
        .hash(&mut h);
    h.finish()
}

/// The site's topic level: its name as Home Assistant would slug it.
#[must_use]
pub fn site_id(name: &str) -> String {
    let slug = ctrl22::slug(name);
    if slug.is_empty() {
        "site".to_owned()
    } else {
        slug
    }
}

/// A ceiling in whole amperes, rounded down: a slider must not offer what the core refuses.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped first
fn whole_amps(amps: f64) -> u16 {
    amps.clamp(0.0, f64::from(u16::MAX)).floor() as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::sample::charging_bay as bay;

    fn publisher(mode: DiscoveryMode) -> Publisher {
        let settings = HaSettings {
            prefix: "homeassistant".to_owned(),
            mode,
            bridge_version: "0.1.0".to_owned(),
            configuration_url: None,
        };
        Publisher::new(settings, "Lot 7").unwrap()
    }

    fn site() -> SiteSnapshot {
        SiteSnapshot {
            name: "Lot 7".to_owned(),
            limit_a: [32.0; 3],
            ceiling_a: [32.0; 3],
            bays: vec![bay("d8a01d55a710"), bay("d8a01d55a56c")],
            ..SiteSnapshot::default()
        }
    }

    /// What the adapter sends for `out`: announcements written out.
    fn sent(p: &Publisher, out: Vec<Out>) -> Vec<Publish> {
        out.into_iter()
            .flat_map(|o| match o {
                Out::Message(m) => vec![m],
                Out::Announce(device) => p.render(&device),
            })
            .collect()
    }

    fn announce_all(p: &mut Publisher, now_ms: u64, snapshot: &SiteSnapshot) -> Vec<Publish> {
        let out = p.announce_all(now_ms, snapshot);
        sent(p, out)
    }

    fn update(p: &mut Publisher, now_ms: u64, snapshot: &SiteSnapshot) -> Vec<Publish> {
        let out = p.update(now_ms, snapshot);
        sent(p, out)
    }

    fn handle_timeout(p: &mut Publisher, now_ms: u64, snapshot: &SiteSnapshot) -> Vec<Publish> {
        let out = p.handle_timeout(now_ms, snapshot);
        sent(p, out)
    }

    #[test]
    fn the_site_device_is_announced_before_the_bays_that_name_it() {
        for mode in [DiscoveryMode::Device, DiscoveryMode::Entity] {
            let out = announce_all(&mut publisher(mode), 0, &site());
            let configs: Vec<&str> = out
                .iter()
                .map(|p| p.topic.as_str())
                .filter(|t| t.ends_with("/config"))
                .collect();
            let last_site = configs
                .iter()
                .rposition(|t| t.contains("/ctrl22_site_lot_7"));
            let first_bay = configs.iter().position(|t| t.contains("/ctrl22_d8a01d55"));
            assert!(
                last_site.is_some() && first_bay.is_some(),
                "{mode:?}: {configs:#?}"
            );
            assert!(last_site < first_bay, "{mode:?}: {configs:#?}");
        }
    }

    #[test]
    fn nothing_is_sent_again_until_something_changes() {
        let mut p = publisher(DiscoveryMode::Device);
        let mut snapshot = site();
        assert!(!announce_all(&mut p, 0, &snapshot).is_empty());
        assert_eq!(update(&mut p, 1_000, &snapshot), Vec::new());
        snapshot.bays[1].power_w = 7_360;
        let out = update(&mut p, 2_000, &snapshot);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].topic, "ctrl22/lot_7/node/d8a01d55a56c/state");
        let state: serde_json::Value = serde_json::from_str(&out[0].payload).unwrap();
        assert_eq!(state["power_w"], 7_360);
        // Unchanged states are still refreshed, each a minute after it was last sent.
        let others = update(&mut p, 2_000 + STATE_REFRESH_MS - 1, &snapshot);
        assert_eq!(others.len(), 2, "the site and the other bay: {others:?}");
        assert!(others.iter().all(|m| m.topic != out[0].topic));
        let refreshed = update(&mut p, 2_000 + STATE_REFRESH_MS, &snapshot);
        assert_eq!(refreshed, out);
    }

    #[test]
    fn an_announcement_is_written_from_the_newest_names_when_sent() {
        let mut p = publisher(DiscoveryMode::Device);
        let mut snapshot = site();
        let first = p.announce_all(0, &snapshot);
        assert!(first.contains(&Out::Announce(Announce::Bay("d8a01d55a710".to_owned()))));
        // Renamed before the announcement found room in the client's queue.
        snapshot.bays[0].settings.name = "Visitor 1".to_owned();
        let again = p.update(1_000, &snapshot);
        assert_eq!(
            again.first(),
            Some(&Out::Announce(Announce::Bay("d8a01d55a710".to_owned())))
        );
        assert_eq!(sent(&p, again).iter().filter(|m| m.discovery).count(), 1);
        let config = p.render(&Announce::Bay("d8a01d55a710".to_owned()));
        assert_eq!(config.len(), 1);
        let json: serde_json::Value = serde_json::from_str(&config[0].payload).unwrap();
        assert_eq!(json["dev"]["name"], "Visitor 1");
        assert_eq!(p.render(&Announce::Bay("unknown".to_owned())), Vec::new());
    }

    #[test]
    fn a_bay_that_leaves_takes_every_entity_config_with_it() {
        let mut p = publisher(DiscoveryMode::Entity);
        let mut snapshot = site();
        let announced: Vec<String> = announce_all(&mut p, 0, &snapshot)
            .into_iter()
            .filter(|m| m.discovery && m.topic.contains("ctrl22_d8a01d55a56c"))
            .map(|m| m.topic)
            .collect();
        assert!(announced.len() > 20, "{announced:?}");
        snapshot.bays.pop();
        let out = update(&mut p, 1_000, &snapshot);
        let removed: Vec<String> = out
            .iter()
            .filter(|m| m.discovery && m.payload.is_empty())
            .map(|m| m.topic.clone())
            .collect();
        assert_eq!(removed, announced);
        for topic in [
            "ctrl22/lot_7/node/d8a01d55a56c/state",
            "ctrl22/lot_7/node/d8a01d55a56c/availability",
        ] {
            assert!(
                out.iter().any(|m| m.topic == topic && m.payload.is_empty()),
                "{topic}: {out:?}"
            );
        }
        assert_eq!(update(&mut p, 2_000, &snapshot), Vec::new());
    }

    fn configs(out: &[Publish]) -> usize {
        out.iter().filter(|p| p.discovery).count()
    }

    #[test]
    fn a_birth_brings_one_announcement_after_the_delay() {
        let mut p = publisher(DiscoveryMode::Device);
        let snapshot = site();
        let announced = configs(&announce_all(&mut p, 0, &snapshot));
        assert_eq!(announced, 3, "the site and two bays");
        assert_eq!(p.poll_timeout(), None);

        // Simulated time: Home Assistant is born at 10 s, and twice more soon after.
        p.handle_birth(10_000);
        p.handle_birth(10_500);
        assert_eq!(p.poll_timeout(), Some(10_000 + BIRTH_DELAY_MS));
        p.handle_birth(11_900);
        assert_eq!(p.poll_timeout(), Some(10_000 + BIRTH_DELAY_MS));
        // Snapshots meanwhile carry state, not discovery; an early wake-up does nothing.
        assert_eq!(configs(&update(&mut p, 11_000, &snapshot)), 0);
        assert_eq!(handle_timeout(&mut p, 11_999, &snapshot), Vec::new());
        let out = handle_timeout(&mut p, 12_000, &snapshot);
        assert_eq!(configs(&out), announced, "{out:?}");
        assert!(out.iter().any(|m| m.topic == "ctrl22/lot_7/status"));
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(handle_timeout(&mut p, 20_000, &snapshot), Vec::new());

        // A later birth starts a new wait.
        p.handle_birth(30_000);
        assert_eq!(p.poll_timeout(), Some(30_000 + BIRTH_DELAY_MS));
    }

    #[test]
    fn the_sliders_end_at_the_configured_ceilings_not_at_the_limit_in_force() {
        let mut p = publisher(DiscoveryMode::Entity);
        let mut snapshot = site();
        snapshot.limit_a = [20.0, 20.0, 20.0]; // lowered at runtime
        snapshot.ceiling_a = [32.0, 32.0, 25.0];
        snapshot.bays[0].ceiling_a = 16.0;
        let out = announce_all(&mut p, 0, &snapshot);
        let max_of = |needle: &str| {
            out.iter()
                .find(|m| m.topic.contains(needle) && m.topic.ends_with("/config"))
                .and_then(|m| serde_json::from_str::<serde_json::Value>(&m.payload).ok())
                .map(|v| v["max"].clone())
        };
        assert_eq!(max_of("ctrl22_site_lot_7/limit_l1/"), Some(32.0.into()));
        assert_eq!(max_of("ctrl22_site_lot_7/limit_l3/"), Some(25.0.into()));
        assert_eq!(
            max_of("ctrl22_d8a01d55a710/max_current/"),
            Some(16.0.into())
        );
        assert_eq!(
            max_of("ctrl22_d8a01d55a56c/max_current/"),
            Some(32.0.into())
        );
    }
}
