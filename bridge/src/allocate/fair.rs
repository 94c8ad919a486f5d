//! Water-filling: the max-min fair share of the admitted bays, above their floors and below
//! their caps.
//!
//! Picture one water level `λ` rising for everyone. A bay's current is `λ` clamped to
//! `[floor, cap]`. The level stops for a bay when it reaches its cap, or when one of its
//! constraints fills up; then every bay in that constraint stops where it is, and the level
//! keeps rising for the others. So what a capped bay cannot use flows to the rest, and no
//! bay can get more without taking from one that has no more than it.
//!
//! Done as an event sweep instead of a loop over small steps: each constraint keeps a
//! constant part (floors and stopped bays) and a slope (rising bays), which gives the level
//! at which it fills; a heap hands out the next event. Every bay joins, stops and updates
//! its `depth * phases` constraints once, and every constraint is emptied once, so one round
//! costs `O(bays * depth * log)`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::network::{Candidate, Network};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// The level is still below the bay's floor: it holds its floor.
    Waiting,
    /// Follows the level.
    Rising,
    Stopped,
}

/// Event kinds, in the order they are handled at one level.
const CAP: u8 = 0;
const FULL: u8 = 1;
const JOIN: u8 = 2;

/// (level, kind, bay position or constraint, constraint version)
type Event = Reverse<(i64, u8, usize, u32)>;

struct Sweep<'a> {
    net: &'a mut Network,
    bays: Vec<&'a Candidate>,
    level: Vec<Level>,
    value: Vec<i64>,
    slope: Vec<i64>,
    version: Vec<u32>,
    full: Vec<bool>,
    /// Constraints whose slope changed at the current level, rescheduled once per level.
    dirty: Vec<usize>,
    is_dirty: Vec<bool>,
    heap: BinaryHeap<Event>,
}

/// Fills `admitted` (whose floors are already in `net.load`) fairly; returns each one's
/// current in fine units, in the same order, and leaves the final loads in `net`.
pub(super) fn water_fill(net: &mut Network, admitted: &[&Candidate]) -> Vec<i64> {
    let constraints = net.constraint_count();
    // Members of each constraint, in compressed rows.
    let mut row_start = vec![0usize; constraints + 1];
    for bay in admitted {
        for edge in net.edges_of(bay.edges.clone()) {
            if let Some(count) = row_start.get_mut(edge.constraint + 1) {
                *count += 1;
            }
        }
    }
    for c in 0..constraints {
        let before = row_start.get(c).copied().unwrap_or(0);
        if let Some(next) = row_start.get_mut(c + 1) {
            *next += before;
        }
    }
    let mut cursor = row_start.clone();
    let mut members = vec![0usize; cursor.last().copied().unwrap_or(0)];
    for (position, bay) in admitted.iter().enumerate() {
        for edge in net.edges_of(bay.edges.clone()) {
            if let Some(slot) = cursor.get_mut(edge.constraint) {
                if let Some(member) = members.get_mut(*slot) {
                    *member = position;
                }
                *slot += 1;
            }
        }
    }

    let mut heap = BinaryHeap::with_capacity(admitted.len() * 4);
    for (position, bay) in admitted.iter().enumerate() {
        heap.push(Reverse((bay.cap, CAP, position, 0)));
        heap.push(Reverse((bay.floor, JOIN, position, 0)));
    }
    let mut sweep = Sweep {
        net,
        bays: admitted.to_vec(),
        level: vec![Level::Waiting; admitted.len()],
        value: admitted.iter().map(|bay| bay.floor).collect(),
        slope: vec![0; constraints],
        version: vec![0; constraints],
        full: vec![false; constraints],
        dirty: Vec::new(),
        is_dirty: vec![false; constraints],
        heap,
    };

    while let Some(Reverse((level, kind, index, version))) = sweep.heap.pop() {
        match kind {
            CAP => {
                if let Some(bay) = sweep.bays.get(index) {
                    let cap = bay.cap;
                    sweep.stop(index, cap);
                }
            }
            JOIN => sweep.join(index),
            _ => {
                let current = sweep.version.get(index).copied();
                let already = sweep.full.get(index).copied().unwrap_or(true);
                if current == Some(version) && !already {
                    if let Some(flag) = sweep.full.get_mut(index) {
                        *flag = true;
                    }
                    let start = row_start.get(index).copied().unwrap_or(0);
                    let end = row_start.get(index + 1).copied().unwrap_or(start);
                    for &member in members.get(start..end).unwrap_or(&[]) {
                        let value = match sweep.level.get(member) {
                            Some(Level::Rising) => level,
                            _ => sweep.value.get(member).copied().unwrap_or(0),
                        };
                        sweep.stop(member, value);
                    }
                }
            }
        }
        let next_level = sweep.heap.peek().map(|Reverse((next, ..))| *next);
        if next_level != Some(level) {
            sweep.reschedule_dirty(level);
        }
    }
    sweep.value
}

