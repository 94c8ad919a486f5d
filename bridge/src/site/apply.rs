//! Operator settings (Home Assistant, HTTP API, dashboard): every change is validated once,
//! here, against the configured ceilings, and a set of changes is applied all or nothing.

use ctrl22_node::{Deciamps, Phase};

use super::limits::LimitSource;
use super::record::{ButtonRequest, Departure};
use super::settings::{self, SettingChange, SettingError, TARGET_ENERGY_MAX_KWH};
use super::{Output, Site};
use crate::allocate::{ChargeMode, Strategy};
use crate::bay::BayId;
use crate::clock::Now;

/// A change that passed validation, in the core's units; committing it cannot fail.
#[derive(Debug)]
enum Checked {
    Strategy(Strategy),
    DefaultMode(ChargeMode),
    SiteLimit(Phase, Deciamps),
    BayName(BayId, String),
    BayMode(BayId, ChargeMode),
    BayMaxCurrent(BayId, Deciamps),
    BayPriority(BayId, i32),
    BayEnabled(BayId, bool),
    BayDeparture(BayId, Option<Departure>),
    BayTargetEnergy(BayId, Option<u32>),
    BayButton(BayId, ButtonRequest),
    BayRelease(BayId),
    BayForget(BayId),
}

impl Site {
    /// Validates every change of the set, then applies them all; a refused one leaves
    /// everything as it was. Accepted changes take effect in the allocation they ask for
    /// ([`Site::poll_timeout`]) and are to be persisted.
    ///
    /// # Errors
    /// The first refusal, naming the field and the problem (above a ceiling: the ceiling).
    pub fn apply_all(
        &mut self,
        now: Now,
        changes: Vec<SettingChange>,
    ) -> Result<Vec<Output>, SettingError> {
        let checked = changes
            .iter()
            .map(|change| self.check(change))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        // A name is the one setting the allocation does not read.
        if changes
            .iter()
            .any(|c| !matches!(c, SettingChange::BayName { .. }))
        {
            self.allocation_needed(now);
        }
        for (change, checked) in changes.into_iter().zip(checked) {
            out.extend(self.commit(now, change, checked));
        }
        // Writes a change released (a lower limit, a release) go out now: their reply
        // deadline runs from here.
        self.deliver(&mut out);
        Ok(out)
    }

    /// One change; see [`Site::apply_all`].
    ///
    /// # Errors
    /// [`SettingError`] naming the field and the problem.
    pub fn apply(&mut self, now: Now, change: SettingChange) -> Result<Vec<Output>, SettingError> {
        self.apply_all(now, vec![change])
    }

    /// A stored setting at start: one above a (since lowered) ceiling is clamped to it and
    /// saved so, with one warning; one refused for any other reason is skipped and reported.
    // By value: stored settings are moved in from the store's list, one by one.
    #[allow(clippy::needless_pass_by_value)]
    pub(super) fn restore_one(&mut self, now: Now, change: SettingChange) -> Vec<Output> {
        match self.apply(now, change.clone()) {
            Ok(out) => out,
            Err(SettingError::AboveCeiling { .. }) => {
                let clamped = self.clamped(&change);
                let mut out = vec![Output::Event {
                    bay: change.bay().cloned(),
                    text: format!(
                        "stored setting {} is above the configured ceiling; clamped to it",
                        describe(&change)
                    ),
                }];
                if let Some(clamped) = clamped {
                    out.extend(self.apply(now, clamped).unwrap_or_default());
                }
                out
            }
            Err(e) => vec![Output::Event {
                bay: change.bay().cloned(),
                text: format!("stored setting skipped: {e}"),
            }],
        }
    }

    /// `change` with its value brought down to the ceiling.
    fn clamped(&self, change: &SettingChange) -> Option<SettingChange> {
        match change {
            SettingChange::SiteLimit { phase, .. } => {
                let p = phase_of(*phase).ok()?;
                Some(SettingChange::SiteLimit {
                    phase: *phase,
                    amps: self.limits.ceiling()[p.index()].as_amps(),
                })
            }
            SettingChange::BayMaxCurrent { bay, .. } => {
                let slot = self.registry.get(self.registry.index_of(bay)?)?;
                Some(SettingChange::BayMaxCurrent {
                    bay: bay.clone(),
                    amps: slot.bay.ceiling.as_amps(),
                })
            }
            _ => None,
        }
    }

