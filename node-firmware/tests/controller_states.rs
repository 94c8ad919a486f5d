//! Every `ccss` transition of the charge controller, with its timeouts, driven through a bench
//! that plays an ideal lock (its feedback follows the previous command) and a scripted vehicle.

use ctrl22_node::controller::{
    ChargeController, Config, ErrorFlags, Inputs, LedPattern, LockCommand, Outputs,
    CONTACTOR_DELAY_MS, LOCK_TIMEOUT_MS, MAX_RETRIES, PAUSE_MS, PHASE_CHECK_MS, READY_TIMEOUT_MS,
    VEHICLE_TIMEOUT_MS, WAIT_MS,
};
use ctrl22_node::params::{ParError, Param, ParameterStore};
use ctrl22_node::pilot::{CableRating, VehicleState};
use ctrl22_node::{Ccss, Deciamps, PhaseSet};

const L12: i32 = 12;

struct Bench {
    ctl: ChargeController,
    now_ms: u64,
    inputs: Inputs,
    last: Outputs,
    /// The lock's feedback follows its command; off = the lock is jammed where it is.
    lock_works: bool,
}

impl Bench {
    fn new() -> Self {
        Self::with_config(Config {
            smaxcur: Deciamps(160),
            phases: PhaseSet::ALL,
            wdtsec: 0,
            fsafecur: Deciamps::ZERO,
        })
    }

    fn with_config(config: Config) -> Self {
        let mut bench = Self {
            ctl: ChargeController::new(config),
            now_ms: 0,
            inputs: Inputs::default(),
            last: Outputs::default(),
            lock_works: true,
        };
        bench.step();
        bench
    }

    fn step(&mut self) -> Outputs {
        if self.lock_works {
            self.inputs.lock_closed = self.last.lock == LockCommand::Closed;
        }
        self.last = self.ctl.step(self.now_ms, &self.inputs);
        self.inputs.button_pressed = false;
        self.last
    }

    fn advance(&mut self, ms: u64) -> Outputs {
        self.now_ms += ms;
        self.step()
    }

    fn press(&mut self) -> Outputs {
        self.inputs.button_pressed = true;
        self.step()
    }

    fn vehicle(&mut self, state: VehicleState) -> Outputs {
        self.inputs = self.inputs.with_vehicle(state);
        self.step()
    }

    fn draw(&mut self, per_phase: [i16; 3]) {
        self.inputs.currents = per_phase.map(Deciamps);
    }

    fn set(&mut self, param: Param, value: i16) {
        self.ctl
            .set(self.now_ms, param, value)
            .expect("accepted write");
    }

    /// A register write, then a step.
    fn write(&mut self, param: Param, value: i16) -> Outputs {
        self.set(param, value);
        self.step()
    }

    fn ccss(&self) -> Ccss {
        self.last.ccss
    }

    /// Button, plug in a 32 A cable and a vehicle: ends in B1 offering current.
    fn reach_b1(&mut self) {
        assert_eq!(self.press().ccss, Ccss::A0);
        self.inputs = self
            .inputs
            .with_cable(Some(CableRating::A32))
            .with_vehicle(VehicleState::B);
        assert_eq!(self.step().ccss, Ccss::B0);
        assert_eq!(self.last.lock, LockCommand::Closed);
        assert_eq!(self.last.offered, Deciamps::ZERO);
        assert_eq!(self.step().ccss, Ccss::B1);
    }

    /// ... then the vehicle asks for current and the contactors close: C2.
    fn reach_c2(&mut self) {
        self.reach_b1();
        assert_eq!(self.vehicle(VehicleState::C).ccss, Ccss::C0);
        assert_eq!(self.last.contactors, PhaseSet::NONE);
        assert_eq!(self.advance(CONTACTOR_DELAY_MS).ccss, Ccss::C2);
    }

    /// ... and draws on every phase: C3.
    fn reach_c3(&mut self) {
        self.reach_c2();
        self.draw([158, 157, 160]);
        assert_eq!(self.advance(PHASE_CHECK_MS).ccss, Ccss::C3);
    }
}

