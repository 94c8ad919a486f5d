//! Which write a bay needs next to get from what its node holds to its target.
//!
//! Writes that cannot raise the load bound come first (fail-safe down, setpoint down, phases
//! down), so a mixed change such as 1p 16 A -> 3p 10 A passes through the componentwise-safe
//! intermediate 1p 10 A, and a move from phase set 1 to 2 passes through the empty set.
//! Raises follow (phases, setpoint, fail-safe last). Two orderings keep the node's
//! fail-safe current at or below its setpoint whatever it has applied: a setpoint is only
//! written at or above the highest fail-safe the node may hold, a fail-safe only at or below
//! the lowest setpoint it may hold.
//!
//! This is a list of candidates, best first; the sequencer sends the first one the budget
//! allows.

use ctrl22_node::Deciamps;

use crate::bay::Setpoint;

use super::knowledge::NodeKnowledge;
use super::{Target, Write};

/// What else, besides reaching the target, the bay is due for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chores {
    /// `wdtsec` still to be written (once per discovery), with this value in seconds.
    pub(crate) wdtsec: Option<i16>,
    /// The node's watchdog wants feeding: re-send the setpoint even if unchanged.
    pub(crate) refresh_due: bool,
    /// The operator button is to be pressed.
    pub(crate) press: bool,
}

pub(crate) fn candidates(
    knowledge: &NodeKnowledge,
    target: Option<&Target>,
    chores: Chores,
) -> Vec<Write> {
    let k = knowledge;
    let mut out = Vec::with_capacity(4);
    if let Some(t) = target {
        let (current, phases) = (t.setpoint.current, t.setpoint.phases);
        if let Some(fsafe) = k.fsafecur {
            if fsafe.hi > t.fail_safe {
                out.push(Write::Fsafecur(t.fail_safe.min(k.smaxcur.lo)));
            }
        }
        if current < k.smaxcur.hi {
            out.push(Write::Smaxcur(current));
        }
        if !k.phases.hi.is_subset_of(phases) {
            out.push(Write::Phases(phases.intersection(k.phases.hi)));
        }
    }
    if let (true, Some(current)) = (chores.refresh_due, k.smaxcur.exact()) {
        out.push(Write::Smaxcur(current));
    }
    if chores.press {
        out.push(Write::Opbutton);
    }
    if let (Some(seconds), Some(_)) = (chores.wdtsec, k.fsafecur) {
        out.push(Write::Wdtsec(seconds));
    }
    if let Some(t) = target {
        let (current, phases) = (t.setpoint.current, t.setpoint.phases);
        if k.phases.hi.is_subset_of(phases) && !k.phases.is_exactly(phases) {
            out.push(Write::Phases(phases));
        }
        if current >= k.smaxcur.hi && !k.smaxcur.is_exactly(current) {
            out.push(Write::Smaxcur(current));
        }
        if let Some(fsafe) = k.fsafecur {
            if t.fail_safe >= fsafe.hi && !fsafe.is_exactly(t.fail_safe) {
                out.push(Write::Fsafecur(t.fail_safe));
            }
        }
    }
    out.retain(|w| keeps_fail_safe_below_setpoint(k, *w));
    out
}

/// The way out where a limit is overcommitted on paper and nothing else may be sent: pause
/// (fail-safe to 0, then the setpoint to 0), which never raises anything, and come back
/// through the budget like any raise.
pub(crate) fn pause(knowledge: &NodeKnowledge) -> Vec<Write> {
    let k = knowledge;
    let mut out = Vec::with_capacity(2);
    if k.fsafecur.is_some_and(|f| !f.is_exactly(Deciamps::ZERO)) {
        out.push(Write::Fsafecur(Deciamps::ZERO));
    }
    if !k.smaxcur.is_exactly(Deciamps::ZERO) {
        out.push(Write::Smaxcur(Deciamps::ZERO));
    }
    out.retain(|w| keeps_fail_safe_below_setpoint(k, *w));
    out
}

fn keeps_fail_safe_below_setpoint(k: &NodeKnowledge, write: Write) -> bool {
    let Some(fsafe) = k.fsafecur else {
        return true;
    };
    match write {
        Write::Smaxcur(value) => value >= fsafe.hi,
        Write::Fsafecur(value) => value <= k.smaxcur.lo,
        Write::Phases(_) | Write::Wdtsec(_) | Write::Opbutton => true,
    }
}

/// A target the nodes may be given: currents 0 or at least 6 A, a fail-safe current no
/// higher than the setpoint. Anything else is rounded down, never up.
pub(crate) fn sanitized(target: Target) -> Target {
    let current = valid_offer_at_most(target.setpoint.current);
    let fail_safe = valid_offer_at_most(target.fail_safe.min(current));
    Target {
        setpoint: Setpoint {
            current,
            phases: target.setpoint.phases,
        },
        fail_safe,
    }
}

fn valid_offer_at_most(current: Deciamps) -> Deciamps {
    if current.is_valid_offer() && current >= Deciamps::ZERO {
        current
    } else {
        Deciamps::ZERO
    }
}
