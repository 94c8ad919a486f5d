//! Limits outside parties set: a grid operator's dimming signal (section 14a EnWG: down to
//! 4.2 kW), a home energy manager. Each signal applies to the site or one circuit; several
//! on the same scope combine by minimum, and all of them only ever lower what the
//! configuration allows (they are one more dynamic limit under the ceiling). A source that
//! goes silent keeps its last value: a dimming order is not lifted by a broken wire. A
//! signal is keyed by its source and scope, so one source (the HTTP API) can hold a site
//! limit and circuit limits side by side.

use std::collections::BTreeMap;

use ctrl22_node::Deciamps;

use super::power::{ExternalLimit, LimitScope, SourceId};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExternalLimits {
    signals: BTreeMap<(SourceId, LimitScope), ExternalLimit>,
}

impl ExternalLimits {
    /// A signal changed; `None` lifts it. Returns whether anything changed.
    pub fn set(
        &mut self,
        source: SourceId,
        scope: LimitScope,
        limit: Option<ExternalLimit>,
    ) -> bool {
        let key = (source, scope);
        let before = self.signals.get(&key).copied();
        match limit {
            Some(limit) => {
                self.signals.insert(key.clone(), limit);
            }
            None => {
                self.signals.remove(&key);
            }
        }
        before != self.signals.get(&key).copied()
    }

    /// The least of the signals on `scope`, per phase; `None` when nothing limits it.
    #[must_use]
    pub fn limit_of(&self, scope: &LimitScope, voltage: u16) -> Option<[Deciamps; 3]> {
        self.signals
            .iter()
            .filter(|((_, s), _)| s == scope)
            .map(|(_, limit)| per_phase(*limit, voltage))
            .reduce(|a, b| [a[0].min(b[0]), a[1].min(b[1]), a[2].min(b[2])])
    }

    /// The signals in force, for people to see.
    pub fn iter(&self) -> impl Iterator<Item = (SourceId, &LimitScope, ExternalLimit)> + '_ {
        self.signals
            .iter()
            .map(|((id, scope), limit)| (*id, scope, *limit))
    }
}

/// A power limit becomes the same current on every phase: `watts / (3 * voltage)`, so the
/// cars together stay under it however they spread over the phases (a one-phase car then
/// gets a third of it: the safe side).
fn per_phase(limit: ExternalLimit, voltage: u16) -> [Deciamps; 3] {
    match limit {
        ExternalLimit::Amps(amps) => amps.map(|a| a.max(Deciamps::ZERO)),
        ExternalLimit::Watts(watts) => {
            let deciamps = u64::from(watts) * 10 / (3 * u64::from(voltage.max(1)));
            [Deciamps(i16::try_from(deciamps).unwrap_or(i16::MAX)); 3]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimming_to_4_2_kw_and_lifting_it() {
        let mut limits = ExternalLimits::default();
        assert!(limits.set(
            SourceId(1),
            LimitScope::Site,
            Some(ExternalLimit::Watts(4_200))
        ));
        assert_eq!(
            limits.limit_of(&LimitScope::Site, 230),
            Some([Deciamps(60); 3])
        );
        assert_eq!(
            limits.limit_of(&LimitScope::Circuit("garage".into()), 230),
            None
        );
        assert!(!limits.set(
            SourceId(1),
            LimitScope::Site,
            Some(ExternalLimit::Watts(4_200))
        ));
        let amps = ExternalLimit::Amps([Deciamps(100), Deciamps(-5), Deciamps(300)]);
        limits.set(SourceId(2), LimitScope::Site, Some(amps));
        assert_eq!(
            limits.limit_of(&LimitScope::Site, 230),
            Some([Deciamps(60), Deciamps::ZERO, Deciamps(60)])
        );
        limits.set(SourceId(1), LimitScope::Site, None);
        limits.set(SourceId(2), LimitScope::Site, None);
        assert_eq!(limits.limit_of(&LimitScope::Site, 230), None);
    }
}
