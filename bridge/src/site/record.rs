//! One bay as the site core knows it: its settings, what its node last reported, and the
//! bookkeeping of its current session.

use ctrl22_node::mesh::{Heartbeat, MacAddr, StatusReply, SystemReply};
use ctrl22_node::{Ccss, CcssGroup, Deciamps, Phase, PhaseSet};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::energy::EnergyMeter;
use super::phase_switch::PhaseSwitch;
use crate::allocate::ChargeMode;
use crate::bay::BayId;

/// A departure time of day, `HH:MM`, in the site's local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Departure {
    pub hour: u8,
    pub minute: u8,
}

impl TryFrom<String> for Departure {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Departure> for String {
    fn from(d: Departure) -> Self {
        d.to_string()
    }
}

impl std::str::FromStr for Departure {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not a time of day HH:MM");
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let hour: u8 = h.parse().map_err(|_| bad())?;
        let minute: u8 = m.parse().map_err(|_| bad())?;
        if hour > 23 || minute > 59 {
            return Err(bad());
        }
        Ok(Self { hour, minute })
    }
}

impl std::fmt::Display for Departure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl Departure {
    /// The next moment (Unix ms) at this time of day after `now_ms` (Unix ms) in `zone`,
    /// daylight saving included: a time that does not exist that day (spring forward) is
    /// taken as the same wall time after the gap, one that exists twice as the earlier.
    #[must_use]
    pub fn next_after(self, now_ms: u64, zone: &TimeZone) -> Option<u64> {
        let now = Timestamp::from_millisecond(i64::try_from(now_ms).ok()?).ok()?;
        let today = now.to_zoned_datetime(zone.clone()).date();
        let at = |date: jiff::civil::Date| {
            date.at(
                i8::try_from(self.hour).ok()?,
                i8::try_from(self.minute).ok()?,
                0,
                0,
            )
            .to_zoned_datetime(zone.clone())
            .ok()
        };
        let mut next = at(today)?;
        if next.timestamp() <= now {
            next = at(today.tomorrow().ok()?)?;
        }
        u64::try_from(next.timestamp().as_millisecond()).ok()
    }
}

/// What an operator can set per bay (config `[nodes.<dev>]`, Home Assistant, HTTP).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaySettings {
    pub name: String,
    /// Bay phase `i` is wired to site phase `rotation[i]`.
    pub rotation: [Phase; 3],
    /// The bay's own limit (its supply cable, its breaker).
    pub max_current: Deciamps,
    pub priority: i32,
    /// `None` follows the site's default mode.
    pub mode: Option<ChargeMode>,
    /// A disabled bay gets no current and its session is stopped.
    pub enabled: bool,
    pub departure: Option<Departure>,
    pub target_energy_wh: Option<u32>,
}

impl BaySettings {
    #[must_use]
    pub fn new(id: &BayId) -> Self {
        Self {
            name: format!("Bay {id}"),
            rotation: Phase::ALL,
            max_current: Deciamps::from_amps(32),
            priority: 0,
            mode: None,
            enabled: true,
            departure: None,
            target_energy_wh: None,
        }
    }
}

/// A bay's live record.
#[derive(Debug)]
pub struct Bay {
    pub id: BayId,
    pub mac: MacAddr,
    pub settings: BaySettings,
    /// The configured maximum (`nodes.<dev>.max_current`, else the default): the ceiling no
    /// runtime setting may exceed.
    pub ceiling: Deciamps,
    /// Monotonic ms of the last message from the node; `None` = never heard since start.
    pub last_heard_mono_ms: Option<u64>,
    /// The same moment in Unix ms, for people.
    pub last_heard_ms: Option<u64>,
    pub online: bool,
    pub heartbeat: Option<Heartbeat>,
    pub status: Option<StatusReply>,
    pub system: Option<SystemReply>,
    pub last_poll_ms: Option<u64>,
    pub energy: EnergyMeter,
    /// The lifetime total last handed to storage, whole Wh.
    pub saved_wh: u64,
    /// Unix ms when the current session began (`None` outside a session).
    pub session_started_ms: Option<u64>,
    /// The same moment on the monotonic clock (arrival order for the allocator).
    pub session_started_mono_ms: Option<u64>,
    /// Phases the EV was seen drawing on during this session (bay numbering).
    pub ev_phases: Option<PhaseSet>,
    /// The phase set the last heartbeats showed drawing, and how many in a row: the
    /// reservation narrows to fewer phases only on repeated evidence.
    pub phase_evidence: (PhaseSet, u8),
    /// Automatic 1-phase <-> 3-phase switching for this session.
    pub phase_switch: PhaseSwitch,
    /// The bridge already pressed start for this plug-in (so it never loops on a car that
    /// stops by itself).
    pub autostart_done: bool,
    /// A start/stop press the operator asked for, waiting for the bay's write slot.
    pub button_request: Option<ButtonRequest>,
}

/// Why the bridge wants to press the bay's operator button.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonRequest {
    Start,
    Stop,
}

impl Bay {
    #[must_use]
    pub fn new(mac: MacAddr, settings: BaySettings, total_wh: u64) -> Self {
        Self {
            id: BayId(mac.topic_form().to_string()),
            mac,
            ceiling: settings.max_current,
            settings,
            last_heard_mono_ms: None,
            last_heard_ms: None,
            online: false,
            heartbeat: None,
            status: None,
            system: None,
            last_poll_ms: None,
            energy: EnergyMeter::with_total_wh(total_wh),
            saved_wh: total_wh,
            session_started_ms: None,
            session_started_mono_ms: None,
            ev_phases: None,
            phase_evidence: (PhaseSet::NONE, 0),
            phase_switch: PhaseSwitch::default(),
            autostart_done: false,
            button_request: None,
        }
    }

