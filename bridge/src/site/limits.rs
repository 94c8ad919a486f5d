//! The limits in force on the site's phases: the configured ceiling, lowered by dynamic
//! limits from wherever they come.
//!
//! `site.max_current` describes the fuse and changes only in the configuration file; it is
//! the ceiling. An operator (Home Assistant, HTTP, dashboard) may set a lower dynamic limit,
//! and later sources (OCPP profiles, a grid meter's house load, external dimming signals)
//! add theirs. They combine by minimum with the ceiling, so none of them, whatever it says,
//! can lift the limit in force above the configured one.

use std::collections::BTreeMap;

use ctrl22_node::{Deciamps, Phase};
use serde::Serialize;

/// Who set a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// The configuration file: the ceiling.
    #[default]
    Config,
    /// An operator through Home Assistant, the HTTP API or the dashboard.
    Operator,
    /// An OCPP backend's connector-0 ChargePointMaxProfile (one-charge-point layout).
    Ocpp,
}

/// The ceiling and the dynamic limits of one set of phases (the site's, or a circuit's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseLimits {
    ceiling: [Deciamps; 3],
    dynamic: BTreeMap<LimitSource, [Deciamps; 3]>,
}

impl PhaseLimits {
    /// Limits under the configured `ceiling`, with no dynamic limit yet.
    #[must_use]
    pub fn new(ceiling: [Deciamps; 3]) -> Self {
        Self {
            ceiling,
            dynamic: BTreeMap::new(),
        }
    }

    /// The configured ceiling.
    #[must_use]
    pub fn ceiling(&self) -> [Deciamps; 3] {
        self.ceiling
    }

    /// What `source` asks for on `phase`; the other phases keep what it asked before (or
    /// the ceiling). Negative values count as zero. Never raises the limit in force above
    /// the ceiling: the minimum is taken when it is read.
    pub fn set(&mut self, source: LimitSource, phase: Phase, limit: Deciamps) {
        let ceiling = self.ceiling;
        let entry = self.dynamic.entry(source).or_insert(ceiling);
        entry[phase.index()] = limit.max(Deciamps::ZERO);
    }

    /// The limit in force on each phase: the least of the ceiling and every dynamic limit.
    #[must_use]
    pub fn effective(&self) -> [Deciamps; 3] {
        self.dynamic.values().fold(self.ceiling, |acc, limit| {
            Phase::ALL.map(|p| acc[p.index()].min(limit[p.index()]))
        })
    }

    /// Which source binds on each phase (the ceiling when nothing is lower).
    #[must_use]
    pub fn binding(&self) -> [LimitSource; 3] {
        Phase::ALL.map(|p| {
            self.dynamic
                .iter()
                .filter(|(_, l)| l[p.index()] < self.ceiling[p.index()])
                .min_by_key(|(_, l)| l[p.index()])
                .map_or(LimitSource::Config, |(s, _)| *s)
        })
    }

    /// Every source with what it asks for, the ceiling first, for people to see.
    #[must_use]
    pub fn sources(&self) -> Vec<(LimitSource, [Deciamps; 3])> {
        std::iter::once((LimitSource::Config, self.ceiling))
            .chain(self.dynamic.iter().map(|(s, l)| (*s, *l)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_limits_only_lower() {
        let mut limits = PhaseLimits::new([Deciamps(320); 3]);
        limits.set(LimitSource::Operator, Phase::L1, Deciamps(32_000));
        assert_eq!(limits.effective(), [Deciamps(320); 3]);
        assert_eq!(limits.binding(), [LimitSource::Config; 3]);
        limits.set(LimitSource::Operator, Phase::L2, Deciamps(100));
        assert_eq!(
            limits.effective(),
            [Deciamps(320), Deciamps(100), Deciamps(320)]
        );
        assert_eq!(limits.binding()[1], LimitSource::Operator);
        limits.set(LimitSource::Operator, Phase::L3, Deciamps(-5));
        assert_eq!(limits.effective()[2], Deciamps::ZERO);
    }
}