    fn check(&self, change: &SettingChange) -> Result<Checked, SettingError> {
        let slot = match change.bay() {
            Some(id) => Some(
                self.registry
                    .index_of(id)
                    .and_then(|i| self.registry.get(i))
                    .ok_or_else(|| SettingError::UnknownBay(id.clone()))?,
            ),
            None => None,
        };
        let bay = slot.map(|s| &s.bay);
        let id = || {
            change
                .bay()
                .cloned()
                .unwrap_or_else(|| BayId(String::new()))
        };
        Ok(match change {
            SettingChange::Strategy(s) => Checked::Strategy(*s),
            SettingChange::DefaultMode(m) => Checked::DefaultMode(*m),
            SettingChange::SiteLimit { phase, amps } => {
                let p = phase_of(*phase)?;
                let limit = settings::amps_up_to_ceiling(
                    "site.max_current",
                    *amps,
                    Deciamps::ZERO,
                    self.limits.ceiling()[p.index()],
                )?;
                Checked::SiteLimit(p, limit)
            }
            SettingChange::BayName { name, .. } => {
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 64 {
                    return Err(SettingError::Invalid {
                        field: "name",
                        problem: "must be 1-64 characters".to_owned(),
                    });
                }
                Checked::BayName(id(), name.to_owned())
            }
            SettingChange::BayMode { mode, .. } => Checked::BayMode(id(), *mode),
            SettingChange::BayMaxCurrent { amps, .. } => {
                let ceiling = bay.map_or(Deciamps::ZERO, |b| b.ceiling);
                let max = settings::amps_up_to_ceiling(
                    "max_current",
                    *amps,
                    Deciamps::MIN_CHARGE.min(ceiling),
                    ceiling,
                )?;
                Checked::BayMaxCurrent(id(), max)
            }
            SettingChange::BayPriority { priority, .. } => {
                if !(-1000..=1000).contains(priority) {
                    return Err(SettingError::OutOfRange {
                        field: "priority",
                        value: priority.to_string(),
                        range: "-1000..1000",
                    });
                }
                Checked::BayPriority(id(), *priority)
            }
            SettingChange::BayEnabled { enabled, .. } => Checked::BayEnabled(id(), *enabled),
            SettingChange::BayDeparture { departure, .. } => {
                Checked::BayDeparture(id(), *departure)
            }
            SettingChange::BayTargetEnergy { kwh, .. } => {
                if !kwh.is_finite() || !(0.0..=TARGET_ENERGY_MAX_KWH).contains(kwh) {
                    return Err(SettingError::OutOfRange {
                        field: "target_energy",
                        value: kwh.to_string(),
                        range: "0-200 kWh",
                    });
                }
                // In range: at most 200,000 Wh.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let wh = (kwh * 1000.0).round() as u32;
                Checked::BayTargetEnergy(id(), (wh > 0).then_some(wh))
            }
            SettingChange::BayButton { press, .. } => Checked::BayButton(id(), *press),
            SettingChange::BayRelease { .. } => {
                if bay.is_some_and(|b| b.online) {
                    return Err(SettingError::Invalid {
                        field: "release",
                        problem:
                            "the bay is online; only an offline bay's reservation can be released"
                                .to_owned(),
                    });
                }
                Checked::BayRelease(id())
            }
            SettingChange::BayForget { .. } => {
                if bay.is_some_and(|b| b.online) {
                    return Err(SettingError::Invalid {
                        field: "forget",
                        problem: "the bay is online; it would reappear at its next heartbeat"
                            .to_owned(),
                    });
                }
                Checked::BayForget(id())
            }
        })
    }