fn phases(digits: i32) -> PhaseSet {
    PhaseSet::from_digits(digits).expect("phase set")
}

#[test]
fn boots_idle_and_follows_the_socket_while_off() {
    let mut bench = Bench::new();
    assert_eq!(bench.ccss(), Ccss::Off3);
    assert_eq!(bench.last.led, LedPattern::Idle);
    bench.inputs = bench.inputs.with_cable(Some(CableRating::A20));
    assert_eq!(bench.step().ccss, Ccss::Off2);
    assert_eq!(bench.vehicle(VehicleState::B).ccss, Ccss::Off1);
    assert_eq!(bench.last.offered, Deciamps::ZERO);
    bench.inputs = Inputs::default();
    assert_eq!(bench.step().ccss, Ccss::Off3);
}

#[test]
fn vehicle_and_cable_within_30_s_reach_b() {
    let mut bench = Bench::new();
    assert_eq!(bench.press().ccss, Ccss::A0);
    assert_eq!(bench.last.led, LedPattern::WaitingForVehicle);
    bench.inputs = bench.inputs.with_cable(Some(CableRating::A13));
    assert_eq!(bench.advance(20_000).ccss, Ccss::A1);
    bench.inputs = bench.inputs.with_vehicle(VehicleState::B);
    assert_eq!(bench.advance(9_999).ccss, Ccss::B0);
    assert_eq!(bench.step().ccss, Ccss::B1);
    // Capped by the 13 A cable, not the 16 A setpoint.
    assert_eq!(bench.last.offered, Deciamps(130));
    assert_eq!(bench.last.led, LedPattern::Connected);
}

#[test]
fn no_vehicle_within_30_s_stops_and_the_button_acknowledges() {
    let mut bench = Bench::new();
    bench.press();
    bench.inputs = bench.inputs.with_vehicle(VehicleState::B);
    assert_eq!(bench.advance(VEHICLE_TIMEOUT_MS - 1).ccss, Ccss::A1);
    assert_eq!(bench.advance(1).ccss, Ccss::Off9);
    assert_eq!(bench.last.led, LedPattern::Stopped);
    // OFF9 is sticky: time and the vehicle change nothing.
    assert_eq!(bench.advance(60_000).ccss, Ccss::Off9);
    assert_eq!(bench.press().ccss, Ccss::Off0);
    assert_eq!(bench.step().ccss, Ccss::Off1);
    // A new session starts with a fresh 30 s.
    assert_eq!(bench.press().ccss, Ccss::A0);
    assert_eq!(bench.step().ccss, Ccss::A1);
}

#[test]
fn a_lock_that_does_not_close_is_jammed() {
    let mut bench = Bench::new();
    bench.lock_works = false;
    bench.press();
    bench.inputs = bench
        .inputs
        .with_cable(Some(CableRating::A32))
        .with_vehicle(VehicleState::B);
    assert_eq!(bench.step().ccss, Ccss::B0);
    assert_eq!(bench.advance(LOCK_TIMEOUT_MS - 1).ccss, Ccss::B0);
    let out = bench.advance(1);
    assert_eq!(out.ccss, Ccss::Err0);
    assert_eq!(out.error, ErrorFlags::LOCK_JAMMED);
    assert_eq!(out.lock, LockCommand::Open);
    assert_eq!(out.led, LedPattern::Error);
    assert_eq!(bench.ctl.get(Param::Error), Ok(1));
    let out = bench.press();
    assert_eq!((out.ccss, out.error), (Ccss::Off0, ErrorFlags::NONE));
}

#[test]
fn offer_not_taken_is_retried_five_times_then_stops() {
    let mut bench = Bench::new();
    bench.reach_b1();
    for retry in 1..=MAX_RETRIES {
        assert_eq!(
            bench.advance(READY_TIMEOUT_MS - 1).ccss,
            Ccss::B1,
            "retry {retry}"
        );
        assert_eq!(bench.advance(1).ccss, Ccss::W1, "retry {retry}");
        assert_eq!(bench.last.offered, Deciamps::ZERO);
        assert_eq!(bench.advance(WAIT_MS - 1).ccss, Ccss::W1);
        assert_eq!(bench.advance(1).ccss, Ccss::B1);
    }
    assert_eq!(bench.advance(READY_TIMEOUT_MS).ccss, Ccss::Off9);
    assert_eq!(bench.last.lock, LockCommand::Open);
}