impl Sweep<'_> {
    fn join(&mut self, position: usize) {
        let Some(state) = self.level.get_mut(position) else {
            return;
        };
        if *state != Level::Waiting {
            return;
        }
        *state = Level::Rising;
        let Some(bay) = self.bays.get(position) else {
            return;
        };
        let (floor, edges) = (bay.floor, bay.edges.clone());
        // Its floor leaves the constant part and it starts rising with the level.
        self.shift(edges, -floor, 1);
    }

    /// Stops a bay at `value` (its floor while waiting, the level while rising, its cap).
    fn stop(&mut self, position: usize, value: i64) {
        let Some(state) = self.level.get_mut(position) else {
            return;
        };
        let was = *state;
        if was == Level::Stopped {
            return;
        }
        *state = Level::Stopped;
        if was == Level::Waiting {
            // Its floor is already in the constant part, and a waiting bay never moves.
            return;
        }
        if let Some(slot) = self.value.get_mut(position) {
            *slot = value;
        }
        let Some(bay) = self.bays.get(position) else {
            return;
        };
        // Its value joins the constant part and it no longer rises with the level.
        self.shift(bay.edges.clone(), value, -1);
    }

    /// Moves `value` into the constant load and `slope_sign` of the bay's weight into the slope
    /// of every constraint on `edges`, and marks each of them for re-checking.
    fn shift(&mut self, edges: std::ops::Range<usize>, value: i64, slope_sign: i64) {
        for index in edges {
            let Some(edge) = self.net.edges.get(index).copied() else {
                continue;
            };
            if let Some(load) = self.net.load.get_mut(edge.constraint) {
                *load += edge.weight * value;
            }
            if let Some(slope) = self.slope.get_mut(edge.constraint) {
                *slope += slope_sign * edge.weight;
            }
            self.mark(edge.constraint);
        }
    }

    fn mark(&mut self, constraint: usize) {
        if let Some(flag) = self.is_dirty.get_mut(constraint) {
            if !*flag {
                *flag = true;
                self.dirty.push(constraint);
            }
        }
    }

    /// Works out again at which level each changed constraint fills. Done once per level
    /// rather than per change: when many bays join at 6 A the site constraint changes
    /// hundreds of times at one level.
    fn reschedule_dirty(&mut self, now: i64) {
        let dirty = core::mem::take(&mut self.dirty);
        for &constraint in &dirty {
            if let Some(flag) = self.is_dirty.get_mut(constraint) {
                *flag = false;
            }
            self.reschedule(constraint, now);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    fn reschedule(&mut self, constraint: usize, now: i64) {
        let Some(version) = self.version.get_mut(constraint) else {
            return;
        };
        *version = version.wrapping_add(1);
        let version = *version;
        let slope = self.slope.get(constraint).copied().unwrap_or(0);
        if slope <= 0 || self.full.get(constraint).copied().unwrap_or(true) {
            return;
        }
        let limit = self.net.limit.get(constraint).copied().unwrap_or(0);
        let load = self.net.load.get(constraint).copied().unwrap_or(0);
        // Rounded down so the load at that level is within the limit; not before `now`
        // (only the soft solar budget can already be overdrawn by floors).
        let fills_at = (limit - load).div_euclid(slope).max(now);
        self.heap
            .push(Reverse((fills_at, FULL, constraint, version)));
    }
}