    /// Applies a checked change. Bays are looked up again by id: an earlier change of the
    /// same set may have forgotten one (then this one has nothing left to change).
    fn commit(&mut self, now: Now, change: SettingChange, checked: Checked) -> Vec<Output> {
        let mut persist = true;
        let mut out = Vec::new();
        match checked {
            Checked::Strategy(s) => self.settings.strategy = s,
            Checked::DefaultMode(m) => self.settings.default_mode = m,
            Checked::SiteLimit(phase, limit) => {
                self.limits.set(LimitSource::Operator, phase, limit);
                self.limits_changed(now);
            }
            Checked::BayRelease(id) => {
                if let Some(index) = self.registry.index_of(&id) {
                    // Checked offline above; the sequencer agrees.
                    if let Ok(writes) = self.sequencer.release(now.mono_ms, index) {
                        self.writes.extend(writes);
                    }
                    out.push(Output::Event {
                        bay: Some(id),
                        text: "reservation released by the operator".to_owned(),
                    });
                }
                persist = false;
            }
            Checked::BayForget(id) => {
                if let Some(index) = self.registry.index_of(&id) {
                    self.sequencer.release(now.mono_ms, index).ok();
                    self.forget(index);
                }
                return vec![
                    Output::SaveReservation {
                        bay: id.clone(),
                        load: [0; 3],
                        raised: false,
                    },
                    Output::SaveSetting(change),
                    Output::Event {
                        bay: Some(id),
                        text: "forgotten".to_owned(),
                    },
                ];
            }
            bay_change => {
                persist = self.commit_bay(bay_change);
            }
        }
        out.insert(
            0,
            Output::Event {
                bay: change.bay().cloned(),
                text: format!("setting changed: {}", describe(&change)),
            },
        );
        if persist {
            out.push(Output::SaveSetting(change));
        }
        out
    }

    /// A change of one bay's settings; whether it is to be persisted.
    fn commit_bay(&mut self, checked: Checked) -> bool {
        let id = match &checked {
            Checked::BayName(id, _)
            | Checked::BayMode(id, _)
            | Checked::BayMaxCurrent(id, _)
            | Checked::BayPriority(id, _)
            | Checked::BayEnabled(id, _)
            | Checked::BayDeparture(id, _)
            | Checked::BayTargetEnergy(id, _)
            | Checked::BayButton(id, _)
            | Checked::BayRelease(id)
            | Checked::BayForget(id) => id.clone(),
            Checked::Strategy(_) | Checked::DefaultMode(_) | Checked::SiteLimit(..) => {
                return false
            }
        };
        let Some(index) = self.registry.index_of(&id) else {
            return false;
        };
        let Some(slot) = self.registry.get_mut(index) else {
            return false;
        };
        let settings = &mut slot.bay.settings;
        match checked {
            Checked::BayName(_, name) => settings.name = name,
            Checked::BayMode(_, mode) => settings.mode = Some(mode),
            Checked::BayMaxCurrent(_, max) => settings.max_current = max,
            Checked::BayPriority(_, priority) => settings.priority = priority,
            Checked::BayEnabled(_, enabled) => settings.enabled = enabled,
            Checked::BayDeparture(_, departure) => settings.departure = departure,
            Checked::BayTargetEnergy(_, wh) => settings.target_energy_wh = wh,
            Checked::BayButton(_, press) => {
                slot.bay.button_request = Some(press);
                return false;
            }
            Checked::Strategy(_)
            | Checked::DefaultMode(_)
            | Checked::SiteLimit(..)
            | Checked::BayRelease(_)
            | Checked::BayForget(_) => return false,
        }
        true
    }

    /// The limits in force changed: the allocator's topology and the sequencer's site group
    /// follow. A lower limit only stops raises until the bays are lowered under it.
    pub(super) fn limits_changed(&mut self, now: Now) {
        self.refresh_limits(now);
    }
}

fn phase_of(phase: u8) -> Result<Phase, SettingError> {
    match phase {
        1 => Ok(Phase::L1),
        2 => Ok(Phase::L2),
        3 => Ok(Phase::L3),
        _ => Err(SettingError::OutOfRange {
            field: "site.max_current.phase",
            value: phase.to_string(),
            range: "1-3",
        }),
    }
}

fn describe(change: &SettingChange) -> String {
    serde_json::to_string(change).unwrap_or_else(|_| format!("{change:?}"))
}