#[test]
fn a_small_offer_not_taken_waits_for_10_a() {
    let mut bench = Bench::new();
    bench.set(Param::Smaxcur, 80);
    bench.reach_b1();
    assert_eq!(bench.last.offered, Deciamps(80));
    assert_eq!(bench.advance(READY_TIMEOUT_MS).ccss, Ccss::W7);
    bench.set(Param::Smaxcur, 99);
    assert_eq!(bench.advance(60_000).ccss, Ccss::W7);
    bench.set(Param::Smaxcur, 100);
    let out = bench.step();
    assert_eq!((out.ccss, out.offered), (Ccss::B1, Deciamps(100)));
}

#[test]
fn no_valid_allocation_waits_in_w6() {
    let mut bench = Bench::new();
    bench.set(Param::Smaxcur, 59);
    bench.press();
    bench.inputs = bench
        .inputs
        .with_cable(Some(CableRating::A32))
        .with_vehicle(VehicleState::B);
    assert_eq!(bench.step().ccss, Ccss::B0);
    assert_eq!(bench.step().ccss, Ccss::W6);
    assert_eq!(bench.advance(600_000).ccss, Ccss::W6);
    bench.set(Param::Smaxcur, 60);
    assert_eq!(bench.write(Param::Phases, 0).ccss, Ccss::W6);
    assert_eq!(bench.write(Param::Phases, 2).ccss, Ccss::B1);
    // Losing it again before the contactors close needs no pause.
    assert_eq!(bench.write(Param::Smaxcur, 0).ccss, Ccss::W6);
}

#[test]
fn ready_vehicle_gets_contactors_after_the_debounce() {
    let mut bench = Bench::new();
    bench.reach_b1();
    assert_eq!(bench.vehicle(VehicleState::C).ccss, Ccss::C0);
    // A pilot that bounces back to B never closes anything.
    assert_eq!(bench.vehicle(VehicleState::B).ccss, Ccss::B1);
    assert_eq!(bench.vehicle(VehicleState::C).ccss, Ccss::C0);
    assert_eq!(bench.advance(CONTACTOR_DELAY_MS - 1).ccss, Ccss::C0);
    let out = bench.advance(1);
    assert_eq!(out.ccss, Ccss::C2);
    assert_eq!(out.contactors, PhaseSet::ALL);
    assert_eq!(out.offered, Deciamps(160));
    assert_eq!(out.pwm_duty().map(|d| d.0), Some(266));
    assert_eq!(out.led, LedPattern::Charging);
}

#[test]
fn phase_check_keeps_all_phases_a_subset_or_rejects() {
    // Draws on all: C3.
    let mut bench = Bench::new();
    bench.reach_c3();
    assert_eq!(bench.last.contactors, PhaseSet::ALL);

    // Draws on L1 only: C1 with L1 closed.
    let mut bench = Bench::new();
    bench.reach_c2();
    bench.draw([160, 3, 0]);
    assert_eq!(bench.advance(PHASE_CHECK_MS - 1).ccss, Ccss::C2);
    let out = bench.advance(1);
    assert_eq!((out.ccss, out.contactors), (Ccss::C1, PhaseSet::L1));
    assert_eq!(bench.ctl.get(Param::Ccss), Ok(31));

    // Draws nothing: W9 until the phase set changes.
    let mut bench = Bench::new();
    bench.set(Param::Phases, L12 as i16);
    bench.reach_c2();
    assert_eq!(bench.last.contactors, phases(L12));
    let out = bench.advance(PHASE_CHECK_MS);
    assert_eq!((out.ccss, out.contactors), (Ccss::W9, PhaseSet::NONE));
    assert_eq!(out.offered, Deciamps::ZERO);
    bench.set(Param::Phases, 21);
    assert_eq!(bench.advance(60_000).ccss, Ccss::W9);
    assert_eq!(bench.write(Param::Phases, 3).ccss, Ccss::B1);
}

