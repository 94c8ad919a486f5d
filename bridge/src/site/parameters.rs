//! An operator's `getpar`/`setpar` through the running bridge. The bridge owns the mesh
//! link, so a reply read by a tool beside it could be taken by the bridge instead (an
//! `avrsetpar` reply does not name its parameter): the site sends the operator's command
//! itself and hands the reply to whoever asked.
//!
//! Attribution: a node answers its commands in order. The sequencer sends nothing to a bay
//! while an operator's write to it waits, and a write that matters to the sequencer is not
//! sent while the sequencer waits for its own reply; a harmless write sent then
//! ([`HARMLESS_WRITES`]) is answered by the second `avrsetpar` reply, the first still goes
//! to the sequencer.
//!
//! What an operator may write (SPEC section 4: the configuration is the ceiling):
//! - `wdtsec` never: it is the bridge's fail-safe watchdog period, kept at its configured
//!   value; a node holding another would fall back later than the bridge counts on.
//! - On an enabled bay only [`HARMLESS_WRITES`]: the sequencer's parameters (`smaxcur`,
//!   `phases`, `fsafecur`) would leave the site's reservations behind, `cpcur` bypasses
//!   `smaxcur`, the test switches (`ssr`, `sigrel`, `lock`, `rms`, `pilots`) drive the
//!   hardware, `opbutton` is the sequencer's, `reset` restarts the controller from EEPROM.
//! - On a disabled bay: `smaxcur`/`fsafecur` 0 or 6.0 A up to the bay's ceiling (its
//!   configured maximum and its cable), admitted only if the site has room; the rest as
//!   sent. `reset` makes the sequencer learn the bay afresh (as after a firmware update):
//!   its reservation is kept until the node confirms the sequencer's own setpoint.

use ctrl22_node::mesh::{Address, Command, MacAddr, ParName};
use ctrl22_node::{Deciamps, PhaseSet};

use super::{Output, Site};
use crate::bay::BayId;
use crate::clock::Now;
use crate::setpoint::Write;

/// Parameters the sequencer writes.
pub const SEQUENCER_OWNED: [&str; 4] = ["smaxcur", "phases", "fsafecur", "wdtsec"];
/// What an operator may write on an enabled bay: nothing that moves current, switches
/// hardware or restarts the controller (mesh-protocol reference, section 6).
pub const HARMLESS_WRITES: [&str; 2] = ["blinks", "time"];
/// Restarts the controller with its EEPROM values, whatever the sequencer wrote.
const RESTART: &str = "reset";
/// How long a reply is waited for.
const REPLY_MS: u64 = 5_000;
/// Requests waiting at once, over all bays (one per bay).
const MAX_PENDING: usize = 16;

/// What the node answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParAnswer {
    /// `avrgetpar`: the value.
    Value(i16),
    /// `avrsetpar`: `"ok"`.
    Written,
}

/// Why an operator's parameter request got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParRefusal {
    #[error("no such bay")]
    UnknownBay,
    #[error("the bay is offline")]
    Offline,
    #[error("the bay is being flashed")]
    Flashing,
    #[error("{0} is written by the bridge's sequencer: disable the bay first")]
    SequencerOwned(String),
    #[error("{0} moves current, switches hardware or restarts the controller behind the sequencer: disable the bay first")]
    NotWhileEnabled(String),
    #[error("wdtsec is the bridge's fail-safe watchdog period (mesh.wdtsec in the configuration), not the operator's")]
    Watchdog,
    #[error("{par} {value} is refused: a bay gets 0 or 60..={ceiling} (0.1 A; 6 A up to the least of its configured maximum and its cable)")]
    AboveCeiling {
        par: String,
        value: i16,
        ceiling: i16,
    },
    #[error("the site has no room for this raise now: ask for less or lower other bays first")]
    NoBudget,
    #[error("another parameter request to this bay is waiting")]
    Busy,
    #[error("too many parameter requests are waiting")]
    QueueFull,
    #[error("the node refused")]
    NodeRefused,
    #[error("no reply from the node")]
    NoReply,
}

#[derive(Debug)]
struct Pending {
    id: u64,
    mac: MacAddr,
    par: ParName,
    write: bool,
    /// Sequencer replies expected before the operator's.
    replies_ahead: u8,
    deadline_ms: u64,
}

/// Requests waiting for their node, and answers waiting to be collected.
#[derive(Debug, Default)]
pub struct OperatorPars {
    next_id: u64,
    pending: Vec<Pending>,
    answered: Vec<(u64, Result<ParAnswer, ParRefusal>)>,
}

