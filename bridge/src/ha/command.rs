//! Commands from Home Assistant, validated into [`SettingChange`]s. Payloads are what Home
//! Assistant sends: a select's option, a number as decimal text, `ON`/`OFF`, `PRESS`, text.
//! Anything else is refused here with a reason; range checks happen in the site core, the
//! one place every setting passes.

use ctrl22_ha::ctrl22::{BayCommand, CommandTarget, SiteCommand};

use crate::allocate::{ChargeMode, Strategy};
use crate::bay::BayId;
use crate::site::record::{ButtonRequest, Departure};
use crate::site::SettingChange;

/// Why a command payload was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{command}: {problem}")]
pub struct CommandError {
    pub command: &'static str,
    pub problem: String,
}

/// Longest payload considered; Home Assistant's own never come near it.
const MAX_PAYLOAD: usize = 256;

/// The setting change a command asks for.
///
/// # Errors
/// [`CommandError`] for payloads that are not of the command's form.
pub fn parse(target: &CommandTarget, payload: &[u8]) -> Result<SettingChange, CommandError> {
    let name = match target {
        CommandTarget::Bay { command, .. } => command.as_str(),
        CommandTarget::Site(command) => command.as_str(),
    };
    let fail = |problem: String| CommandError {
        command: name,
        problem,
    };
    if payload.len() > MAX_PAYLOAD {
        return Err(fail(format!(
            "payload of {} bytes is too long",
            payload.len()
        )));
    }
    let text = std::str::from_utf8(payload)
        .map_err(|_| fail("payload is not UTF-8".to_owned()))?
        .trim();
    match target {
        CommandTarget::Site(command) => site_change(*command, text).map_err(fail),
        CommandTarget::Bay { dev, command } => {
            bay_change(BayId(dev.clone()), *command, text).map_err(fail)
        }
    }
}

fn site_change(command: SiteCommand, text: &str) -> Result<SettingChange, String> {
    Ok(match command {
        SiteCommand::Strategy => SettingChange::Strategy(option::<Strategy>(text)?),
        SiteCommand::LimitL1A => SettingChange::SiteLimit {
            phase: 1,
            amps: number(text)?,
        },
        SiteCommand::LimitL2A => SettingChange::SiteLimit {
            phase: 2,
            amps: number(text)?,
        },
        SiteCommand::LimitL3A => SettingChange::SiteLimit {
            phase: 3,
            amps: number(text)?,
        },
    })
}

fn bay_change(bay: BayId, command: BayCommand, text: &str) -> Result<SettingChange, String> {
    Ok(match command {
        BayCommand::Mode => SettingChange::BayMode {
            bay,
            mode: option::<ChargeMode>(text)?,
        },
        BayCommand::MaxCurrentA => SettingChange::BayMaxCurrent {
            bay,
            amps: number(text)?,
        },
        BayCommand::Enabled => SettingChange::BayEnabled {
            bay,
            enabled: switch(text)?,
        },
        BayCommand::Start => {
            press(text)?;
            SettingChange::BayButton {
                bay,
                press: ButtonRequest::Start,
            }
        }
        BayCommand::Stop => {
            press(text)?;
            SettingChange::BayButton {
                bay,
                press: ButtonRequest::Stop,
            }
        }
        BayCommand::DepartureTime => SettingChange::BayDeparture {
            bay,
            departure: if text.is_empty() {
                None
            } else {
                Some(text.parse::<Departure>()?)
            },
        },
        BayCommand::TargetEnergyKwh => SettingChange::BayTargetEnergy {
            bay,
            kwh: number(text)?,
        },
        // An install is a firmware job, not a setting: see `ha::firmware`.
        BayCommand::InstallAvr | BayCommand::InstallEsp32 => return Err("not a setting".to_owned()),
    })
}

/// A select option: the lower-case name of one of the enum's values.
fn option<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("{text:?} is not one of the options"))
}

fn number(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{text:?} is not a number"))
}

fn switch(text: &str) -> Result<bool, String> {
    match text {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        _ => Err(format!("{text:?} is neither ON nor OFF")),
    }
}

fn press(text: &str) -> Result<(), String> {
    if text == "PRESS" {
        Ok(())
    } else {
        Err(format!("{text:?} is not PRESS"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bay(command: BayCommand) -> CommandTarget {
        CommandTarget::Bay {
            dev: "d8a01d55a710".to_owned(),
            command,
        }
    }

    #[test]
    fn home_assistant_payloads_become_changes() {
        let dev = BayId("d8a01d55a710".to_owned());
        assert_eq!(
            parse(&bay(BayCommand::Mode), b"minpv"),
            Ok(SettingChange::BayMode {
                bay: dev.clone(),
                mode: ChargeMode::MinPv
            })
        );
        assert_eq!(
            parse(&bay(BayCommand::MaxCurrentA), b"16.5"),
            Ok(SettingChange::BayMaxCurrent {
                bay: dev.clone(),
                amps: 16.5
            })
        );
        assert_eq!(
            parse(&bay(BayCommand::Enabled), b"OFF"),
            Ok(SettingChange::BayEnabled {
                bay: dev.clone(),
                enabled: false
            })
        );
        assert_eq!(
            parse(&bay(BayCommand::DepartureTime), b""),
            Ok(SettingChange::BayDeparture {
                bay: dev,
                departure: None
            })
        );
        assert_eq!(
            parse(&CommandTarget::Site(SiteCommand::Strategy), b"fcfs"),
            Ok(SettingChange::Strategy(Strategy::Fcfs))
        );
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        for (target, payload) in [
            (bay(BayCommand::Mode), &b"turbo"[..]),
            (bay(BayCommand::MaxCurrentA), b"sixteen"),
            (bay(BayCommand::MaxCurrentA), b"NaN"),
            (bay(BayCommand::MaxCurrentA), b"inf"),
            (bay(BayCommand::MaxCurrentA), b""),
            (bay(BayCommand::Enabled), b"true"),
            (bay(BayCommand::Start), b"GO"),
            (bay(BayCommand::DepartureTime), b"25:00"),
            (bay(BayCommand::Mode), b"\xff\xfe"),
            (CommandTarget::Site(SiteCommand::LimitL1A), b"[1,2]"),
        ] {
            let result = parse(&target, payload);
            assert!(result.is_err(), "{target:?} {payload:?} -> {result:?}");
        }
        let huge = vec![b'1'; 10_000];
        assert!(parse(&bay(BayCommand::MaxCurrentA), &huge).is_err());
    }
}
