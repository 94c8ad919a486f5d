//! Who comes first: the rank each strategy gives a bay, and the greedy fill used by the
//! ranked strategies (`fcfs`, `priority`), where the first bay takes all it can use before
//! the next one gets more than its floor.

use super::input::{BayDemand, ChargeMode, Strategy};
use super::network::{Candidate, Network};
use super::schedule::Goal;

/// Lower is served first.
pub(super) type StrategyKey = (i64, i64);

pub(super) fn strategy_key(strategy: Strategy, bay: &BayDemand, goal: Option<Goal>) -> StrategyKey {
    match strategy {
        Strategy::Fair => (0, 0),
        Strategy::Fcfs => (0, i64::try_from(bay.arrived_at_ms).unwrap_or(i64::MAX)),
        Strategy::Priority => (-i64::from(bay.priority), 0),
        Strategy::Schedule => match goal {
            Some(goal) if bay.mode == ChargeMode::Schedule => (0, goal.laxity_ms),
            _ => (1, 0),
        },
    }
}

/// Gives each admitted bay, in the given order, all it can still use up to its cap; the
/// floors of all admitted bays are already in `net.load`, so later bays keep theirs.
pub(super) fn greedy_fill(net: &mut Network, admitted: &[&Candidate]) -> Vec<i64> {
    admitted
        .iter()
        .map(|bay| {
            let room = net
                .headroom(bay.edges.clone(), false)
                .map_or(i64::MAX, |(room, _)| room);
            let extra = (bay.cap - bay.floor).min(room).max(0);
            net.add_load(bay.edges.clone(), extra);
            bay.floor + extra
        })
        .collect()
}