impl OperatorPars {
    /// An `avrsetpar` reply of `mac`: `true` when it was the operator's.
    fn on_set_reply(&mut self, mac: MacAddr, ok: bool) -> bool {
        let Some(at) = self.pending.iter().position(|p| p.mac == mac && p.write) else {
            return false;
        };
        if self.pending[at].replies_ahead > 0 {
            self.pending[at].replies_ahead -= 1;
            return false;
        }
        let done = self.pending.swap_remove(at);
        let answer = if ok {
            Ok(ParAnswer::Written)
        } else {
            Err(ParRefusal::NodeRefused)
        };
        self.answered.push((done.id, answer));
        true
    }

    fn on_get_reply(&mut self, mac: MacAddr, par: &ParName, val: Option<i16>) {
        let Some(at) = self
            .pending
            .iter()
            .position(|p| p.mac == mac && !p.write && p.par == *par)
        else {
            return;
        };
        let done = self.pending.swap_remove(at);
        let answer = val.map(ParAnswer::Value).ok_or(ParRefusal::NodeRefused);
        self.answered.push((done.id, answer));
    }

    /// Answers the overdue requests [`ParRefusal::NoReply`]; the nodes of the writes
    /// among them.
    fn expire(&mut self, now_ms: u64) -> Vec<MacAddr> {
        let (expired, waiting) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| now_ms >= p.deadline_ms);
        self.pending = waiting;
        let expired: Vec<Pending> = expired;
        let writes = expired.iter().filter(|p| p.write).map(|p| p.mac).collect();
        self.answered.extend(
            expired
                .into_iter()
                .map(|p| (p.id, Err(ParRefusal::NoReply))),
        );
        writes
    }
}

/// The sequencer's view of an operator's write of `par`; `None` for what does not load a
/// phase (`wdtsec`, anything not the sequencer's). Digits that are no phase set count as all
/// three phases (the node refuses them, but the worst case is what a reservation takes).
fn sequencer_write(par: &ParName, val: i16) -> Option<Write> {
    match par.as_str() {
        "smaxcur" => Some(Write::Smaxcur(Deciamps(val))),
        "fsafecur" => Some(Write::Fsafecur(Deciamps(val))),
        "phases" => Some(Write::Phases(
            PhaseSet::from_digits(i32::from(val)).unwrap_or(PhaseSet::ALL),
        )),
        _ => None,
    }
}

/// The most an operator may write as `smaxcur`/`fsafecur`: the bay's configured maximum,
/// and its cable's capacity when a cable is in (`cmaxcur` above 0).
fn ceiling(bay: &super::record::Bay) -> Deciamps {
    let cable = bay
        .heartbeat
        .as_ref()
        .map(|h| h.cmaxcur)
        .filter(|c| c.get() > 0);
    cable.map_or(bay.settings.max_current, |c| {
        c.min(bay.settings.max_current)
    })
}

/// `Err` unless `val` of `par` is what a bay may be given: 0, or 6.0 A up to `ceiling`.
fn check_current(par: &ParName, val: i16, ceiling: Deciamps) -> Result<(), ParRefusal> {
    if !matches!(par.as_str(), "smaxcur" | "fsafecur")
        || val == 0
        || (Deciamps::MIN_CHARGE..=ceiling).contains(&Deciamps(val))
    {
        return Ok(());
    }
    Err(ParRefusal::AboveCeiling {
        par: par.to_string(),
        value: val,
        ceiling: ceiling.get(),
    })
}

/// What may be written to a bay at all (`enabled`: the sequencer drives it).
fn check_writable(par: &ParName, enabled: bool) -> Result<(), ParRefusal> {
    let name = par.as_str();
    if name == "wdtsec" {
        return Err(ParRefusal::Watchdog);
    }
    if !enabled || HARMLESS_WRITES.contains(&name) {
        return Ok(());
    }
    if SEQUENCER_OWNED.contains(&name) {
        return Err(ParRefusal::SequencerOwned(name.to_owned()));
    }
    Err(ParRefusal::NotWhileEnabled(name.to_owned()))
}

