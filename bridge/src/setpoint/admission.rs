//! The engine: expiry of what is due, the reservation brought up to date, and admission:
//! a write goes out only if every group of the bay stays within its limit (or the write
//! provably never raises what the node puts on a phase that is over on paper).

use ctrl22_node::Phase;

use super::bay_state::{Outstanding, Presence};
use super::knowledge::NodeKnowledge;
use super::load::PhaseLoad;
use super::{plan, Sequencer, SetparCommand, Write};

impl Sequencer {
    /// Expires what is due at each of `bays`, then gives each its next write (and, if budget
    /// was freed, every bay waiting for it). Other bays' timeouts wait for [`Self::poll`]:
    /// until then they count as in flight, which reserves the same.
    pub(super) fn step(&mut self, now_ms: u64, bays: Vec<usize>) -> Vec<SetparCommand> {
        let mut freed = false;
        for &bay in &bays {
            freed |= self.expire(now_ms, bay);
        }
        let mut out = Vec::new();
        for bay in bays {
            self.next_write(now_ms, bay, &mut out);
        }
        // A write sent above never frees budget, so one pass over the waiters suffices.
        if freed {
            let waiting: Vec<usize> = std::mem::take(&mut self.waiting_for_budget)
                .into_iter()
                .collect();
            for bay in waiting {
                self.next_write(now_ms, bay, &mut out);
            }
        }
        out
    }

    /// The timeout, hold expiry and backoff end of `bay`, then its reservation brought up
    /// to date; whether the reservation dropped.
    pub(super) fn expire(&mut self, now_ms: u64, bay: usize) -> bool {
        let params = self.params;
        let Some(state) = self.bays.get_mut(bay) else {
            return false;
        };
        if let Some(o) = state.outstanding.filter(|o| now_ms >= o.deadline_ms) {
            state.outstanding = None;
            state.knowledge = state.knowledge.map(|k| k.with_write(o.write));
            state.record_failure(o.write, now_ms, &params);
        }
        if state.hold.is_some_and(|h| {
            !h.not_followed && now_ms >= h.confirmed_ms.saturating_add(params.settle_grace_ms)
        }) {
            state.hold = None;
        }
        if state.backoff_until_ms.is_some_and(|t| now_ms >= t) {
            state.backoff_until_ms = None;
        }
        self.sync_reservation(bay)
    }

    /// Brings the cached reservation and group totals up to date; whether it dropped on any
    /// phase.
    pub(super) fn sync_reservation(&mut self, bay: usize) -> bool {
        let Some(state) = self.bays.get_mut(bay) else {
            return false;
        };
        if state.floor.is_some() && state.knows_exactly() {
            state.floor = None;
        }
        let old = state.reservation;
        let new = state.reservation_of();
        if new == old {
            return false;
        }
        state.reservation = new;
        let raised = !new.fits_within(old);
        let change = self.reservation_changes.entry(bay).or_insert((new, false));
        *change = (new, change.1 || raised);
        for &group in self.groups_of_bay.get(bay).into_iter().flatten() {
            if let Some(total) = self.totals.get_mut(group) {
                *total = total.minus(old).plus(new);
            }
        }
        !old.fits_within(new)
    }