#[test]
fn allocation_below_6_a_pauses_and_resumes_by_itself() {
    let mut bench = Bench::new();
    bench.reach_c3();
    bench.set(Param::Smaxcur, 50);
    let out = bench.step();
    assert_eq!((out.ccss, out.offered), (Ccss::P0, Deciamps::ZERO));
    assert_eq!(out.contactors, PhaseSet::NONE);
    assert_eq!(out.lock, LockCommand::Closed);
    assert_eq!(out.led, LedPattern::Paused);
    bench.vehicle(VehicleState::B);
    assert_eq!(bench.advance(PAUSE_MS - 1).ccss, Ccss::P0);
    assert_eq!(bench.advance(1).ccss, Ccss::W0);
    assert_eq!(bench.advance(WAIT_MS).ccss, Ccss::W6);
    assert_eq!(bench.write(Param::Smaxcur, 70).ccss, Ccss::B1);
    bench.vehicle(VehicleState::C);
    assert_eq!(bench.advance(CONTACTOR_DELAY_MS).ccss, Ccss::C2);
    assert_eq!(bench.last.offered, Deciamps(70));
}

#[test]
fn allocation_back_during_the_pause_offers_after_the_wait() {
    let mut bench = Bench::new();
    bench.reach_c3();
    assert_eq!(bench.write(Param::Smaxcur, 0).ccss, Ccss::P0);
    bench.set(Param::Smaxcur, 160);
    assert_eq!(bench.advance(PAUSE_MS).ccss, Ccss::W0);
    assert_eq!(bench.advance(WAIT_MS - 1).ccss, Ccss::W0);
    assert_eq!(bench.advance(1).ccss, Ccss::B1);
}

#[test]
fn current_changes_above_6_a_follow_without_a_pause() {
    let mut bench = Bench::new();
    bench.reach_c3();
    bench.set(Param::Smaxcur, 60);
    let out = bench.step();
    assert_eq!((out.ccss, out.offered), (Ccss::C3, Deciamps(60)));
    bench.set(Param::Smaxcur, 700);
    // Capped by the 32 A cable.
    assert_eq!(bench.step().offered, Deciamps(320));
}

#[test]
fn phase_change_pauses_then_waits_as_w8_then_w6() {
    let mut bench = Bench::new();
    bench.reach_c3();
    bench.set(Param::Phases, 1);
    let out = bench.step();
    assert_eq!((out.ccss, out.contactors), (Ccss::P1, PhaseSet::NONE));
    assert_eq!(bench.advance(PAUSE_MS).ccss, Ccss::W8);
    assert_eq!(bench.advance(WAIT_MS - 1).ccss, Ccss::W8);
    assert_eq!(bench.advance(1).ccss, Ccss::W6);
    assert_eq!(bench.step().ccss, Ccss::B1);
    assert_eq!(bench.advance(CONTACTOR_DELAY_MS).ccss, Ccss::C0);
    assert_eq!(bench.advance(CONTACTOR_DELAY_MS).contactors, PhaseSet::L1);
}

#[test]
fn phase_change_keeping_the_used_phases_does_not_pause_c1() {
    let mut bench = Bench::new();
    bench.reach_c2();
    bench.draw([160, 0, 0]);
    assert_eq!(bench.advance(PHASE_CHECK_MS).ccss, Ccss::C1);
    assert_eq!(bench.write(Param::Phases, L12 as i16).ccss, Ccss::C1);
    assert_eq!(bench.write(Param::Phases, 23).ccss, Ccss::P1);
}

#[test]
fn ev_going_back_to_b_opens_the_contactors() {
    let mut bench = Bench::new();
    bench.reach_c3();
    let out = bench.vehicle(VehicleState::B);
    assert_eq!((out.ccss, out.contactors), (Ccss::B1, PhaseSet::NONE));
    assert_eq!(out.offered, Deciamps(160));
    assert_eq!(bench.vehicle(VehicleState::C).ccss, Ccss::C0);
}