impl Site {
    /// Sends the operator's `getpar` (`value: None`) or `setpar` to `bay`; the answer comes
    /// out of [`Site::take_parameter_answers`] under the returned id.
    ///
    /// # Errors
    /// [`ParRefusal`]: unknown, offline, flashed or busy bay, a write the bay does not take
    /// now (see the module documentation), a current outside 0 or 6 A..ceiling, a raise on
    /// a disabled bay the site has no room for.
    pub fn request_parameter(
        &mut self,
        now: Now,
        bay: &BayId,
        par: ParName,
        value: Option<i16>,
    ) -> Result<(u64, Vec<Output>), ParRefusal> {
        let index = self.registry.index_of(bay).ok_or(ParRefusal::UnknownBay)?;
        let slot = self.registry.get(index).ok_or(ParRefusal::UnknownBay)?;
        if !slot.bay.online {
            return Err(ParRefusal::Offline);
        }
        if self.firmware_holds(bay) {
            return Err(ParRefusal::Flashing);
        }
        if let Some(val) = value {
            check_writable(&par, slot.bay.settings.enabled)?;
            check_current(&par, val, ceiling(&slot.bay))?;
        }
        let mac = slot.bay.mac;
        let pars = &mut self.operator_pars;
        if pars.pending.iter().any(|p| p.mac == mac) {
            return Err(ParRefusal::Busy);
        }
        if pars.pending.len() >= MAX_PENDING {
            return Err(ParRefusal::QueueFull);
        }
        let sequencer_waits = value.is_some() && self.sequencer.awaits_ack(index);
        // The sequencer's reply would confirm its write over what the operator's widened.
        if sequencer_waits && !HARMLESS_WRITES.contains(&par.as_str()) {
            return Err(ParRefusal::Busy);
        }
        // Only a disabled bay gets here with a current or phase write: the node applies it
        // at once (or when the bay starts again), so it counts in the site's budget from now.
        if let Some(write) = value.and_then(|val| sequencer_write(&par, val)) {
            if !self
                .sequencer
                .admit_operator_write(now.mono_ms, index, write)
            {
                return Err(ParRefusal::NoBudget);
            }
        }
        if value.is_some() && par.as_str() == RESTART {
            self.learn_afresh(now, index);
        }
        if value.is_some() {
            self.sequencer.operator_write_sent(index);
        }
        let pars = &mut self.operator_pars;
        pars.next_id += 1;
        let id = pars.next_id;
        let cmd = match value {
            Some(val) => Command::AvrSetPar {
                par: par.clone(),
                val,
            },
            None => Command::AvrGetPar { par: par.clone() },
        };
        pars.pending.push(Pending {
            id,
            mac,
            par,
            write: value.is_some(),
            replies_ahead: u8::from(sequencer_waits),
            deadline_ms: now.mono_ms.saturating_add(REPLY_MS),
        });
        let out = vec![Output::Send {
            dst: Address::Node(mac),
            cmd,
        }];
        Ok((id, out))
    }

    /// The node of `index` starts over with values the sequencer did not write (a restart,
    /// a firmware update): it is learned afresh from its next heartbeat, and what it was
    /// reserved stays reserved until the node confirmed the sequencer's own setpoint.
    pub(super) fn learn_afresh(&mut self, now: Now, index: usize) {
        self.sequencer.on_offline(index);
        match self.sequencer.relearn(now.mono_ms, index) {
            Ok(writes) => self.writes.extend(writes),
            Err(e) => tracing::warn!(index, "learning a bay afresh: {e}"),
        }
    }

    /// Answers of operator requests since the last call (replies, refusals, timeouts).
    pub fn take_parameter_answers(&mut self) -> Vec<(u64, Result<ParAnswer, ParRefusal>)> {
        std::mem::take(&mut self.operator_pars.answered)
    }

    /// An `avrsetpar` reply: `true` when it answered the operator, not the sequencer.
    pub(super) fn operator_set_reply(&mut self, now: Now, mac: MacAddr, ok: bool) -> bool {
        let operators = self.operator_pars.on_set_reply(mac, ok);
        if operators {
            self.operator_write_over(now, mac);
        }
        operators
    }

    /// The sequencer may write to the bay of `mac` again.
    fn operator_write_over(&mut self, now: Now, mac: MacAddr) {
        if let Some(index) = self.registry.index_of_mac(&mac) {
            let writes = self.sequencer.operator_write_done(now.mono_ms, index);
            self.writes.extend(writes);
        }
    }

    /// An `avrgetpar` reply, for the operator who asked.
    pub(super) fn operator_get_reply(&mut self, mac: MacAddr, par: &ParName, val: Option<i16>) {
        self.operator_pars.on_get_reply(mac, par, val);
    }

    /// Requests whose reply is overdue are answered [`ParRefusal::NoReply`].
    pub(super) fn expire_parameter_requests(&mut self, now: Now) {
        for mac in self.operator_pars.expire(now.mono_ms) {
            self.operator_write_over(now, mac);
        }
    }
}
