//! The controller's side of the parameter table: what each register reads and what a write
//! does.

use super::{ChargeController, FIRMWARE_VERSION};
use crate::params::{ParError, Param, ParameterStore};
use crate::pilot;
use crate::units::{Deciamps, PhaseSet};

/// The `time` register wraps at 2^15 seconds (about 9 hours) to stay a positive i16.
const TIME_WRAP_S: i64 = 1 << 15;

fn uptime_s(now_ms: u64) -> i64 {
    i64::try_from(now_ms / 1_000).unwrap_or(i64::MAX)
}

impl ChargeController {
    /// Writes that only test hardware are refused while a session could be disturbed.
    fn require_no_session(&self, param: Param) -> Result<(), ParError> {
        if self.is_off() {
            Ok(())
        } else {
            Err(ParError::InSession(param))
        }
    }
}

impl ParameterStore for ChargeController {
    fn get(&self, param: Param) -> Result<i16, ParError> {
        let inputs = &self.last_inputs;
        let current = |index: usize| inputs.currents.get(index).map_or(0, |c| c.get());
        let value = match param {
            Param::Ver => FIRMWARE_VERSION,
            Param::Ccss => i16::from(self.state.code()),
            Param::Error => i16::from(self.error.bits()),
            Param::Cmaxcur | Param::Ppilot => pilot::cmaxcur(inputs.pp_ohms).get(),
            Param::Amaxcur => self.last_outputs.offered.get(),
            Param::Cur1 => current(0),
            Param::Cur2 => current(1),
            Param::Cur3 => current(2),
            Param::Smaxcur => self.smaxcur.get(),
            Param::Phases => self.phases.to_digits(),
            Param::Blinks => self.blinks,
            Param::Cpcur => self.tests.raw_offer.get(),
            Param::Temp => inputs.temp_c,
            Param::Vcc => inputs.vcc_mv,
            Param::Time => {
                let wrapped = (uptime_s(self.now_ms) + self.time_offset_s).rem_euclid(TIME_WRAP_S);
                i16::try_from(wrapped).unwrap_or(0)
            }
            Param::Wdtsec => self.watchdog.timeout_s(),
            Param::Fsafecur => self.watchdog.fail_safe().get(),
            Param::Opbutton
            | Param::Lock
            | Param::Ssr
            | Param::Sigrel
            | Param::Rms
            | Param::Pilots
            | Param::Save
            | Param::Reset => return Err(ParError::WriteOnly(param)),
        };
        Ok(value)
    }

    fn set(&mut self, now_ms: u64, param: Param, value: i16) -> Result<(), ParError> {
        param.check_write(value)?;
        let on = value == 1;
        match param {
            Param::Smaxcur => self.write_smaxcur(now_ms, Deciamps(value)),
            Param::Phases => {
                let phases = PhaseSet::from_digits(i32::from(value))
                    .map_err(|_| ParError::OutOfRange { param, value })?;
                self.write_phases(phases);
            }
            Param::Opbutton => {
                if on {
                    self.press_button();
                }
            }
            Param::Blinks => self.blinks = value,
            Param::Cpcur => {
                // Zero switches the test PWM off; otherwise it must be a current the pilot can
                // signal, like any offer.
                if !Deciamps(value).is_valid_offer() {
                    return Err(ParError::OutOfRange { param, value });
                }
                self.require_no_session(param)?;
                self.tests.raw_offer = Deciamps(value);
            }
            Param::Lock => {
                self.require_no_session(param)?;
                self.tests.lock = on;
            }
            // Accepted for compatibility with hosts that send them; the range check above is
            // all there is to do (ssr/sigrel only accept 0, rms/pilots have nothing to drive
            // in this model).
            Param::Ssr | Param::Sigrel | Param::Rms | Param::Pilots => {}
            Param::Save => self.save_requested |= on,
            Param::Reset => self.reset_requested |= on,
            Param::Time => {
                self.time_offset_s = i64::from(value) - uptime_s(now_ms);
            }
            Param::Wdtsec => self.watchdog.set_timeout_s(value),
            Param::Fsafecur => self.watchdog.set_fail_safe(Deciamps(value)),
            Param::Ver
            | Param::Ccss
            | Param::Error
            | Param::Cmaxcur
            | Param::Ppilot
            | Param::Amaxcur
            | Param::Cur1
            | Param::Cur2
            | Param::Cur3
            | Param::Temp
            | Param::Vcc => return Err(ParError::ReadOnly(param)),
        }
        Ok(())
    }
}
