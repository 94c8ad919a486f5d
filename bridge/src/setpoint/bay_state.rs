//! What the sequencer keeps per bay: what it knows the node holds, the write in flight, the
//! hold after a lowering, retries, and the reservation that follows from all of it.

use ctrl22_node::Deciamps;

use super::knowledge::NodeKnowledge;
use super::load::{max_each, BayWiring, PhaseLoad};
use super::{SequencerParams, Target, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Presence {
    /// Never heard from since start (or since released): nothing known, nothing reserved.
    Unheard,
    Online,
    /// Reported offline by the site core: reservation kept, nothing sent.
    Offline,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Outstanding {
    pub(super) write: Write,
    pub(super) deadline_ms: u64,
}

/// What the node may have offered before a confirmed lowering, per bay phase, kept while
/// the vehicle ramps down. Per bay phase, not per site phase: a vehicle may still draw the
/// old offer on one bay phase and already the new one on another, and with two bay phases
/// on one site phase both add up.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hold {
    pub(super) offer: [Deciamps; 3],
    pub(super) confirmed_ms: u64,
    /// The last heartbeat showed the vehicle drawing more than the new offer: then the
    /// hold does not end by time, only when a heartbeat shows it followed.
    pub(super) not_followed: bool,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Retry {
    pub(super) write: Write,
    pub(super) failures: u8,
}

#[derive(Clone, Debug)]
pub(super) struct BayState {
    pub(super) wiring: BayWiring,
    pub(super) presence: Presence,
    pub(super) knowledge: Option<NodeKnowledge>,
    pub(super) target: Option<Target>,
    pub(super) outstanding: Option<Outstanding>,
    pub(super) hold: Option<Hold>,
    /// Kept equal to [`BayState::reservation_of`]; the group totals are sums of these.
    pub(super) reservation: PhaseLoad,
    /// What the bay may have been drawing when the bridge last stopped (persisted): kept
    /// as the least reservation until the node confirmed the bridge's own setpoint.
    pub(super) floor: Option<PhaseLoad>,
    pub(super) wdtsec_confirmed: bool,
    pub(super) no_watchdog: bool,
    /// A press of the operator button waits for the write slot.
    pub(super) button: bool,
    /// An operator's `avrsetpar` waits for its reply: nothing is sent meanwhile, so that
    /// the reply (which does not name its parameter) is the operator's.
    pub(super) operator_write: bool,
    pub(super) last_smaxcur_ms: Option<u64>,
    pub(super) retry: Option<Retry>,
    pub(super) backoff_until_ms: Option<u64>,
    /// Writes given up on after `max_attempts`, for diagnostics.
    pub(super) give_ups: u32,
}

impl BayState {
    pub(super) fn new(wiring: BayWiring) -> Self {
        Self {
            wiring,
            presence: Presence::Unheard,
            knowledge: None,
            target: None,
            outstanding: None,
            hold: None,
            reservation: PhaseLoad::ZERO,
            floor: None,
            wdtsec_confirmed: false,
            no_watchdog: false,
            button: false,
            operator_write: false,
            last_smaxcur_ms: None,
            retry: None,
            backoff_until_ms: None,
            give_ups: 0,
        }
    }

    /// The knowledge including the write in flight.
    pub(super) fn knowledge_in_flight(&self) -> Option<NodeKnowledge> {
        let knowledge = self.knowledge?;
        Some(match self.outstanding {
            Some(o) => knowledge.with_write(o.write),
            None => knowledge,
        })
    }

    pub(super) fn reservation_of(&self) -> PhaseLoad {
        self.knowledge_in_flight().map_or_else(
            || self.floor.unwrap_or(PhaseLoad::ZERO),
            |k| self.reservation_with(k),
        )
    }

    /// The reservation if the node's knowledge were `knowledge`, never below the floor.
    pub(super) fn reservation_with(&self, knowledge: NodeKnowledge) -> PhaseLoad {
        let offer = knowledge.offer_per_bay_phase();
        let held = self.hold.map_or(offer, |h| max_each(offer, h.offer));
        let own = self.wiring.load_of(held);
        self.floor.map_or(own, |floor| own.max(floor))
    }

    /// Whether the node now holds exactly what the bridge wrote, so what it drew before the
    /// restart no longer matters.
    pub(super) fn knows_exactly(&self) -> bool {
        self.outstanding.is_none()
            && self.knowledge.is_some_and(|k| {
                k.smaxcur.exact().is_some()
                    && k.phases.exact().is_some()
                    && k.fsafecur.is_none_or(|f| f.exact().is_some())
            })
    }

    pub(super) fn record_failure(&mut self, write: Write, now_ms: u64, params: &SequencerParams) {
        let failures = match self.retry {
            Some(r) if r.write == write => r.failures.saturating_add(1),
            _ => 1,
        };
        if failures >= params.max_attempts {
            self.retry = None;
            self.backoff_until_ms = Some(now_ms.saturating_add(params.retry_backoff_ms));
            self.give_ups = self.give_ups.saturating_add(1);
            tracing::warn!(
                ?write,
                failures,
                "setpoint write keeps failing; backing off"
            );
        } else {
            self.retry = Some(Retry { write, failures });
        }
    }
}
