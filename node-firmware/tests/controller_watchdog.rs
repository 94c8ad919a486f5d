//! The setpoint watchdog: a host that stops writing `smaxcur` makes the bay fall back to
//! `fsafecur` (never above the last setpoint); a fresh write re-arms it; `wdtsec=0` disables it.

use ctrl22_node::controller::{
    ChargeController, Config, Inputs, LockCommand, Outputs, CONTACTOR_DELAY_MS, PAUSE_MS,
    PHASE_CHECK_MS, WAIT_MS,
};
use ctrl22_node::params::{Param, ParameterStore};
use ctrl22_node::pilot::{CableRating, VehicleState};
use ctrl22_node::{Ccss, Deciamps, PhaseSet};

/// When [`charging`] reaches C3, with `smaxcur` freshly written.
const T: u64 = CONTACTOR_DELAY_MS + PHASE_CHECK_MS;

/// A vehicle that charges on all phases whenever it may: ends in C3 at `T`.
fn charging(wdtsec: i16, fsafecur: i16) -> (ChargeController, Inputs) {
    let mut ctl = ChargeController::new(Config {
        smaxcur: Deciamps::ZERO,
        phases: PhaseSet::ALL,
        wdtsec,
        fsafecur: Deciamps(fsafecur),
    });
    let mut inputs = Inputs {
        currents: [Deciamps(160); 3],
        ..Inputs::default()
    };
    ctl.set(0, Param::Smaxcur, 160).expect("smaxcur");
    ctl.set(0, Param::Opbutton, 1).expect("opbutton");
    assert_eq!(ctl.step(0, &inputs).ccss, Ccss::A0);
    inputs = inputs
        .with_cable(Some(CableRating::A32))
        .with_vehicle(VehicleState::C);
    assert_eq!(ctl.step(0, &inputs).ccss, Ccss::B0);
    inputs.lock_closed = true;
    assert_eq!(ctl.step(0, &inputs).ccss, Ccss::B1);
    assert_eq!(ctl.step(0, &inputs).ccss, Ccss::C0);
    assert_eq!(ctl.step(CONTACTOR_DELAY_MS, &inputs).ccss, Ccss::C2);
    ctl.set(T, Param::Smaxcur, 160).expect("smaxcur");
    assert_eq!(ctl.step(T, &inputs).ccss, Ccss::C3);
    (ctl, inputs)
}

fn at(ctl: &mut ChargeController, now_ms: u64, inputs: &Inputs) -> Outputs {
    ctl.step(now_ms, inputs)
}

#[test]
fn silence_for_wdtsec_pauses_with_zero_fail_safe() {
    let (mut ctl, inputs) = charging(60, 0);
    assert_eq!(at(&mut ctl, T + 59_999, &inputs).offered, Deciamps(160));
    assert!(!ctl.watchdog().expired(T + 59_999));
    let out = at(&mut ctl, T + 60_000, &inputs);
    assert_eq!(out.ccss, Ccss::P0);
    assert_eq!(out.contactors, PhaseSet::NONE);
    assert_eq!(out.lock, LockCommand::Closed);
    // The register still shows what the host wrote.
    assert_eq!(ctl.get(Param::Smaxcur), Ok(160));
}

#[test]
fn a_fresh_write_rearms_and_the_session_resumes() {
    let (mut ctl, inputs) = charging(60, 0);
    ctl.set(T + 50_000, Param::Smaxcur, 160).expect("write");
    assert_eq!(at(&mut ctl, T + 109_999, &inputs).ccss, Ccss::C3);
    assert_eq!(at(&mut ctl, T + 110_000, &inputs).ccss, Ccss::P0);
    // Same value, but a write: re-armed.
    ctl.set(T + 111_000, Param::Smaxcur, 160).expect("write");
    assert_eq!(at(&mut ctl, T + 110_000 + PAUSE_MS, &inputs).ccss, Ccss::W0);
    let out = at(&mut ctl, T + 110_000 + PAUSE_MS + WAIT_MS, &inputs);
    assert_eq!((out.ccss, out.offered), (Ccss::B1, Deciamps(160)));
}

#[test]
fn fail_safe_current_is_used_without_a_pause() {
    let (mut ctl, inputs) = charging(10, 80);
    let out = at(&mut ctl, T + 10_000, &inputs);
    assert_eq!((out.ccss, out.offered), (Ccss::C3, Deciamps(80)));
    assert_eq!(out.contactors, PhaseSet::ALL);
    ctl.set(T + 10_500, Param::Smaxcur, 200).expect("write");
    assert_eq!(at(&mut ctl, T + 11_000, &inputs).offered, Deciamps(200));
}

#[test]
fn fail_safe_never_raises_the_last_setpoint() {
    let (mut ctl, inputs) = charging(10, 320);
    assert_eq!(at(&mut ctl, T + 30_000, &inputs).offered, Deciamps(160));
}

#[test]
fn phases_writes_do_not_feed_the_watchdog() {
    let (mut ctl, inputs) = charging(10, 0);
    ctl.set(T + 9_000, Param::Phases, 123).expect("write");
    assert_eq!(at(&mut ctl, T + 10_000, &inputs).ccss, Ccss::P0);
}

#[test]
fn zero_wdtsec_disables_it() {
    let (mut ctl, inputs) = charging(0, 0);
    let out = at(&mut ctl, 24 * 3_600_000, &inputs);
    assert_eq!((out.ccss, out.offered), (Ccss::C3, Deciamps(160)));
    // Enabling it later counts from the last write.
    ctl.set(24 * 3_600_000, Param::Wdtsec, 60).expect("write");
    assert_eq!(at(&mut ctl, 24 * 3_600_000 + 1, &inputs).ccss, Ccss::P0);
}

#[test]
fn a_controller_that_never_hears_a_host_falls_back_too() {
    let mut ctl = ChargeController::new(Config {
        smaxcur: Deciamps(160),
        phases: PhaseSet::ALL,
        wdtsec: 5,
        fsafecur: Deciamps::ZERO,
    });
    ctl.step(1_000, &Inputs::default());
    assert!(!ctl.watchdog().expired(5_999));
    assert!(ctl.watchdog().expired(6_000));
}