#[test]
fn button_ends_the_session_from_every_session_group() {
    let mut bench = Bench::new();
    bench.press();
    assert_eq!(bench.press().ccss, Ccss::Off0);

    let mut bench = Bench::new();
    bench.reach_b1();
    assert_eq!(bench.press().ccss, Ccss::Off0);

    let mut bench = Bench::new();
    bench.reach_c3();
    let out = bench.press();
    assert_eq!(out.ccss, Ccss::Off0);
    assert_eq!(out.contactors, PhaseSet::NONE);
    assert_eq!(out.offered, Deciamps::ZERO);
    assert_eq!(out.lock, LockCommand::Open);
    assert_eq!(bench.step().ccss, Ccss::Off1);

    let mut bench = Bench::new();
    bench.reach_c3();
    assert_eq!(bench.write(Param::Smaxcur, 0).ccss, Ccss::P0);
    assert_eq!(bench.press().ccss, Ccss::Off0);

    let mut bench = Bench::new();
    bench.reach_c3();
    bench.set(Param::Smaxcur, 0);
    bench.step();
    assert_eq!(bench.advance(PAUSE_MS).ccss, Ccss::W0);
    assert_eq!(bench.press().ccss, Ccss::Off0);
}

#[test]
fn opbutton_register_acts_as_the_button() {
    let mut bench = Bench::new();
    assert_eq!(bench.write(Param::Opbutton, 1).ccss, Ccss::A0);
    assert_eq!(bench.write(Param::Opbutton, 0).ccss, Ccss::A0);
    assert_eq!(bench.write(Param::Opbutton, 1).ccss, Ccss::Off0);
}

#[test]
fn unplugging_during_a_session_stops_it() {
    let mut bench = Bench::new();
    bench.reach_c3();
    let out = bench.vehicle(VehicleState::A);
    assert_eq!((out.ccss, out.contactors), (Ccss::Off9, PhaseSet::NONE));

    let mut bench = Bench::new();
    bench.reach_b1();
    bench.inputs = bench.inputs.with_cable(None);
    assert_eq!(bench.step().ccss, Ccss::Off9);
}

#[test]
fn pilot_faults_during_a_session_are_protocol_errors() {
    for bad in [VehicleState::D, VehicleState::E, VehicleState::F] {
        let mut bench = Bench::new();
        bench.reach_c3();
        let out = bench.vehicle(bad);
        assert_eq!(out.ccss, Ccss::Err0, "{bad}");
        assert_eq!(out.error, ErrorFlags::PROTOCOL);
        assert_eq!(out.contactors, PhaseSet::NONE);
        assert_eq!(out.offered, Deciamps::ZERO);
    }
    let mut bench = Bench::new();
    bench.reach_b1();
    bench.inputs.cp_mv = -5_000;
    assert_eq!(bench.step().error, ErrorFlags::PROTOCOL);
}

#[test]
fn config_read_failure_starts_in_err0() {
    let mut ctl = ChargeController::after_config_read_failure();
    assert_eq!(ctl.ccss(), Ccss::Err0);
    assert_eq!(ctl.get(Param::Error), Ok(4));
    let out = ctl.step(0, &Inputs::default());
    assert_eq!(out.ccss, Ccss::Err0);
    let pressed = Inputs {
        button_pressed: true,
        ..Inputs::default()
    };
    assert_eq!(ctl.step(1, &pressed).ccss, Ccss::Off0);
    assert_eq!(ctl.config(), Config::default());
}

#[test]
fn deadlines_name_the_next_timeout() {
    let mut bench = Bench::new();
    bench.reach_b1();
    assert_eq!(
        bench.ctl.next_deadline_ms(),
        Some(bench.now_ms + READY_TIMEOUT_MS)
    );
    let mut bench = Bench::new();
    bench.lock_works = false;
    bench.press();
    bench.inputs = bench
        .inputs
        .with_cable(Some(CableRating::A32))
        .with_vehicle(VehicleState::B);
    bench.advance(1_000);
    assert_eq!(bench.ctl.next_deadline_ms(), Some(1_000 + LOCK_TIMEOUT_MS));

    let mut bench = Bench::new();
    assert_eq!(bench.ctl.next_deadline_ms(), None);
    bench.set(Param::Wdtsec, 5);
    bench.set(Param::Smaxcur, 100);
    assert_eq!(bench.ctl.next_deadline_ms(), Some(5_000));
}

