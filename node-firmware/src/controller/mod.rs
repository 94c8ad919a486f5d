//! The CTRL22 charge controller: the `ccss` state machine of one bay, driven by sensor samples
//! and an injected clock, and its parameter registers.
//!
//! [`ChargeController::step`] takes the time and an [`Inputs`] sample and returns the
//! [`Outputs`] to drive. Setpoints (`smaxcur`, `phases`), the button mimic and the other
//! registers are written between steps through [`crate::params::ParameterStore`] (or the
//! `write_*` methods), because a write is an event (it re-arms the setpoint watchdog even when
//! the value does not change), not a level.
//!
//! # States (reference: mesh-protocol.md section 5)
//! Where the reference is silent, this module decides:
//! - **OFF0** session ended: PWM off, contactors open, lock commanded open; leaves when the lock
//!   reports open. **OFF1** vehicle still connected (CP B/C). **OFF2** vehicle gone, cable
//!   still in the socket. **OFF3** idle. The button in OFF0..OFF3 starts a session (A0).
//! - **OFF9** stopped after a timeout or an EV-side stop (vehicle unplugged, EV never resumed):
//!   lock open; the button acknowledges it (OFF0).
//! - **A0** nothing detected yet, **A1** only one of vehicle (CP B/C) and cable (valid PP) seen.
//!   Both within 30 s of the session start: B0; otherwise OFF9.
//! - **B0** lock commanded closed, waiting for the feedback. **B1** current offered, waiting up
//!   to 10 s for CP 6 V. A B1 timeout with less than 10 A offered means the EV rejected the PWM
//!   (W7); otherwise it is a retry (W1), and after the 5th retry the session stops (OFF9).
//! - **C0** CP 6 V seen, contactors still open; closes them after 0.5 s of steady C (so a
//!   bouncing pilot never clicks the contactors). **C2** the first 10 s with contactors closed on
//!   all allowed phases: phases on which the EV then draws less than 1.0 A are opened (C1,
//!   charging on a subset; `aphases` tells the host), and if it draws on none the EV rejected
//!   the phase set (W9). **C3** charging on all allowed phases.
//! - **P0** pause because the allocation fell below 6.0 A, **P1** pause because the phase set
//!   changed. The reference says "contactors open after 10 s"; this crate's invariant (never a
//!   closed contactor outside C or under 6 A offered) opens them at once, and the 10 s remain
//!   the minimum pause before the next offer. P0 then goes to W0, P1 to W8.
//! - **W0** 10 s wait after a pause, **W1** 10 s wait after a failed retry; both then offer
//!   again (B1) if the allocation is valid, else W6. **W6** waits for a valid allocation,
//!   **W7** for one of at least 10 A, **W8** 10 s after a phase-change pause then W6, **W9** for
//!   a valid allocation on a phase set other than the rejected one.
//! - In C1 a phase-set change pauses only if it drops a phase the EV is drawing on; in C2/C3
//!   any change pauses. A change before the contactors close (B, C0, W) needs no pause.
//! - In B/C/P/W: CP 12 V or the cable gone ends the session (OFF9); CP at D (ventilation is not
//!   supported), E, F or unreadable is a pilot protocol error (ERR0, flag 2).
//! - Any state with a lock command that the feedback does not confirm within 3 s: ERR0, flag 1.
//!   The button in ERR0 clears the flags and goes to OFF0.

mod io;
mod registers;
mod watchdog;

pub use io::{ErrorFlags, Inputs, LedPattern, LockCommand, Outputs};
pub use watchdog::{SetpointWatchdog, DEFAULT_TIMEOUT_S};

use crate::ccss::{Ccss, CcssGroup};
use crate::pilot::{self, CableRating, VehicleState};
use crate::units::{Deciamps, PhaseSet};

