//! What the bridge knows about the parameters a node holds, and the most that node may then
//! put on the site's phases.
//!
//! A write whose reply never came may or may not have been applied, and a node heard for the
//! first time may be running anything, so knowledge is a range per parameter, not a value.
//! The load bound takes the worst of every range at once: a node holds one combination of
//! values, and the product of the worst cases covers all of them.

use ctrl22_node::{Deciamps, Phase, PhaseSet};

use super::{BayWiring, Measurement, Write};

/// A current parameter the node holds somewhere in `lo..=hi` (as far as it matters: a node
/// on its fail-safe current may hide a higher setpoint, which only a new setpoint would end).
/// Known exactly only once the node confirmed a write of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CurrentRange {
    pub(crate) lo: Deciamps,
    pub(crate) hi: Deciamps,
    confirmed: bool,
}

impl CurrentRange {
    pub(crate) const fn exactly(value: Deciamps) -> Self {
        Self {
            lo: value,
            hi: value,
            confirmed: true,
        }
    }

    /// Evidence, not confirmation: somewhere up to `hi`.
    const fn up_to(hi: Deciamps) -> Self {
        Self {
            lo: Deciamps::ZERO,
            hi,
            confirmed: false,
        }
    }

    pub(crate) fn exact(self) -> Option<Deciamps> {
        (self.confirmed && self.lo == self.hi).then_some(self.lo)
    }

    pub(crate) fn is_exactly(self, value: Deciamps) -> bool {
        self.exact() == Some(value)
    }

    /// The range after a write of `value` whose fate is unknown.
    fn widened(self, value: Deciamps) -> Self {
        Self {
            lo: self.lo.min(value),
            hi: self.hi.max(value),
            confirmed: self.is_exactly(value),
        }
    }
}

/// A phase set the node holds: a superset of `lo` and a subset of `hi`; known exactly only
/// once the node confirmed a write of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PhaseRange {
    pub(crate) lo: PhaseSet,
    pub(crate) hi: PhaseSet,
    confirmed: bool,
}

impl PhaseRange {
    const fn exactly(value: PhaseSet) -> Self {
        Self {
            lo: value,
            hi: value,
            confirmed: true,
        }
    }

    pub(crate) fn exact(self) -> Option<PhaseSet> {
        (self.confirmed && self.lo == self.hi).then_some(self.lo)
    }

    pub(crate) fn is_exactly(self, value: PhaseSet) -> bool {
        self.exact() == Some(value)
    }

    fn widened(self, value: PhaseSet) -> Self {
        Self {
            lo: self.lo.intersection(value),
            hi: union(self.hi, value),
            confirmed: self.is_exactly(value),
        }
    }
}

pub(crate) fn union(a: PhaseSet, b: PhaseSet) -> PhaseSet {
    b.iter().fold(a, PhaseSet::with)
}

/// The parameters of one node as far as the bridge can vouch for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeKnowledge {
    pub(crate) smaxcur: CurrentRange,
    pub(crate) phases: PhaseRange,
    /// `None` once the node rejected `fsafecur` or `wdtsec`: firmware without a watchdog,
    /// which never falls back to anything.
    pub(crate) fsafecur: Option<CurrentRange>,
}

impl NodeKnowledge {
    /// A node heard from for the first time: it may be running an old setpoint or its
    /// fail-safe current, on any phase. What it offers (or what its vehicle draws, if that is
    /// more) is all the bridge can go by until its own writes are confirmed.
    pub(crate) fn discovered(heartbeat: &Measurement) -> Self {
        let range = CurrentRange::up_to(heartbeat.offer_evidence());
        Self {
            smaxcur: range,
            phases: PhaseRange {
                lo: PhaseSet::NONE,
                hi: PhaseSet::ALL,
                confirmed: false,
            },
            fsafecur: Some(range),
        }
    }