#[test]
fn registers_check_access_and_range() {
    let mut bench = Bench::new();
    let ctl = &mut bench.ctl;
    assert_eq!(ctl.get(Param::Ver), Ok(14));
    assert_eq!(ctl.get(Param::Ccss), Ok(3));
    assert_eq!(ctl.get(Param::Cmaxcur), Ok(-1));
    assert_eq!(ctl.get(Param::Phases), Ok(123));
    assert_eq!(ctl.get(Param::Blinks), Ok(-1));
    assert_eq!(ctl.get(Param::Wdtsec), Ok(0));
    assert_eq!(
        ctl.set(0, Param::Ccss, 1),
        Err(ParError::ReadOnly(Param::Ccss))
    );
    assert_eq!(
        ctl.get(Param::Opbutton),
        Err(ParError::WriteOnly(Param::Opbutton))
    );
    assert_eq!(
        ctl.set(0, Param::Smaxcur, 801),
        Err(ParError::OutOfRange {
            param: Param::Smaxcur,
            value: 801
        })
    );
    assert!(ctl.set(0, Param::Smaxcur, -1).is_err());
    assert!(ctl.set(0, Param::Phases, 124).is_err());
    assert!(ctl.set(0, Param::Ssr, 1).is_err());
    assert_eq!(ctl.set(0, Param::Phases, 31), Ok(()));
    assert_eq!(ctl.get(Param::Phases), Ok(13));
    assert_eq!(ctl.set(0, Param::Blinks, 3), Ok(()));
    assert_eq!(bench.step().led, LedPattern::Blinks(3));

    bench.inputs = bench.inputs.with_cable(Some(CableRating::A63));
    bench.draw([12, 34, 56]);
    bench.step();
    let ctl = &bench.ctl;
    assert_eq!(ctl.get(Param::Cmaxcur), Ok(630));
    assert_eq!(ctl.get(Param::Ppilot), Ok(630));
    assert_eq!(
        [Param::Cur1, Param::Cur2, Param::Cur3].map(|p| ctl.get(p)),
        [Ok(12), Ok(34), Ok(56)]
    );
}

#[test]
fn test_switches_only_act_without_a_session() {
    let mut bench = Bench::new();
    bench.set(Param::Lock, 1);
    assert_eq!(bench.step().lock, LockCommand::Closed);
    bench.set(Param::Cpcur, 100);
    let out = bench.step();
    assert_eq!(
        (out.offered, out.contactors),
        (Deciamps(100), PhaseSet::NONE)
    );
    bench.set(Param::Cpcur, 0);
    bench.set(Param::Lock, 0);
    bench.reach_b1();
    assert_eq!(
        bench.ctl.set(bench.now_ms, Param::Lock, 1),
        Err(ParError::InSession(Param::Lock))
    );
    assert_eq!(
        bench.ctl.set(bench.now_ms, Param::Cpcur, 60),
        Err(ParError::InSession(Param::Cpcur))
    );
}

#[test]
fn save_reset_and_time_registers() {
    let mut bench = Bench::new();
    bench.set(Param::Save, 1);
    bench.set(Param::Wdtsec, 30);
    bench.set(Param::Fsafecur, 60);
    let out = bench.step();
    assert!(out.save_config && !out.soft_reset);
    assert!(!bench.step().save_config);
    assert_eq!(
        bench.ctl.config(),
        Config {
            smaxcur: Deciamps(160),
            phases: PhaseSet::ALL,
            wdtsec: 30,
            fsafecur: Deciamps(60),
        }
    );
    bench.set(Param::Reset, 1);
    assert!(bench.step().soft_reset);

    bench.set(Param::Time, 1_000);
    assert_eq!(bench.ctl.get(Param::Time), Ok(1_000));
    bench.advance(5_500);
    assert_eq!(bench.ctl.get(Param::Time), Ok(1_005));
}