/// The `ver` register: 14 = v1.4 (v1.3 plus the setpoint watchdog).
pub const FIRMWARE_VERSION: i16 = 14;
/// A: how long a session waits for a vehicle and a cable.
pub const VEHICLE_TIMEOUT_MS: u64 = 30_000;
/// B1: how long an offer waits for CP 6 V.
pub const READY_TIMEOUT_MS: u64 = 10_000;
/// C0: how long CP must stay at 6 V before the contactors close.
pub const CONTACTOR_DELAY_MS: u64 = 500;
/// C2: how long the EV has to draw current on the allowed phases.
pub const PHASE_CHECK_MS: u64 = 10_000;
/// P: the minimum pause.
pub const PAUSE_MS: u64 = 10_000;
/// W0, W1, W8: the wait before offering again.
pub const WAIT_MS: u64 = 10_000;
/// How often an offer the EV did not take up is repeated before the session stops.
pub const MAX_RETRIES: u8 = 5;
/// How long the lock may take to reach its commanded position.
pub const LOCK_TIMEOUT_MS: u64 = 3_000;
/// C2: a phase counts as used when the EV draws at least this much on it.
pub const PHASE_IN_USE: Deciamps = Deciamps(10);
/// W7: the least an EV that rejected a small offer is offered again.
pub const REOFFER_MIN: Deciamps = Deciamps(100);

/// What the controller keeps in EEPROM (`save`) and starts from after a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The setpoint until the host writes one.
    pub smaxcur: Deciamps,
    pub phases: PhaseSet,
    /// Setpoint watchdog period in seconds; zero disables it.
    pub wdtsec: i16,
    /// What the bay falls back to when the watchdog expires.
    pub fsafecur: Deciamps,
}

impl Default for Config {
    /// Nothing allocated until a host speaks; a silent host pauses the bay after a minute.
    fn default() -> Self {
        Self {
            smaxcur: Deciamps::ZERO,
            phases: PhaseSet::ALL,
            wdtsec: DEFAULT_TIMEOUT_S,
            fsafecur: Deciamps::ZERO,
        }
    }
}

/// The current and phases the controller may offer right now: the setpoint (or the watchdog's
/// fallback) capped by the cable and the pilot's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Allocation {
    current: Deciamps,
    phases: PhaseSet,
}

impl Allocation {
    fn is_valid(self) -> bool {
        self.current >= Deciamps::MIN_CHARGE && !self.phases.is_empty()
    }
}

/// Test and diagnostic switches written through the parameter table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TestSwitches {
    /// `lock`: close the lock while no session runs.
    lock: bool,
    /// `cpcur`: raw PWM current offered while no session runs (zero = off).
    raw_offer: Deciamps,
}

/// One bay's charge controller. See the module documentation for the state machine.
///
/// ```
/// use ctrl22_node::controller::{ChargeController, Config, Inputs, LockCommand};
/// use ctrl22_node::params::{Param, ParameterStore};
/// use ctrl22_node::pilot::{CableRating, VehicleState};
/// use ctrl22_node::{Ccss, Deciamps, PhaseSet};
///
/// let mut bay = ChargeController::new(Config::default());
/// bay.set(0, Param::Smaxcur, 160)?; // the host allocates 16 A
/// let plugged = Inputs::default()
///     .with_cable(Some(CableRating::A32))
///     .with_vehicle(VehicleState::B);
/// let pressed = Inputs { button_pressed: true, ..plugged };
/// assert_eq!(bay.step(0, &pressed).ccss, Ccss::A0);
/// assert_eq!(bay.step(100, &plugged).lock, LockCommand::Closed); // B0
/// let locked = Inputs { lock_closed: true, ..plugged };
/// assert_eq!(bay.step(200, &locked).offered, Deciamps(160)); // B1: PWM at 26.6 %
/// let ready = locked.with_vehicle(VehicleState::C);
/// bay.step(300, &ready); // C0
/// assert_eq!(bay.step(800, &ready).contactors, PhaseSet::ALL); // C2
/// # Ok::<(), ctrl22_node::params::ParError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ChargeController {
    state: Ccss,
    state_since_ms: u64,
    session_start_ms: u64,
    error: ErrorFlags,
    retries: u8,
    /// Contactors closed while in C1..C3.
    closed: PhaseSet,
    /// The phase set the EV drew nothing on (W9).
    rejected_phases: PhaseSet,
    /// The lock command last driven and when it was issued: the lock has
    /// [`LOCK_TIMEOUT_MS`] from then to confirm it.
    lock_commanded: (LockCommand, u64),
    smaxcur: Deciamps,
    phases: PhaseSet,
    watchdog: SetpointWatchdog,
    /// `opbutton=1` waiting for the next step.
    button_requested: bool,
    /// `blinks`: LED override, -1 = automatic.
    blinks: i16,
    tests: TestSwitches,
    /// `time` register offset: seconds added to the uptime.
    time_offset_s: i64,
    save_requested: bool,
    reset_requested: bool,
    now_ms: u64,
    last_inputs: Inputs,
    last_outputs: Outputs,
}

