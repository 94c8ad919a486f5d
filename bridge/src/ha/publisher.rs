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

use ctrl22_ha::ctrl22::{self, BayInfo, SiteInfo, Topics};
use ctrl22_ha::{discovery, removal, DeviceConfig, DiscoveryMode};

use super::state;
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

/// Where and how to announce.
#[derive(Clone, Debug)]
pub struct HaSettings {
    pub prefix: String,
    pub mode: DiscoveryMode,
    pub bridge_version: String,
    pub configuration_url: Option<String>,
}

#[derive(Debug)]
struct Announced {
    info: BayInfo,
    config: DeviceConfig,
    online: bool,
    state: String,
    state_at_ms: u64,
}

/// The Home Assistant publisher of one site.
#[derive(Debug)]
pub struct Publisher {
    settings: HaSettings,
    topics: Topics,
    site: Option<(SiteInfo, String, u64)>,
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
    pub fn handle_timeout(&mut self, now_ms: u64, snapshot: &SiteSnapshot) -> Vec<Publish> {
        match self.announce_at_ms {
            Some(at) if now_ms >= at => {
                self.announce_at_ms = None;
                self.announce_all(now_ms, snapshot)
            }
            _ => Vec::new(),
        }
    }

    /// Everything anew: after (re)connecting to the broker or when Home Assistant restarted.
    pub fn announce_all(&mut self, now_ms: u64, snapshot: &SiteSnapshot) -> Vec<Publish> {
        self.site = None;
        self.bays.clear();
        let mut out = vec![Publish::retained(
            self.topics.bridge_status(),
            "online".to_owned(),
        )];
        out.extend(self.update(now_ms, snapshot));
        out
    }

    /// The state of one bay again, unconditionally: after a refused command, so Home
    /// Assistant's control snaps back to what is in force.
    pub fn republish_bay(
        &mut self,
        now_ms: u64,
        snapshot: &SiteSnapshot,
        dev: &str,
    ) -> Vec<Publish> {
        if let Some(a) = self.bays.get_mut(dev) {
            a.state.clear();
            a.state_at_ms = now_ms;
        }
        if let Some(site) = self.site.as_mut() {
            site.1.clear();
        }
        self.update(now_ms, snapshot)
    }

