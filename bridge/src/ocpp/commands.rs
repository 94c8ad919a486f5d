//! What the backend asked for, carried out on the site through the [`SiteHandle`]:
//! RemoteStart presses start, RemoteStop (and a deauthorised tag) presses stop,
//! ChangeAvailability enables or disables the bay, charging profiles become caps that can
//! only lower what the local allocation gives.

use ctrl22_ocpp::{ChargingLimit, Event};

use crate::bay::BayId;
use crate::handle::{SiteHandle, SiteRequest};
use crate::site::record::ButtonRequest;
use crate::site::SettingChange;

/// The site seen from one charge point: its bays by connector (connector n = `bays[n-1]`).
#[derive(Clone, Debug)]
pub struct Commands {
    pub handle: SiteHandle,
    pub bays: Vec<BayId>,
    /// One charge point for the whole site: connector 0 caps the site, not a bay.
    pub site_wide: bool,
}

impl Commands {
    fn bay(&self, connector_id: u32) -> Option<&BayId> {
        let index = usize::try_from(connector_id.checked_sub(1)?).ok()?;
        self.bays.get(index)
    }

    /// The bays `connector_id` names (0: all of them).
    fn bays_of(&self, connector_id: u32) -> Vec<BayId> {
        if connector_id == 0 {
            self.bays.clone()
        } else {
            self.bay(connector_id).cloned().into_iter().collect()
        }
    }

    /// Acts on one session event; events about storage are not for here.
    pub async fn carry_out(&self, identity: &str, event: &Event) {
        match event {
            Event::RemoteStartRequested { connector_id, .. } => {
                self.press(identity, *connector_id, ButtonRequest::Start)
                    .await;
            }
            Event::RemoteStopRequested { connector_id }
            | Event::TransactionDeauthorized {
                connector_id,
                stop: true,
            } => {
                self.press(identity, *connector_id, ButtonRequest::Stop)
                    .await;
            }
            Event::AvailabilityChanged {
                connector_id,
                operative,
            } => {
                for bay in self.bays_of(*connector_id) {
                    let change = SettingChange::BayEnabled {
                        bay: bay.clone(),
                        enabled: *operative,
                    };
                    if let Err(e) = self.handle.apply(change).await {
                        tracing::warn!(identity, %bay, "ChangeAvailability: {e}");
                    }
                }
            }
            Event::ChargingLimitChanged {
                connector_id,
                limit,
            } => self.cap(*connector_id, limit.as_ref()).await,
            Event::ResetRequested { hard } => {
                tracing::info!(identity, hard, "Reset accepted; the session reconnects");
            }
            _ => {}
        }
    }

    async fn press(&self, identity: &str, connector_id: u32, press: ButtonRequest) {
        let Some(bay) = self.bay(connector_id).cloned() else {
            tracing::warn!(identity, connector_id, "no bay at this connector");
            return;
        };
        let change = SettingChange::BayButton {
            bay: bay.clone(),
            press,
        };
        if let Err(e) = self.handle.apply(change).await {
            tracing::warn!(identity, %bay, ?press, "remote button press refused: {e}");
        }
    }

    /// A backend cap in A: per phase as given, or a power limit over the bay's phases at the
    /// site's voltage. With one charge point for the site, connector 0 is the site's limit.
    async fn cap(&self, connector_id: u32, limit: Option<&ChargingLimit>) {
        let snapshot = self.handle.snapshot();
        let volts = f64::from(snapshot.voltage.max(1));
        if connector_id == 0 && self.site_wide {
            let limit_a = limit.map(|l| [amps(l, volts, 3); 3]);
            self.handle
                .send(SiteRequest::OcppSiteLimit { limit_a })
                .await;
            return;
        }
        for bay in self.bays_of(connector_id) {
            let phases = snapshot
                .bays
                .iter()
                .find(|b| b.dev == bay.0)
                .map_or(3, |b| phase_count(b.active_phases));
            let cap_a = limit.map(|l| amps(l, volts, phases));
            self.handle.send(SiteRequest::BayCap { bay, cap_a }).await;
        }
    }
}

/// The phases of a digit set (`123` -> 3, `1` -> 1); 3 when none are known (a power limit
/// spread over three phases gives the lowest current, never more power than allowed).
fn phase_count(digits: i16) -> u8 {
    let count = (1..=3)
        .filter(|p| digits.to_string().contains(&p.to_string()))
        .count();
    u8::try_from(count).ok().filter(|c| *c > 0).unwrap_or(3)
}

/// The current per phase a limit allows: the least of its A and W parts.
fn amps(limit: &ChargingLimit, volts: f64, phases: u8) -> f64 {
    let phases = limit.number_phases.unwrap_or(phases).clamp(1, 3);
    let from_power = limit.power_w.map(|w| w / (volts * f64::from(phases)));
    match (limit.current_a, from_power) {
        (Some(a), Some(p)) => a.min(p),
        (Some(a), None) => a,
        (None, Some(p)) => p,
        (None, None) => f64::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_limits_become_amps_over_the_phases() {
        let limit = ChargingLimit {
            current_a: None,
            power_w: Some(6_900.0),
            number_phases: None,
        };
        assert!((amps(&limit, 230.0, 3) - 10.0).abs() < 1e-9);
        assert!((amps(&limit, 230.0, 1) - 30.0).abs() < 1e-9);
        let both = ChargingLimit {
            current_a: Some(8.0),
            ..limit
        };
        assert!((amps(&both, 230.0, 3) - 8.0).abs() < 1e-9);
        assert_eq!(phase_count(123), 3);
        assert_eq!(phase_count(1), 1);
        assert_eq!(phase_count(0), 3);
    }
}
