//! Caps from outside the bay's own settings: an OCPP backend's charging profiles, per bay and
//! (one-charge-point layout) for the whole site.
//!
//! A cap only lowers: the allocator gets the least of the bay's own limit (settings, cable)
//! and the backend's cap, and the site's OCPP limit is one more dynamic limit under the
//! configured ceiling ([`LimitSource::Ocpp`]). Whatever the backend sends, the fuse rules
//! hold, since they are applied by the allocator after this.

use std::collections::BTreeMap;

use ctrl22_node::{Deciamps, Phase};

use super::limits::LimitSource;
use super::Site;
use crate::allocate::BayDemand;
use crate::bay::BayId;
use crate::clock::Now;

/// The backend's cap per bay (absent: no cap).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BayCaps(BTreeMap<BayId, Deciamps>);

impl BayCaps {
    /// Lowers each bay's maximum to its cap; a cap under 6 A pauses the bay.
    pub fn lower(&self, demands: &mut [BayDemand]) {
        for demand in demands {
            if let Some(cap) = self.0.get(&demand.id) {
                demand.max_current = demand.max_current.min(*cap);
                if demand.max_current < Deciamps::MIN_CHARGE {
                    demand.wants_charge = false;
                }
            }
        }
    }
}

/// Amperes from outside to 0.1 A, rounded down (a cap never rounds up); negative is zero,
/// above what a register holds is "no lower than anything". `None` for NaN.
fn cap_of(amps: f64) -> Option<Deciamps> {
    if amps.is_nan() {
        return None;
    }
    let floored = (amps.max(0.0) * 10.0).floor() / 10.0;
    Some(Deciamps::try_from_amps(floored).unwrap_or(Deciamps(i16::MAX)))
}

impl Site {
    /// The backend's cap for `bay` in A (`None`: lifted). A NaN is refused and counted.
    pub(super) fn set_bay_cap(&mut self, bay: BayId, cap_a: Option<f64>) {
        match cap_a.map(cap_of) {
            None => {
                self.caps.0.remove(&bay);
            }
            Some(Some(cap)) => {
                self.caps.0.insert(bay, cap);
            }
            Some(None) => self.count_rejected("ocpp_cap_not_a_number"),
        }
    }

    /// The backend's limit on the site's phases in A (`None`: lifted), under the ceiling.
    pub(super) fn set_ocpp_site_limit(&mut self, now: Now, limit_a: Option<[f64; 3]>) {
        let ceiling = self.limits.ceiling();
        for phase in Phase::ALL {
            let index = phase.index();
            let limit = match limit_a.map(|l| cap_of(l[index])) {
                None => ceiling[index],
                Some(Some(cap)) => cap.min(ceiling[index]),
                Some(None) => {
                    self.count_rejected("ocpp_cap_not_a_number");
                    return;
                }
            };
            self.limits.set(LimitSource::Ocpp, phase, limit);
        }
        self.limits_changed(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_round_down_and_never_go_negative() {
        assert_eq!(cap_of(10.09), Some(Deciamps(100)));
        assert_eq!(cap_of(-3.0), Some(Deciamps::ZERO));
        assert_eq!(cap_of(1e12), Some(Deciamps(i16::MAX)));
        assert_eq!(cap_of(f64::INFINITY), Some(Deciamps(i16::MAX)));
        assert_eq!(cap_of(f64::NAN), None);
    }
}
