//! `[nodes.<dev>]`: per-bay settings, keyed by the node's MAC.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use ctrl22_node::mesh::MacAddr;

use super::amps;
use super::site::ChargeMode;
use crate::bay::{Deciamps, Phase};

/// `[nodes.<dev>]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which site phase each of the bay's phases is wired to.
    pub phase_rotation: PhaseRotation,
    /// The bay's own limit (its supply cable or breaker).
    #[serde(with = "amps::optional", skip_serializing_if = "Option::is_none")]
    pub max_current: Option<Deciamps>,
    /// For `strategy = "priority"`: higher goes first.
    pub priority: i32,
    /// None = `site.default_mode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ChargeMode>,
    /// The `[[site.circuits]]` id this bay is fed from; none = directly from the site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit: Option<String>,
}

/// Wiring of a bay: `"231"` means the bay's L1 is on the site's L2, its L2 on L3, its L3 on L1.
/// Serialised as that three-digit string; `"123"` (straight through) by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhaseRotation(pub [Phase; 3]);

impl PhaseRotation {
    pub const STRAIGHT: Self = Self(Phase::ALL);

    /// The site phase that the bay's phase `bay_phase` is wired to.
    #[must_use]
    pub fn site_phase(self, bay_phase: Phase) -> Phase {
        let [l1, l2, l3] = self.0;
        match bay_phase {
            Phase::L1 => l1,
            Phase::L2 => l2,
            Phase::L3 => l3,
        }
    }
}

impl Default for PhaseRotation {
    fn default() -> Self {
        Self::STRAIGHT
    }
}

impl fmt::Display for PhaseRotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for phase in self.0 {
            write!(f, "{}", phase.digit())?;
        }
        Ok(())
    }
}

impl FromStr for PhaseRotation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let problem = || format!("{s:?} is not a permutation of \"123\" (e.g. \"231\")");
        let mut phases = [Phase::L1; 3];
        let mut seen = BTreeSet::new();
        let mut chars = s.trim().chars();
        for slot in &mut phases {
            let phase = chars
                .next()
                .and_then(|c| c.to_digit(10))
                .and_then(|d| usize::try_from(d).ok())
                .and_then(|d| d.checked_sub(1))
                .and_then(Phase::from_index)
                .ok_or_else(problem)?;
            if !seen.insert(phase) {
                return Err(problem());
            }
            *slot = phase;
        }
        if chars.next().is_some() {
            return Err(problem());
        }
        Ok(Self(phases))
    }
}

impl TryFrom<String> for PhaseRotation {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PhaseRotation> for String {
    fn from(r: PhaseRotation) -> Self {
        r.to_string()
    }
}

/// `d8:a0:1d:55:a7:10` or `D8A01D55A710` -> `d8a01d55a710`.
pub(super) fn normalise_mac(s: &str) -> Option<String> {
    s.parse::<MacAddr>()
        .ok()
        .map(|mac| mac.topic_form().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rotation_round_trips_and_rejects_non_permutations() {
        let r: PhaseRotation = "231".parse().unwrap();
        assert_eq!(r.site_phase(Phase::L1), Phase::L2);
        assert_eq!(r.site_phase(Phase::L3), Phase::L1);
        assert_eq!(r.to_string(), "231");
        for bad in ["", "12", "1234", "112", "124", "abc", "023"] {
            assert!(bad.parse::<PhaseRotation>().is_err(), "{bad}");
        }
    }

    #[test]
    fn macs_normalise() {
        assert_eq!(
            normalise_mac("D8:A0:1D:55:A7:10").as_deref(),
            Some("d8a01d55a710")
        );
        assert_eq!(
            normalise_mac("d8a01d55a710").as_deref(),
            Some("d8a01d55a710")
        );
        for bad in [
            "d8a01d55a7",
            "d8:a01d:55:a7:10:00",
            "g8a01d55a710",
            "d8a01d55a7100",
        ] {
            assert_eq!(normalise_mac(bad), None, "{bad}");
        }
    }
}