    /// A heartbeat that offers more than the knowledge allows (the node rebooted into its
    /// stored setpoint, or someone else wrote to it) widens the knowledge: facts from the
    /// node can only shrink the budget of others. Closed contactors (`aphases`) are no such
    /// fact: they open only some seconds after a phase change, which the hold covers; current
    /// drawn on a phase outside the known set is.
    pub(crate) fn absorbed(self, heartbeat: &Measurement) -> Self {
        let amaxcur = heartbeat.amaxcur.max(Deciamps::ZERO);
        let mut next = self;
        if amaxcur > self.offer_bound() {
            next.smaxcur = next.smaxcur.widened(amaxcur);
        }
        // Current on a phase the node should not be using widens the phases at once.
        let drawing = Phase::ALL
            .into_iter()
            .filter(|p| heartbeat.cur[p.index()] >= Deciamps(10))
            .fold(PhaseSet::NONE, PhaseSet::with);
        if !drawing.iter().all(|p| self.phases.hi.contains(p)) {
            next.phases = next.phases.widened(drawing);
        }
        next
    }

    /// The knowledge while `write` may or may not have been applied.
    pub(crate) fn with_write(self, write: Write) -> Self {
        let mut next = self;
        match write {
            Write::Smaxcur(value) => next.smaxcur = next.smaxcur.widened(value),
            Write::Phases(value) => next.phases = next.phases.widened(value),
            Write::Fsafecur(value) => {
                next.fsafecur = next.fsafecur.map(|range| range.widened(value));
            }
            Write::Wdtsec(_) | Write::Opbutton => {}
        }
        next
    }

    /// The knowledge once the node acknowledged `write`.
    pub(crate) fn with_confirmed(self, write: Write) -> Self {
        let mut next = self;
        match write {
            Write::Smaxcur(value) => next.smaxcur = CurrentRange::exactly(value),
            Write::Phases(value) => next.phases = PhaseRange::exactly(value),
            Write::Fsafecur(value) => {
                next.fsafecur = next.fsafecur.map(|_| CurrentRange::exactly(value));
            }
            Write::Wdtsec(_) | Write::Opbutton => {}
        }
        next
    }

    /// The node has no watchdog: it never falls back to a fail-safe current.
    pub(crate) fn without_watchdog(self) -> Self {
        Self {
            fsafecur: None,
            ..self
        }
    }

    /// The most the node may offer: its setpoint, or its fail-safe current if the watchdog
    /// fires.
    pub(crate) fn offer_bound(self) -> Deciamps {
        self.fsafecur
            .map_or(self.smaxcur.hi, |f| self.smaxcur.hi.max(f.hi))
    }

    /// The most the node may offer on each of its own phases.
    pub(crate) fn offer_per_bay_phase(self) -> [Deciamps; 3] {
        let offer = self.offer_bound();
        Phase::ALL.map(|p| {
            if self.phases.hi.contains(p) {
                offer
            } else {
                Deciamps::ZERO
            }
        })
    }

