//! An operator's `getpar`/`setpar` through the running bridge. The bridge owns the mesh
//! link, so a reply read by a tool beside it could be taken by the bridge instead (an
//! `avrsetpar` reply does not name its parameter): the site sends the operator's command
//! itself and hands the reply to whoever asked.
//!
//! Attribution: a node answers its commands in order and the sequencer has at most one write
//! outstanding per bay, so an operator write sent while the sequencer waits is answered by
//! the second `avrsetpar` reply; the first still goes to the sequencer.
//!
//! What the sequencer owns (`smaxcur`, `phases`, `fsafecur`, `wdtsec`) an operator may only
//! write while the bay is disabled: otherwise the site's reservations and ceilings would no
//! longer describe what the node allows.

use ctrl22_node::mesh::{Address, Command, MacAddr, ParName};
use ctrl22_node::{Deciamps, PhaseSet};

use super::{Output, Site};
use crate::bay::BayId;
use crate::clock::Now;
use crate::setpoint::Write;

/// Parameters the sequencer writes.
pub const SEQUENCER_OWNED: [&str; 4] = ["smaxcur", "phases", "fsafecur", "wdtsec"];
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

    fn expire(&mut self, now_ms: u64) {
        let (expired, waiting) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| now_ms >= p.deadline_ms);
        self.pending = waiting;
        let expired: Vec<Pending> = expired;
        self.answered.extend(
            expired
                .into_iter()
                .map(|p| (p.id, Err(ParRefusal::NoReply))),
        );
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

impl Site {
    /// Sends the operator's `getpar` (`value: None`) or `setpar` to `bay`; the answer comes
    /// out of [`Site::take_parameter_answers`] under the returned id.
    ///
    /// # Errors
    /// [`ParRefusal`]: unknown, offline, flashed or busy bay, a sequencer-owned parameter
    /// written while the bay is enabled, a raise on a disabled bay the site has no room for.
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
        if value.is_some() && slot.bay.settings.enabled && SEQUENCER_OWNED.contains(&par.as_str()) {
            return Err(ParRefusal::SequencerOwned(par.to_string()));
        }
        let mac = slot.bay.mac;
        let pars = &mut self.operator_pars;
        if pars.pending.iter().any(|p| p.mac == mac) {
            return Err(ParRefusal::Busy);
        }
        if pars.pending.len() >= MAX_PENDING {
            return Err(ParRefusal::QueueFull);
        }
        let replies_ahead = u8::from(value.is_some() && self.sequencer.awaits_ack(index));
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
            replies_ahead,
            deadline_ms: now.mono_ms.saturating_add(REPLY_MS),
        });
        let out = vec![Output::Send {
            dst: Address::Node(mac),
            cmd,
        }];
        Ok((id, out))
    }

    /// Answers of operator requests since the last call (replies, refusals, timeouts).
    pub fn take_parameter_answers(&mut self) -> Vec<(u64, Result<ParAnswer, ParRefusal>)> {
        std::mem::take(&mut self.operator_pars.answered)
    }

    /// An `avrsetpar` reply: `true` when it answered the operator, not the sequencer.
    pub(super) fn operator_set_reply(&mut self, mac: MacAddr, ok: bool) -> bool {
        self.operator_pars.on_set_reply(mac, ok)
    }

    /// An `avrgetpar` reply, for the operator who asked.
    pub(super) fn operator_get_reply(&mut self, mac: MacAddr, par: &ParName, val: Option<i16>) {
        self.operator_pars.on_get_reply(mac, par, val);
    }

    /// Requests whose reply is overdue are answered [`ParRefusal::NoReply`].
    pub(super) fn expire_parameter_requests(&mut self, now: Now) {
        self.operator_pars.expire(now.mono_ms);
    }
}