    /// What changed since the last call.
    pub fn update(&mut self, now_ms: u64, snapshot: &SiteSnapshot) -> Vec<Publish> {
        let mut out = Vec::new();
        let site = self.site_info(snapshot);
        // The site device first: each bay names it as its `via_device`, and Home Assistant
        // only links a bay to a device it already knows.
        self.update_site(now_ms, site.clone(), snapshot, &mut out);
        for bay in &snapshot.bays {
            self.update_bay(now_ms, &site, bay, &mut out);
        }
        // A set, not a scan of the snapshot per announced bay: that was quadratic, and at
        // 10,000 bays it took most of the bridge's CPU.
        let present: HashSet<&str> = snapshot.bays.iter().map(|b| b.dev.as_str()).collect();
        let gone: Vec<String> = self
            .bays
            .keys()
            .filter(|dev| !present.contains(dev.as_str()))
            .cloned()
            .collect();
        for dev in gone {
            if let Some(a) = self.bays.remove(&dev) {
                out.extend(self.removal(&a.config));
                out.push(Publish::retained(
                    self.topics.bay_state(&dev),
                    String::new(),
                ));
                out.push(Publish::retained(
                    self.topics.bay_availability(&dev),
                    String::new(),
                ));
            }
        }
        out
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

    fn update_site(
        &mut self,
        now_ms: u64,
        info: SiteInfo,
        snapshot: &SiteSnapshot,
        out: &mut Vec<Publish>,
    ) {
        let state = state::site_state(snapshot).to_string();
        let (announce, send_state) = match &self.site {
            Some((known, last, at)) => (
                *known != info,
                *last != state || now_ms.saturating_sub(*at) >= STATE_REFRESH_MS,
            ),
            None => (true, true),
        };
        if announce {
            match ctrl22::site_device(&info) {
                Ok(config) => out.extend(self.discovery(&config)),
                Err(e) => tracing::warn!("site discovery: {e}"),
            }
        }
        if send_state || announce {
            out.push(Publish::retained(self.topics.site_state(), state.clone()));
            self.site = Some((info, state, now_ms));
        }
    }

    fn update_bay(
        &mut self,
        now_ms: u64,
        site: &SiteInfo,
        bay: &BaySnapshot,
        out: &mut Vec<Publish>,
    ) {
        let info = BayInfo {
            dev: bay.dev.clone(),
            mac: bay.mac.clone(),
            name: bay.settings.name.clone(),
            board: bay.board.clone(),
            sw_version: bay.firmware.clone(),
            avr_version: state::avr_version(bay.avr_firmware),
            ceiling_a: whole_amps(bay.ceiling_a),
            configuration_url: self.settings.configuration_url.clone(),
        };
        let state = state::bay_state(bay).to_string();
        let known = self.bays.get(&bay.dev);
        if known.is_none_or(|a| a.info != info) {
            let config = match ctrl22::bay_device(site, &info) {
                Ok(config) => config,
                Err(e) => {
                    tracing::warn!(dev = %bay.dev, "bay discovery: {e}");
                    return;
                }
            };
            out.extend(self.discovery(&config));
            self.bays.insert(
                bay.dev.clone(),
                Announced {
                    info,
                    config,
                    online: !bay.online,
                    state: String::new(),
                    state_at_ms: now_ms,
                },
            );
        }
        let topics = &self.topics;
        let Some(a) = self.bays.get_mut(&bay.dev) else {
            return;
        };
        if a.online != bay.online {
            a.online = bay.online;
            let text = if bay.online { "online" } else { "offline" };
            out.push(Publish::retained(
                topics.bay_availability(&bay.dev),
                text.to_owned(),
            ));
        }
        if a.state != state || now_ms.saturating_sub(a.state_at_ms) >= STATE_REFRESH_MS {
            out.push(Publish::retained(topics.bay_state(&bay.dev), state.clone()));
            a.state = state;
            a.state_at_ms = now_ms;
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
    use crate::allocate::ChargeMode;
    use crate::bay::BayId;
    use crate::site::record::BaySettings;

    fn bay(dev: &str) -> BaySnapshot {
        BaySnapshot {
            dev: dev.to_owned(),
            mac: String::new(),
            name: format!("Bay {dev}"),
            online: true,
            last_heard_ms: Some(0),
            state: Some("C3".to_owned()),
            ccss: None,
            status: crate::site::BayStatus::Charging,
            plugged: true,
            charging: true,
            problem: false,
            cable_a: Some(32.0),
            offered_a: 16.0,
            active_phases: 123,
            current_a: [16.0; 3],
            power_w: 11_040,
            session_energy_wh: 0.0,
            total_energy_wh: 0.0,
            session_started_ms: None,
            allocated_a: 16.0,
            allocated_phases: 123,
            confirmed_a: Some(16.0),
            fail_safe_a: 6.0,
            reason: None,
            mode: ChargeMode::Now,
            ceiling_a: 32.0,
            problems: Vec::new(),
            reserved_a: [0.0; 3],
            settings: BaySettings::new(&BayId(dev.to_owned())),
            button_request: None,
            no_watchdog: false,
            rssi_dbm: None,
            mesh_layer: None,
            mesh_parent: None,
            mesh_latency_ms: None,
            firmware: Some("3.5".to_owned()),
            board: None,
            avr_firmware: None,
            avr_latest: None,
            firmware_job: None,
            esp32_latest: None,
            esp32_job: None,
        }
    }

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

    #[test]
    fn the_site_device_is_announced_before_the_bays_that_name_it() {
        for mode in [DiscoveryMode::Device, DiscoveryMode::Entity] {
            let out = publisher(mode).announce_all(0, &site());
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
        assert!(!p.announce_all(0, &snapshot).is_empty());
        assert_eq!(p.update(1_000, &snapshot), Vec::new());
        snapshot.bays[1].power_w = 7_360;
        let out = p.update(2_000, &snapshot);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].topic, "ctrl22/lot_7/node/d8a01d55a56c/state");
    }

    fn configs(out: &[Publish]) -> usize {
        out.iter().filter(|p| p.discovery).count()
    }

    #[test]
    fn a_birth_brings_one_announcement_after_the_delay() {
        let mut p = publisher(DiscoveryMode::Device);
        let snapshot = site();
        let announced = configs(&p.announce_all(0, &snapshot));
        assert_eq!(announced, 3, "the site and two bays");
        assert_eq!(p.poll_timeout(), None);

        // Simulated time: Home Assistant is born at 10 s, and twice more soon after.
        p.handle_birth(10_000);
        p.handle_birth(10_500);
        assert_eq!(p.poll_timeout(), Some(10_000 + BIRTH_DELAY_MS));
        p.handle_birth(11_900);
        assert_eq!(p.poll_timeout(), Some(10_000 + BIRTH_DELAY_MS));
        // Snapshots meanwhile carry state, not discovery; an early wake-up does nothing.
        assert_eq!(configs(&p.update(11_000, &snapshot)), 0);
        assert_eq!(p.handle_timeout(11_999, &snapshot), Vec::new());
        let out = p.handle_timeout(12_000, &snapshot);
        assert_eq!(configs(&out), announced, "{out:?}");
        assert!(out.iter().any(|m| m.topic == "ctrl22/lot_7/status"));
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.handle_timeout(20_000, &snapshot), Vec::new());

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
        let out = p.announce_all(0, &snapshot);
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