    #[must_use]
    pub fn ccss(&self) -> Option<Ccss> {
        self.heartbeat.as_ref().map(|h| h.ccss)
    }

    /// A cable is in the socket (the proximity pilot reads a capacity).
    #[must_use]
    pub fn plugged(&self) -> bool {
        self.heartbeat.as_ref().is_some_and(|h| h.cmaxcur.get() > 0)
    }

    /// Current flows to the car.
    #[must_use]
    pub fn charging(&self) -> bool {
        self.heartbeat
            .as_ref()
            .is_some_and(|h| h.ccss.group() == CcssGroup::C && h.cur.iter().any(|c| c.get() >= 10))
    }

    #[must_use]
    pub fn in_error(&self) -> bool {
        self.ccss().is_some_and(|s| s.group() == CcssGroup::Err)
    }

    /// Measured per-phase currents (bay numbering), zero when unknown.
    #[must_use]
    pub fn measured(&self) -> [Deciamps; 3] {
        self.heartbeat
            .as_ref()
            .map_or([Deciamps::ZERO; 3], |h| h.cur)
    }

    /// Power drawn now, from measured currents.
    #[must_use]
    pub fn power_w(&self, voltage: u16) -> i64 {
        self.measured()
            .iter()
            .map(|c| i64::from(c.get().max(0)) * i64::from(voltage) / 10)
            .sum()
    }

    /// The most this bay may be given: its own limit and the cable's.
    #[must_use]
    pub fn cap(&self) -> Deciamps {
        let cable = self
            .heartbeat
            .as_ref()
            .map_or(Deciamps::ZERO, |h| h.cmaxcur.max(Deciamps::ZERO));
        cable.min(self.settings.max_current)
    }

    /// Records the phases a charging EV actually loads, so a 1-phase car on a 3-phase bay
    /// only takes budget on its one phase. Narrowing from "every phase" needs
    /// [`PHASE_EVIDENCE_HEARTBEATS`] heartbeats in a row that show the same phases drawing
    /// (a 3-phase car ramping up may show one phase first); current on another phase widens
    /// the set at once.
    pub fn learn_ev_phases(&mut self) {
        let Some(h) = self.heartbeat.as_ref() else {
            return;
        };
        // Told one phase, the car draws on one: that says nothing of what it could draw.
        if h.ccss != Ccss::C3 || self.phase_switch.one_phase() {
            self.phase_evidence = (PhaseSet::NONE, 0);
            return;
        }
        let drawing = Phase::ALL
            .into_iter()
            .filter(|p| h.cur.get(p.index()).is_some_and(|c| c.get() >= 10))
            .fold(PhaseSet::NONE, PhaseSet::with);
        if drawing.is_empty() {
            return;
        }
        if let Some(known) = self.ev_phases {
            // Once known, the set only grows: a phase seen once may be loaded again.
            self.ev_phases = Some(known.union(drawing));
            return;
        }
        let (seen, count) = self.phase_evidence;
        let count = if seen == drawing {
            count.saturating_add(1)
        } else {
            1
        };
        self.phase_evidence = (drawing, count);
        if count >= PHASE_EVIDENCE_HEARTBEATS {
            self.ev_phases = Some(drawing);
        }
    }
}

/// Heartbeats in a row that must show the same drawing phases before a bay's reservation
/// narrows to them.
pub const PHASE_EVIDENCE_HEARTBEATS: u8 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departure_parses_and_finds_the_next_occurrence() {
        let d: Departure = "07:30".parse().expect("valid");
        assert_eq!(d.to_string(), "07:30");
        for bad in ["7:30", "24:00", "12:60", "", "ab:cd", "12:3a"] {
            assert!(bad.parse::<Departure>().is_err(), "{bad}");
        }
        // 2026-01-01 06:00 UTC -> 07:30 the same day; in Berlin (UTC+1 in winter), 06:30 UTC.
        let six = 1_767_247_200_000;
        assert_eq!(d.next_after(six, &TimeZone::UTC), Some(six + 90 * 60_000));
        let berlin = TimeZone::get("Europe/Berlin").expect("bundled tz database");
        assert_eq!(d.next_after(six, &berlin), Some(six + 30 * 60_000));
        // After 07:30 it is tomorrow.
        assert_eq!(
            d.next_after(six + 2 * 3_600_000, &TimeZone::UTC),
            Some(six + 90 * 60_000 + 86_400_000)
        );
    }

    #[test]
    fn departure_follows_daylight_saving() {
        let berlin = TimeZone::get("Europe/Berlin").expect("bundled tz database");
        let d: Departure = "07:30".parse().expect("valid");
        // 2026-03-28 12:00 UTC (Saturday); the clocks go forward in the night to Sunday, so
        // 07:30 on Sunday is 05:30 UTC, not 06:30.
        let saturday_noon = 1_774_699_200_000;
        let sunday_0530_utc = 1_774_762_200_000;
        assert_eq!(d.next_after(saturday_noon, &berlin), Some(sunday_0530_utc));
        // 02:30 does not exist that Sunday: taken as 03:30 CEST = 01:30 UTC.
        let gap: Departure = "02:30".parse().expect("valid");
        assert_eq!(
            gap.next_after(saturday_noon, &berlin),
            Some(sunday_0530_utc - 4 * 3_600_000)
        );
    }
}