    /// Whether `write` may go to `bay`, its reservation becoming `new`: on every phase of
    /// every group of the bay, either the group's total stays within the limit, or the write
    /// cannot raise what the node puts there (the group is overcommitted on paper).
    pub(super) fn allowed(
        &self,
        now_ms: u64,
        bay: usize,
        knowledge: &NodeKnowledge,
        write: Write,
        new: PhaseLoad,
    ) -> bool {
        let Some(state) = self.bays.get(bay) else {
            return false;
        };
        let old = state.reservation;
        let in_grace = self.startup_grace_until_ms.is_some_and(|t| now_ms < t);
        // Bays not yet heard are missing from the totals, so the totals prove nothing: each
        // node stays within what it evidently did when heard (no raise of its reservation,
        // which is that evidence), and moves no load between phases.
        if in_grace
            && (!new.fits_within(old)
                || (matches!(write, Write::Phases(_))
                    && !Phase::ALL
                        .into_iter()
                        .all(|p| knowledge.never_raises(write, &state.wiring, p))))
        {
            return false;
        }
        self.groups_of_bay.get(bay).into_iter().flatten().all(|&g| {
            match (self.groups.get(g), self.totals.get(g)) {
                (Some(group), Some(total)) => Phase::ALL.into_iter().all(|p| {
                    let limit = i32::from(group.limit[p.index()].get());
                    total.on(p) - old.on(p) + new.on(p) <= limit
                        || knowledge.never_raises(write, &state.wiring, p)
                }),
                _ => false,
            }
        })
    }

    /// Whether a group of `bay` is over its limit on a phase the bay holds a share of.
    pub(super) fn overcommitted(&self, bay: usize) -> bool {
        let mine = self.reservation(bay);
        self.groups_of_bay.get(bay).into_iter().flatten().any(|&g| {
            match (self.groups.get(g), self.totals.get(g)) {
                (Some(group), Some(total)) => Phase::ALL.into_iter().any(|p| {
                    mine.on(p) > 0 && total.on(p) > i32::from(group.limit[p.index()].get())
                }),
                _ => false,
            }
        })
    }

    pub(super) fn next_write(&mut self, now_ms: u64, bay: usize, out: &mut Vec<SetparCommand>) {
        let Some(state) = self.bays.get(bay) else {
            return;
        };
        let Some(knowledge) = state.knowledge else {
            return;
        };
        if state.presence != Presence::Online
            || state.outstanding.is_some()
            || state.operator_write
            || state.backoff_until_ms.is_some()
        {
            return;
        }
        let chores = plan::Chores {
            wdtsec: (!state.wdtsec_confirmed).then_some(self.params.watchdog_secs),
            // Only what the bridge itself wrote is re-sent.
            refresh_due: state
                .last_smaxcur_ms
                .is_some_and(|t| now_ms >= t.saturating_add(self.params.refresh_interval_ms)),
            press: state.button,
        };
        let mut blocked = false;
        let mut chosen = None;
        let candidates = plan::candidates(&knowledge, state.target.as_ref(), chores);
        // Pausing is the last resort, not for the startup grace: by its end the first
        // confirmed writes and learned vehicle phases usually bring the paper totals down.
        let in_grace = self.startup_grace_until_ms.is_some_and(|t| now_ms < t);
        let pause = || plan::pause(&knowledge);
        let fallback = (!in_grace && !candidates.is_empty() && self.overcommitted(bay))
            .then(pause)
            .unwrap_or_default();
        for write in candidates.into_iter().chain(fallback) {
            let new = state.reservation_with(knowledge.with_write(write));
            if self.allowed(now_ms, bay, &knowledge, write, new) {
                chosen = Some(write);
                break;
            }
            blocked = true;
        }
        if blocked && chosen.is_none() {
            self.waiting_for_budget.insert(bay);
        }
        let Some(write) = chosen else {
            return;
        };
        let deadline_ms = now_ms.saturating_add(self.params.ack_timeout_ms);
        if let Some(state) = self.bays.get_mut(bay) {
            state.outstanding = Some(Outstanding { write, deadline_ms });
            match write {
                Write::Smaxcur(_) => state.last_smaxcur_ms = Some(now_ms),
                // A toggle: pressed once, never repeated on a lost reply.
                Write::Opbutton => state.button = false,
                Write::Phases(_) | Write::Fsafecur(_) | Write::Wdtsec(_) => {}
            }
        }
        self.waiting_for_budget.remove(&bay);
        self.sync_reservation(bay);
        out.push(write.to_command(bay));
    }
}
