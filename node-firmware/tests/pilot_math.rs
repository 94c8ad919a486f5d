//! Pilot arithmetic: both duty formula ranges and their boundaries, rejects, CP bands and PP
//! bands.

use ctrl22_node::pilot::{
    cmaxcur, current_for_duty, duty_for_current, CableRating, DutyPermille, PilotError,
    VehicleState, MAX_DUTY, MAX_SIGNALLED, MIN_DUTY, PP_OPEN_OHMS,
};
use ctrl22_node::Deciamps;
use proptest::prelude::*;

fn duty(deciamps: i16) -> Result<u16, PilotError> {
    duty_for_current(Deciamps(deciamps)).map(|d| d.0)
}

fn current(permille: u16) -> Result<i16, PilotError> {
    current_for_duty(DutyPermille(permille)).map(Deciamps::get)
}

#[test]
fn low_range_is_current_over_0_6_a() {
    assert_eq!(duty(60), Ok(100)); // 6 A -> 10 %
    assert_eq!(duty(100), Ok(166)); // 10 A -> 16.6 %
    assert_eq!(duty(160), Ok(266)); // 16 A -> 26.6 %
    assert_eq!(duty(320), Ok(533)); // 32 A -> 53.3 %
    assert_eq!(duty(510), Ok(850)); // 51 A -> 85 %
}

#[test]
fn high_range_is_current_over_2_5_a_plus_64() {
    assert_eq!(duty(511), Ok(844)); // 51.1 A -> 84.44 %, rounded down
    assert_eq!(duty(630), Ok(892)); // 63 A -> 89.2 %
    assert_eq!(duty(800), Ok(960)); // 80 A -> 96 %
}

#[test]
fn currents_outside_6_to_80_a_have_no_duty() {
    assert_eq!(duty(59), Err(PilotError::CurrentBelowMinimum(Deciamps(59))));
    assert!(duty(0).is_err());
    assert!(duty(-60).is_err());
    assert_eq!(
        duty(801),
        Err(PilotError::CurrentAboveMaximum(Deciamps(801)))
    );
}

#[test]
fn duty_decodes_with_both_formulas() {
    assert_eq!(current(100), Ok(60));
    assert_eq!(current(266), Ok(159));
    assert_eq!(current(850), Ok(510));
    assert_eq!(current(851), Ok(527)); // (85.1 - 64) * 2.5 = 52.75 A
    assert_eq!(current(892), Ok(630));
    assert_eq!(current(960), Ok(800));
    assert_eq!(MIN_DUTY, DutyPermille(100));
    assert_eq!(MAX_DUTY, DutyPermille(960));
}

#[test]
fn duties_outside_10_to_96_percent_signal_no_current() {
    for bad in [0, 50, 99, 961, 970, 1000, u16::MAX] {
        assert_eq!(
            current(bad),
            Err(PilotError::DutyOutOfRange(DutyPermille(bad))),
            "{bad}"
        );
    }
}

#[test]
fn cp_bands_have_sharp_edges() {
    let cases = [
        (13_500, Ok(VehicleState::A)),
        (10_501, Ok(VehicleState::A)),
        (10_500, Ok(VehicleState::B)),
        (7_501, Ok(VehicleState::B)),
        (7_500, Ok(VehicleState::C)),
        (4_500, Ok(VehicleState::D)),
        (1_500, Ok(VehicleState::E)),
        (-1_499, Ok(VehicleState::E)),
        (-10_500, Ok(VehicleState::F)),
        (-13_499, Ok(VehicleState::F)),
        (13_501, Err(PilotError::CpOutOfBand(13_501))),
        (-1_500, Err(PilotError::CpOutOfBand(-1_500))),
        (-10_499, Err(PilotError::CpOutOfBand(-10_499))),
        (-13_500, Err(PilotError::CpOutOfBand(-13_500))),
    ];
    for (mv, expected) in cases {
        assert_eq!(VehicleState::from_cp_mv(mv), expected, "{mv} mV");
    }
}

#[test]
fn pp_bands_and_open_circuit() {
    let cases = [
        (100, Ok(Some(CableRating::A63))),
        (50, Ok(Some(CableRating::A63))),
        (150, Ok(Some(CableRating::A63))),
        (151, Ok(Some(CableRating::A32))),
        (220, Ok(Some(CableRating::A32))),
        (680, Ok(Some(CableRating::A20))),
        (1_000, Ok(Some(CableRating::A20))),
        (1_001, Ok(Some(CableRating::A13))),
        (1_500, Ok(Some(CableRating::A13))),
        (2_700, Ok(Some(CableRating::A13))),
        (4_000, Ok(None)),
        (PP_OPEN_OHMS, Ok(None)),
        (0, Err(PilotError::PpOutOfBand(0))),
        (49, Err(PilotError::PpOutOfBand(49))),
        (3_000, Err(PilotError::PpOutOfBand(3_000))),
    ];
    for (ohms, expected) in cases {
        assert_eq!(CableRating::from_pp_ohms(ohms), expected, "{ohms} ohm");
    }
    assert_eq!(cmaxcur(1_500), Deciamps(130));
    assert_eq!(cmaxcur(680), Deciamps(200));
    assert_eq!(cmaxcur(220), Deciamps(320));
    assert_eq!(cmaxcur(100), Deciamps(630));
    assert_eq!(cmaxcur(PP_OPEN_OHMS), Deciamps(-1));
    assert_eq!(cmaxcur(3_000), Deciamps(-1));
}

proptest! {
    /// The vehicle never reads more than was offered, and at most 1.7 A less (the worst case is
    /// the 51.1-52.7 A seam between the two formulas: 52.5-52.7 A round down to exactly 85.0 %,
    /// which IEC 61851 reads with the lower formula as 51.0 A; elsewhere at most 0.3 A).
    #[test]
    fn decoding_an_encoded_current_never_exceeds_it(deciamps in 60..=MAX_SIGNALLED.get()) {
        let duty = duty_for_current(Deciamps(deciamps)).expect("in range");
        let back = current_for_duty(duty).expect("in range").get();
        prop_assert!(back <= deciamps);
        let seam = (511..=527).contains(&deciamps);
        prop_assert!(deciamps - back <= if seam { 17 } else { 3 }, "{deciamps} -> {duty} -> {back}");
    }

    /// Every duty in range decodes, and encoding the result gives a duty no higher.
    #[test]
    fn encoding_a_decoded_duty_never_exceeds_it(permille in MIN_DUTY.0..=MAX_DUTY.0) {
        let current = current_for_duty(DutyPermille(permille)).expect("in range");
        let again = duty_for_current(current).expect("in range");
        prop_assert!(again.0 <= permille);
    }

    #[test]
    fn any_cp_or_pp_reading_classifies_without_panicking(mv in any::<i32>(), ohms in any::<u32>()) {
        let _ = VehicleState::from_cp_mv(mv);
        let _ = CableRating::from_pp_ohms(ohms);
    }
}