impl ChargeController {
    /// A controller that read `config` from EEPROM, idle in OFF3.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            state: Ccss::Off3,
            state_since_ms: 0,
            session_start_ms: 0,
            error: ErrorFlags::NONE,
            retries: 0,
            closed: PhaseSet::NONE,
            rejected_phases: PhaseSet::NONE,
            lock_commanded: (LockCommand::Open, 0),
            smaxcur: config.smaxcur,
            phases: config.phases,
            watchdog: SetpointWatchdog::new(config.wdtsec, config.fsafecur),
            button_requested: false,
            blinks: -1,
            tests: TestSwitches::default(),
            time_offset_s: 0,
            save_requested: false,
            reset_requested: false,
            now_ms: 0,
            last_inputs: Inputs::default(),
            last_outputs: Outputs::default(),
        }
    }

    /// A controller whose EEPROM could not be read: defaults, in ERR0 with flag 4 until the
    /// operator acknowledges with the button.
    #[must_use]
    pub fn after_config_read_failure() -> Self {
        let mut controller = Self::new(Config::default());
        controller.state = Ccss::Err0;
        controller.error = ErrorFlags::CONFIG_READ;
        controller.last_outputs = controller.outputs(Allocation {
            current: Deciamps::ZERO,
            phases: PhaseSet::NONE,
        });
        controller
    }

    #[must_use]
    pub const fn ccss(&self) -> Ccss {
        self.state
    }

    #[must_use]
    pub const fn error(&self) -> ErrorFlags {
        self.error
    }

    /// The outputs of the last step.
    #[must_use]
    pub const fn outputs_now(&self) -> &Outputs {
        &self.last_outputs
    }

    /// The inputs of the last step.
    #[must_use]
    pub const fn inputs_now(&self) -> &Inputs {
        &self.last_inputs
    }

    /// The last written `smaxcur` (not the watchdog's fallback).
    #[must_use]
    pub const fn smaxcur(&self) -> Deciamps {
        self.smaxcur
    }

    #[must_use]
    pub const fn phases(&self) -> PhaseSet {
        self.phases
    }

    #[must_use]
    pub const fn watchdog(&self) -> &SetpointWatchdog {
        &self.watchdog
    }

    /// The values `save` persists.
    #[must_use]
    pub const fn config(&self) -> Config {
        Config {
            smaxcur: self.smaxcur,
            phases: self.phases,
            wdtsec: self.watchdog.timeout_s(),
            fsafecur: self.watchdog.fail_safe(),
        }
    }

    /// A `smaxcur` write: sets the setpoint and re-arms the watchdog.
    pub fn write_smaxcur(&mut self, now_ms: u64, smaxcur: Deciamps) {
        self.smaxcur = smaxcur;
        self.watchdog.feed(now_ms);
    }

    /// A `phases` write. It does not feed the watchdog: only the current setpoint does.
    pub fn write_phases(&mut self, phases: PhaseSet) {
        self.phases = phases;
    }

    /// `opbutton=1`: acts as a button press at the next step.
    pub fn press_button(&mut self) {
        self.button_requested = true;
    }

    /// The earliest time at which the controller changes state or falls back without any input
    /// changing: a driver may sleep until then (or until an input changes). A lock that has
    /// already overrun its time yields a deadline not after the last step: step at once.
    #[must_use]
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let in_state = |ms: u64| Some(self.state_since_ms + ms);
        let state_deadline = match self.state {
            Ccss::A0 | Ccss::A1 => Some(self.session_start_ms + VEHICLE_TIMEOUT_MS),
            Ccss::B1 => in_state(READY_TIMEOUT_MS),
            Ccss::C0 => in_state(CONTACTOR_DELAY_MS),
            Ccss::C2 => in_state(PHASE_CHECK_MS),
            Ccss::P0 | Ccss::P1 => in_state(PAUSE_MS),
            Ccss::W0 | Ccss::W1 | Ccss::W8 => in_state(WAIT_MS),
            _ => None,
        };
        let (lock, lock_since_ms) = self.lock_commanded;
        let lock_unconfirmed = (lock == LockCommand::Closed) != self.last_inputs.lock_closed;
        let lock_deadline = lock_unconfirmed.then_some(lock_since_ms + LOCK_TIMEOUT_MS);
        // An expired watchdog has nothing left to do.
        let watchdog_deadline = self.watchdog.deadline_ms().filter(|t| *t > self.now_ms);
        [state_deadline, lock_deadline, watchdog_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Advances the controller to `now_ms` with a fresh sensor sample. `now_ms` must not go
    /// backwards (a smaller value is treated as no time passing).
    pub fn step(&mut self, now_ms: u64, inputs: &Inputs) -> Outputs {
        let now_ms = now_ms.max(self.now_ms);
        self.now_ms = now_ms;
        self.last_inputs = *inputs;
        self.watchdog.arm_if_unarmed(now_ms);
        let button = inputs.button_pressed || core::mem::take(&mut self.button_requested);
        let vehicle = VehicleState::from_cp_mv(inputs.cp_mv).ok();
        let cable = CableRating::from_pp_ohms(inputs.pp_ohms).ok().flatten();
        let allocation = self.allocation(now_ms, cable);

        if self.lock_jammed(now_ms, inputs.lock_closed) {
            self.fail(now_ms, ErrorFlags::LOCK_JAMMED);
        } else if let Some(next) =
            self.next_state(now_ms, button, vehicle, cable, allocation, inputs)
        {
            self.enter(now_ms, next, allocation);
        }

        let mut outputs = self.outputs(allocation);
        outputs.save_config = core::mem::take(&mut self.save_requested);
        outputs.soft_reset = core::mem::take(&mut self.reset_requested);
        if outputs.lock != self.lock_commanded.0 {
            self.lock_commanded = (outputs.lock, now_ms);
        }
        self.last_outputs = outputs;
        outputs
    }

    fn allocation(&self, now_ms: u64, cable: Option<CableRating>) -> Allocation {
        let setpoint = self.watchdog.effective(now_ms, self.smaxcur);
        let current = cable.map_or(Deciamps::ZERO, |rating| {
            setpoint.min(rating.capacity()).min(pilot::MAX_SIGNALLED)
        });
        Allocation {
            current,
            phases: self.phases,
        }
    }

    fn lock_command(&self) -> LockCommand {
        let session_holds_lock = matches!(
            self.state.group(),
            CcssGroup::B | CcssGroup::C | CcssGroup::P | CcssGroup::W
        );
        let test_holds_lock = self.tests.lock && self.is_off();
        if session_holds_lock || test_holds_lock {
            LockCommand::Closed
        } else {
            LockCommand::Open
        }
    }

    /// Off and not in a session: where test switches may act.
    fn is_off(&self) -> bool {
        matches!(
            self.state,
            Ccss::Off0 | Ccss::Off1 | Ccss::Off2 | Ccss::Off3
        )
    }

    /// Whether the lock disagrees with a command issued at least [`LOCK_TIMEOUT_MS`] ago (so a
    /// lock that lets go long after confirming is reported at once). ERR0 does not supervise:
    /// it already reports, and releasing the lock is all it can do.
    fn lock_jammed(&self, now_ms: u64, lock_closed: bool) -> bool {
        let (command, since_ms) = self.lock_commanded;
        let confirmed = (command == LockCommand::Closed) == lock_closed;
        !confirmed && self.state != Ccss::Err0 && now_ms.saturating_sub(since_ms) >= LOCK_TIMEOUT_MS
    }

    fn fail(&mut self, now_ms: u64, flag: ErrorFlags) {
        self.error = self.error.union(flag);
        self.state = Ccss::Err0;
        self.state_since_ms = now_ms;
        self.closed = PhaseSet::NONE;
    }

    /// The transition this step makes, if any.
    fn next_state(
        &mut self,
        now_ms: u64,
        button: bool,
        vehicle: Option<VehicleState>,
        cable: Option<CableRating>,
        allocation: Allocation,
        inputs: &Inputs,
    ) -> Option<Ccss> {
        let in_state_ms = now_ms.saturating_sub(self.state_since_ms);
        let connected = matches!(vehicle, Some(VehicleState::B | VehicleState::C));
        match self.state.group() {
            CcssGroup::Off if self.state == Ccss::Off9 => button.then_some(Ccss::Off0),
            CcssGroup::Off if button => Some(Ccss::A0),
            CcssGroup::Off => {
                let lock_released = self.state != Ccss::Off0
                    || (self.lock_command() == LockCommand::Closed) == inputs.lock_closed;
                let idle = if connected {
                    Ccss::Off1
                } else if cable.is_some() {
                    Ccss::Off2
                } else {
                    Ccss::Off3
                };
                (lock_released && idle != self.state).then_some(idle)
            }
            CcssGroup::Err => button.then_some(Ccss::Off0),
            _ if button => Some(Ccss::Off0),
            CcssGroup::A => {
                let next = if now_ms.saturating_sub(self.session_start_ms) >= VEHICLE_TIMEOUT_MS {
                    Ccss::Off9
                } else if connected && cable.is_some() {
                    Ccss::B0
                } else if connected || cable.is_some() {
                    Ccss::A1
                } else {
                    Ccss::A0
                };
                (next != self.state).then_some(next)
            }
            _ => match vehicle {
                Some(VehicleState::A) => Some(Ccss::Off9),
                _ if cable.is_none() => Some(Ccss::Off9),
                Some(VehicleState::B | VehicleState::C) => {
                    let ready = vehicle == Some(VehicleState::C);
                    self.session_transition(in_state_ms, ready, allocation, inputs)
                }
                Some(VehicleState::D | VehicleState::E | VehicleState::F) | None => {
                    self.error = self.error.union(ErrorFlags::PROTOCOL);
                    Some(Ccss::Err0)
                }
            },
        }
    }

    /// Transitions of B, C, P and W while the vehicle is connected and the cable plugged in.
    fn session_transition(
        &mut self,
        in_state_ms: u64,
        ready: bool,
        allocation: Allocation,
        inputs: &Inputs,
    ) -> Option<Ccss> {
        let valid = allocation.is_valid();
        match self.state {
            Ccss::B0 => inputs
                .lock_closed
                .then_some(if valid { Ccss::B1 } else { Ccss::W6 }),
            // Nothing closed yet: no pause needed, just wait for an allocation.
            Ccss::B1 | Ccss::C0 if !valid => Some(Ccss::W6),
            Ccss::B1 if ready => Some(Ccss::C0),
            Ccss::B1 if in_state_ms >= READY_TIMEOUT_MS => Some(self.offer_not_taken(allocation)),
            // The EV stopped asking (or never settled): open up, keep offering.
            Ccss::C0 | Ccss::C1 | Ccss::C2 | Ccss::C3 if !ready => Some(Ccss::B1),
            Ccss::C0 if in_state_ms >= CONTACTOR_DELAY_MS => Some(Ccss::C2),
            Ccss::C1 | Ccss::C2 | Ccss::C3 if !valid => Some(Ccss::P0),
            Ccss::C1 | Ccss::C2 | Ccss::C3 if self.phase_change_needs_pause(allocation.phases) => {
                Some(Ccss::P1)
            }
            Ccss::C2 if in_state_ms >= PHASE_CHECK_MS => Some(self.check_phases(inputs)),
            Ccss::P0 if in_state_ms >= PAUSE_MS => Some(Ccss::W0),
            Ccss::P1 if in_state_ms >= PAUSE_MS => Some(Ccss::W8),
            Ccss::W0 | Ccss::W1 if in_state_ms >= WAIT_MS => {
                Some(if valid { Ccss::B1 } else { Ccss::W6 })
            }
            Ccss::W8 if in_state_ms >= WAIT_MS => Some(Ccss::W6),
            Ccss::W6 if valid => Some(Ccss::B1),
            Ccss::W7 if valid && allocation.current >= REOFFER_MIN => Some(Ccss::B1),
            Ccss::W9 if valid && allocation.phases != self.rejected_phases => Some(Ccss::B1),
            _ => None,
        }
    }

    /// B1 timed out: a small offer the EV ignored waits for a bigger one; otherwise retry, and
    /// stop after [`MAX_RETRIES`].
    fn offer_not_taken(&mut self, allocation: Allocation) -> Ccss {
        if allocation.current < REOFFER_MIN {
            Ccss::W7
        } else if self.retries < MAX_RETRIES {
            self.retries += 1;
            Ccss::W1
        } else {
            Ccss::Off9
        }
    }

    fn phase_change_needs_pause(&self, allowed: PhaseSet) -> bool {
        if self.state == Ccss::C1 {
            !self.closed.is_subset_of(allowed)
        } else {
            self.closed != allowed
        }
    }

    /// End of C2: keep the phases the EV draws on.
    fn check_phases(&mut self, inputs: &Inputs) -> Ccss {
        let drawn = self
            .closed
            .iter()
            .filter(|phase| {
                inputs
                    .currents
                    .get(phase.index())
                    .is_some_and(|current| *current >= PHASE_IN_USE)
            })
            .fold(PhaseSet::NONE, PhaseSet::with);
        if drawn.is_empty() {
            self.rejected_phases = self.closed;
            Ccss::W9
        } else if drawn == self.closed {
            Ccss::C3
        } else {
            self.closed = drawn;
            Ccss::C1
        }
    }

    fn enter(&mut self, now_ms: u64, next: Ccss, allocation: Allocation) {
        if next == Ccss::A0 && !self.state.in_session() {
            self.session_start_ms = now_ms;
            self.retries = 0;
        }
        if self.state == Ccss::Err0 {
            self.error = ErrorFlags::NONE;
        }
        match next {
            Ccss::C2 => {
                self.closed = allocation.phases;
                self.retries = 0;
            }
            // C2 -> C1 has narrowed `closed` already; C1 <-> C3 never happens directly.
            Ccss::C1 | Ccss::C3 => {}
            _ => self.closed = PhaseSet::NONE,
        }
        self.state = next;
        self.state_since_ms = now_ms;
    }

    fn outputs(&self, allocation: Allocation) -> Outputs {
        let offered = match self.state {
            Ccss::B1 | Ccss::C0 | Ccss::C1 | Ccss::C2 | Ccss::C3 => allocation.current,
            _ if self.is_off() => self.tests.raw_offer,
            _ => Deciamps::ZERO,
        };
        let charging = matches!(self.state, Ccss::C1 | Ccss::C2 | Ccss::C3);
        // The one place the safety invariant is enforced, whatever the transitions did.
        let contactors = if charging && offered >= Deciamps::MIN_CHARGE {
            self.closed
        } else {
            PhaseSet::NONE
        };
        Outputs {
            ccss: self.state,
            error: self.error,
            offered,
            contactors,
            lock: self.lock_command(),
            led: self.led(),
            save_config: false,
            soft_reset: false,
        }
    }

    fn led(&self) -> LedPattern {
        if let Ok(blinks) = u8::try_from(self.blinks) {
            return LedPattern::Blinks(blinks);
        }
        match self.state.group() {
            CcssGroup::Off if self.state == Ccss::Off9 => LedPattern::Stopped,
            CcssGroup::Off => LedPattern::Idle,
            CcssGroup::A => LedPattern::WaitingForVehicle,
            CcssGroup::B => LedPattern::Connected,
            CcssGroup::C => LedPattern::Charging,
            CcssGroup::P | CcssGroup::W => LedPattern::Paused,
            CcssGroup::Err => LedPattern::Error,
        }
    }
}
