//! Property: whatever the sensors, the button, the host and the clock do, the controller never
//! closes a contactor outside C1..C3, never with less than 6 A offered, never on a phase the
//! host did not allow, and never offers more than the cable and the setpoint allow.

use ctrl22_node::controller::{ChargeController, Config, Inputs, LockCommand};
use ctrl22_node::params::{Param, ParameterStore};
use ctrl22_node::pilot::{self, CableRating, VehicleState, PP_OPEN_OHMS};
use ctrl22_node::{Ccss, Deciamps, PhaseSet};
use proptest::prelude::*;

/// One thing that happens before the next step. Inputs persist between events, so a sequence
/// walks through whole sessions rather than flickering between unrelated samples.
#[derive(Clone, Debug)]
enum Event {
    Advance(u64),
    Cp(i32),
    Pp(u32),
    Button,
    /// `None`: the lock follows its command; `Some(level)`: it reports `level`.
    Lock(Option<bool>),
    Currents([i16; 3]),
    /// Mostly setpoints, sometimes any register with any value.
    Write(Param, i16),
}

fn cp_mv() -> impl Strategy<Value = i32> {
    let nominal = |state: VehicleState| Just(state.nominal_cp_mv());
    prop_oneof![
        6 => nominal(VehicleState::C),
        4 => nominal(VehicleState::B),
        1 => prop::sample::select(VehicleState::ALL.to_vec()).prop_map(VehicleState::nominal_cp_mv),
        1 => -14_000..14_000i32,
    ]
}

fn pp_ohms() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => prop::sample::select(CableRating::ALL.to_vec()).prop_map(CableRating::nominal_ohms),
        1 => Just(PP_OPEN_OHMS),
        1 => 0..5_000u32,
    ]
}

fn write() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => prop_oneof![0..=800i16, Just(0), Just(59), Just(60)]
            .prop_map(|value| Event::Write(Param::Smaxcur, value)),
        3 => prop::sample::select(vec![0i16, 1, 2, 3, 12, 13, 23, 123])
            .prop_map(|value| Event::Write(Param::Phases, value)),
        1 => (prop::sample::select(Param::ALL.to_vec()), any::<i16>())
            .prop_map(|(param, value)| Event::Write(param, value)),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        20 => prop_oneof![3 => 0..1_000u64, 2 => 1_000..15_000u64, 1 => 15_000..120_000u64]
            .prop_map(Event::Advance),
        8 => cp_mv().prop_map(Event::Cp),
        2 => pp_ohms().prop_map(Event::Pp),
        2 => Just(Event::Button),
        2 => prop_oneof![3 => Just(None), 1 => any::<bool>().prop_map(Some)].prop_map(Event::Lock),
        5 => prop::array::uniform3(prop_oneof![0..20i16, 50..400i16]).prop_map(Event::Currents),
        8 => write(),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (0..=800i16, 0..=120i16, 0..=800i16).prop_map(|(smaxcur, wdtsec, fsafecur)| Config {
        smaxcur: Deciamps(smaxcur),
        phases: PhaseSet::ALL,
        wdtsec,
        fsafecur: Deciamps(fsafecur),
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn contactors_only_close_while_charging_with_a_valid_offer(
        config in config(),
        events in prop::collection::vec(event(), 1..400),
    ) {
        let mut ctl = ChargeController::new(config);
        let mut now_ms = 0u64;
        let mut inputs = Inputs::default();
        let mut stuck_lock = None;
        let mut lock = LockCommand::Open;
        for event in &events {
            inputs.button_pressed = false;
            match *event {
                Event::Advance(ms) => now_ms += ms,
                Event::Cp(mv) => inputs.cp_mv = mv,
                Event::Pp(ohms) => inputs.pp_ohms = ohms,
                Event::Button => inputs.button_pressed = true,
                Event::Lock(level) => stuck_lock = level,
                Event::Currents(per_phase) => inputs.currents = per_phase.map(Deciamps),
                // Refusals are fine; only the effect on the outputs matters here.
                Event::Write(param, value) => { let _ = ctl.set(now_ms, param, value); }
            }
            inputs.lock_closed = stuck_lock.unwrap_or(lock == LockCommand::Closed);
            let out = ctl.step(now_ms, &inputs);
            lock = out.lock;

            prop_assert_eq!(ctl.get(Param::Ccss), Ok(i16::from(out.ccss.code())));
            prop_assert_eq!(ctl.get(Param::Amaxcur), Ok(out.offered.get()));
            prop_assert!(out.offered.is_valid_offer(), "{out:?}");
            if !out.contactors.is_empty() {
                prop_assert!(matches!(out.ccss, Ccss::C1 | Ccss::C2 | Ccss::C3), "{out:?}");
                prop_assert!(out.offered >= Deciamps::MIN_CHARGE, "{out:?}");
                prop_assert!(out.contactors.is_subset_of(ctl.phases()), "{out:?}");
                prop_assert_eq!(out.lock, LockCommand::Closed);
            }
            if out.ccss.in_session() && out.offered > Deciamps::ZERO {
                prop_assert!(out.offered <= pilot::cmaxcur(inputs.pp_ohms), "{out:?}");
                prop_assert!(out.offered <= ctl.smaxcur(), "{out:?}");
            }
        }
    }
}