    /// Whether `write` cannot make the node put more on `site_phase` than it does now,
    /// whatever it holds within this knowledge. Staying within the reservation is not
    /// enough where a limit is overcommitted on paper (a node heard for the first time is
    /// assumed to load every phase): there, only such writes are safe.
    ///
    /// A node with a watchdog may be on its fail-safe current, and any `smaxcur` ends that,
    /// so a setpoint never raises it only when it is at most the lowest fail-safe.
    pub(crate) fn never_raises(self, write: Write, wiring: &BayWiring, site_phase: Phase) -> bool {
        let wires = |phases: PhaseSet| wiring.load(phases, Deciamps(1)).on(site_phase);
        let unloaded = wires(self.phases.hi) == 0;
        match write {
            Write::Smaxcur(value) => {
                let floor = self.fsafecur.map_or(self.smaxcur.lo, |f| f.lo);
                unloaded || value <= floor
            }
            // A vehicle lets go of a dropped phase only seconds later, but may take up an
            // added one at once: a swap of two bay phases on this site phase (odd wiring)
            // loads it twice meanwhile. Only bay phases the node surely uses may load it.
            Write::Phases(value) => {
                let added = value
                    .iter()
                    .filter(|&p| !self.phases.lo.contains(p))
                    .fold(PhaseSet::NONE, PhaseSet::with);
                self.offer_bound() == Deciamps::ZERO || wires(added) == 0
            }
            Write::Fsafecur(value) => unloaded || self.fsafecur.is_none_or(|f| value <= f.lo),
            Write::Wdtsec(_) | Write::Opbutton => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(amaxcur: i16) -> Measurement {
        Measurement {
            amaxcur: Deciamps(amaxcur),
            aphases: PhaseSet::L1,
            cur: [Deciamps(amaxcur), Deciamps::ZERO, Deciamps::ZERO],
        }
    }

    #[test]
    fn a_discovered_node_may_offer_its_amaxcur_on_every_phase() {
        let k = NodeKnowledge::discovered(&heartbeat(160));
        assert_eq!(k.offer_per_bay_phase(), [Deciamps(160); 3]);
    }

    #[test]
    fn an_unconfirmed_write_keeps_both_values_possible() {
        let k = NodeKnowledge::discovered(&heartbeat(160))
            .with_confirmed(Write::Smaxcur(Deciamps(100)))
            .with_write(Write::Smaxcur(Deciamps(60)));
        assert_eq!((k.smaxcur.lo, k.smaxcur.hi), (Deciamps(60), Deciamps(100)));
        assert_eq!(k.smaxcur.exact(), None);
        let k = k.with_confirmed(Write::Smaxcur(Deciamps(60)));
        assert!(k.smaxcur.is_exactly(Deciamps(60)));
    }

    #[test]
    fn evidence_is_not_confirmation() {
        let k = NodeKnowledge::discovered(&heartbeat(0));
        assert_eq!(k.smaxcur.exact(), None);
        assert_eq!(k.phases.exact(), None);
        let k = k.with_confirmed(Write::Smaxcur(Deciamps::ZERO));
        assert_eq!(k.smaxcur.exact(), Some(Deciamps::ZERO));
        assert!(k
            .with_write(Write::Smaxcur(Deciamps::ZERO))
            .smaxcur
            .is_exactly(Deciamps::ZERO));
    }

    #[test]
    fn phase_ranges_widen_to_the_union() {
        let one = PhaseSet::L1;
        let two = PhaseSet::NONE.with(ctrl22_node::Phase::L2);
        let k = NodeKnowledge::discovered(&heartbeat(0))
            .with_confirmed(Write::Phases(one))
            .with_write(Write::Phases(two));
        assert_eq!(k.phases.hi, union(one, two));
        assert_eq!(k.phases.lo, PhaseSet::NONE);
    }

    #[test]
    fn moving_load_between_two_bay_phases_on_one_site_phase_may_raise_it() {
        use ctrl22_node::Phase::{L1, L2, L3};
        let odd = BayWiring {
            rotation: [L1, L1, L2],
            counted_phases: PhaseSet::ALL,
        };
        let k = NodeKnowledge::discovered(&heartbeat(160))
            .with_confirmed(Write::Smaxcur(Deciamps(160)))
            .with_confirmed(Write::Fsafecur(Deciamps::ZERO))
            .with_confirmed(Write::Phases(PhaseSet::NONE.with(L2)));
        // Bay phase 2 (site L1) to bay phases 1 and 3: the vehicle may still draw on 2
        // while it takes up 1, both on site L1.
        let swap = Write::Phases(PhaseSet::NONE.with(L1).with(L3));
        assert!(!k.never_raises(swap, &odd, L1));
        assert!(k.never_raises(Write::Phases(PhaseSet::NONE), &odd, L1));
        assert!(k.never_raises(swap, &BayWiring::STRAIGHT, L2));
    }

    #[test]
    fn a_heartbeat_above_the_knowledge_widens_it() {
        let k = NodeKnowledge::discovered(&heartbeat(100))
            .with_confirmed(Write::Smaxcur(Deciamps(100)))
            .with_confirmed(Write::Fsafecur(Deciamps(60)))
            .absorbed(&heartbeat(200));
        assert_eq!(k.offer_bound(), Deciamps(200));
    }
}
