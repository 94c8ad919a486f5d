//! Scenario tests of the sequencer: the orderings SPEC section 4 asks for, one at a time.
#![allow(clippy::unwrap_used)]

use super::*;

const STRAIGHT: BayWiring = BayWiring::STRAIGHT;

fn params() -> SequencerParams {
    SequencerParams {
        startup_grace_ms: 0,
        ..SequencerParams::default()
    }
}

fn site(limit: i16, bays: usize, params: SequencerParams) -> Sequencer {
    let group = LimitGroup {
        name: "site".into(),
        limit: [Deciamps(limit); 3],
        bays: (0..bays).collect(),
    };
    Sequencer::new(0, params, vec![group], vec![STRAIGHT; bays]).unwrap()
}

fn phases(digits: i32) -> PhaseSet {
    PhaseSet::from_digits(digits).unwrap()
}

fn target(current: i16, digits: i32, fail_safe: i16) -> Target {
    Target {
        setpoint: Setpoint {
            current: Deciamps(current),
            phases: phases(digits),
        },
        fail_safe: Deciamps(fail_safe),
    }
}

/// A heartbeat of a node offering `amaxcur` whose vehicle draws `drawn` on every phase.
fn heartbeat(amaxcur: i16, drawn: i16) -> Measurement {
    heartbeat_on(amaxcur, drawn, PhaseSet::ALL)
}

fn heartbeat_on(amaxcur: i16, drawn: i16, on: PhaseSet) -> Measurement {
    Measurement {
        amaxcur: Deciamps(amaxcur),
        aphases: on,
        cur: Phase::ALL.map(|p| {
            if on.contains(p) {
                Deciamps(drawn)
            } else {
                Deciamps::ZERO
            }
        }),
    }
}

fn cmd(bay: usize, par: Param, value: i16) -> SetparCommand {
    SetparCommand { bay, par, value }
}

/// Acknowledges every write (and those that follow) as applied until none is left; returns
/// them all in the order sent.
fn ack_all(seq: &mut Sequencer, now_ms: u64, first: Vec<SetparCommand>) -> Vec<SetparCommand> {
    let mut sent = Vec::new();
    let mut queue = std::collections::VecDeque::from(first);
    while let Some(c) = queue.pop_front() {
        sent.push(c);
        assert!(sent.len() < 1000, "no end of writes");
        queue.extend(seq.on_ack(now_ms, c.bay, true));
    }
    sent
}

/// Discovers `bays` at `amaxcur` and brings them to `t` with every write confirmed.
fn settled(limit: i16, amaxcur: i16, t: Target, bays: usize) -> Sequencer {
    let mut seq = site(limit, bays, params());
    for bay in 0..bays {
        let first = seq.on_heartbeat(0, bay, &heartbeat(amaxcur, amaxcur));
        ack_all(&mut seq, 0, first);
    }
    let targets: Vec<_> = (0..bays).map(|b| (b, t)).collect();
    let first = seq.set_targets(0, &targets);
    ack_all(&mut seq, 0, first);
    // Lowerings are held until the vehicles are seen to follow.
    for _ in 0..3 {
        for bay in 0..bays {
            let drawn = t.setpoint.current.get();
            let next = seq.on_heartbeat(0, bay, &heartbeat_on(drawn, drawn, t.setpoint.phases));
            ack_all(&mut seq, 0, next);
        }
    }
    for bay in 0..bays {
        assert!(seq.is_settled(bay), "bay {bay} not settled");
    }
    seq
}

#[test]
fn a_reduction_goes_out_before_the_increase_it_makes_room_for() {
    let mut seq = settled(320, 160, target(160, 123, 60), 2);
    let sent = seq.set_targets(
        1_000,
        &[(0, target(100, 123, 60)), (1, target(220, 123, 60))],
    );
    assert_eq!(sent, vec![cmd(0, Param::Smaxcur, 100)]);
    // Confirmed, but the vehicle may still draw 16 A: bay 1 waits.
    assert!(seq.on_ack(1_500, 0, true).is_empty());
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
    assert!(seq.poll(2_000).is_empty());
}

#[test]
fn an_increase_waits_for_the_other_bays_measured_current_to_drop() {
    let mut seq = settled(320, 160, target(160, 123, 60), 2);
    seq.set_targets(
        1_000,
        &[(0, target(100, 123, 60)), (1, target(220, 123, 60))],
    );
    assert!(seq.on_ack(1_500, 0, true).is_empty());
    // Still drawing 15 A: more than 10 A plus the 1 A tolerance.
    assert!(seq.on_heartbeat(3_000, 0, &heartbeat(100, 150)).is_empty());
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
    // The vehicle followed: bay 1 may rise.
    let sent = seq.on_heartbeat(5_000, 0, &heartbeat(100, 104));
    assert_eq!(sent, vec![cmd(1, Param::Smaxcur, 220)]);
    assert_eq!(seq.reservation(0), PhaseLoad([100; 3]));
    assert_eq!(seq.reservation(1), PhaseLoad([220; 3]));
}

#[test]
fn without_heartbeats_the_old_reservation_is_kept_for_the_settle_grace() {
    let mut seq = settled(320, 160, target(160, 123, 60), 2);
    seq.set_targets(
        1_000,
        &[(0, target(100, 123, 60)), (1, target(220, 123, 60))],
    );
    assert!(seq.on_ack(1_500, 0, true).is_empty());
    assert!(seq.poll(1_500 + 9_999).is_empty());
    assert_eq!(seq.poll(1_500 + 10_000), vec![cmd(1, Param::Smaxcur, 220)]);
}

#[test]
fn a_phase_change_from_one_to_another_passes_through_the_empty_set() {
    // Bay 0 has 16 A on L1, bay 1 16 A on L2, 16 A per phase allowed: swapping them must
    // pause both first, and each may take its new phase only once the other left it.
    let mut seq = site(160, 2, params());
    for bay in 0..2 {
        let sent = seq.on_heartbeat(0, bay, &heartbeat(0, 0));
        ack_all(&mut seq, 0, sent);
    }
    let sent = seq.set_targets(0, &[(0, target(160, 1, 0)), (1, target(160, 2, 0))]);
    ack_all(&mut seq, 0, sent);
    assert!(seq.is_settled(0) && seq.is_settled(1));

    let sent = seq.set_targets(1_000, &[(0, target(160, 2, 0)), (1, target(160, 1, 0))]);
    assert_eq!(
        sent,
        vec![cmd(0, Param::Phases, 0), cmd(1, Param::Phases, 0)]
    );
    assert_eq!(seq.on_ack(1_200, 0, true), Vec::new());
    assert_eq!(seq.on_ack(1_200, 1, true), Vec::new());
    // Held until the vehicles are seen to stop.
    assert_eq!(seq.reservation(0), PhaseLoad([160, 0, 0]));
    assert_eq!(seq.reservation(1), PhaseLoad([0, 160, 0]));
    // Bay 0 left L1: bay 1 may take it; L2 is still bay 1's.
    let stopped = heartbeat_on(160, 0, PhaseSet::NONE);
    assert_eq!(
        seq.on_heartbeat(2_000, 0, &stopped),
        vec![cmd(1, Param::Phases, 1)]
    );
    assert_eq!(seq.reservation(0), PhaseLoad::ZERO);
    assert_eq!(seq.reservation(1), PhaseLoad([160, 160, 0]));
    assert!(seq.on_ack(2_100, 1, true).is_empty());
    // Bay 1 left L2.
    assert_eq!(
        seq.on_heartbeat(2_200, 1, &stopped),
        vec![cmd(0, Param::Phases, 2)]
    );
    assert!(seq.on_ack(2_300, 0, true).is_empty());
    assert!(seq.is_settled(0) && seq.is_settled(1));
    assert_eq!(seq.total(0), PhaseLoad([160, 160, 0]));
}

#[test]
fn a_mixed_change_goes_through_the_componentwise_safe_intermediate() {
    // 1p 16 A -> 3p 10 A: first 1p 10 A (lower), then the phases (raise).
    let mut seq = settled(320, 160, target(160, 1, 60), 1);
    let sent = seq.set_targets(1_000, &[(0, target(100, 123, 60))]);
    assert_eq!(sent, vec![cmd(0, Param::Smaxcur, 100)]);
    assert_eq!(seq.reservation(0), PhaseLoad([160, 0, 0]));
    assert_eq!(seq.on_ack(1_100, 0, true), vec![cmd(0, Param::Phases, 123)]);
    // L1 keeps 16 A reserved while the vehicle ramps down.
    assert_eq!(seq.reservation(0), PhaseLoad([160, 100, 100]));
    assert!(seq.on_ack(1_200, 0, true).is_empty());
    seq.on_heartbeat(1_500, 0, &heartbeat(100, 100));
    assert_eq!(seq.reservation(0), PhaseLoad([100; 3]));
    assert!(seq.is_settled(0));
    // And back: 3p 10 A -> 1p 16 A lowers the phases first.
    let sent = seq.set_targets(2_000, &[(0, target(160, 1, 60))]);
    assert_eq!(sent, vec![cmd(0, Param::Phases, 1)]);
    assert_eq!(
        seq.on_ack(2_100, 0, true),
        vec![cmd(0, Param::Smaxcur, 160)]
    );
    assert_eq!(seq.reservation(0), PhaseLoad([160, 100, 100]));
}

#[test]
fn an_offline_bay_keeps_its_reservation_until_released() {
    let mut seq = settled(320, 160, target(160, 123, 60), 2);
    seq.on_offline(0);
    assert!(seq.poll(60_000).is_empty() || seq.reservation(0) == PhaseLoad([160; 3]));
    // Bay 1 may not take bay 0's share while bay 0 may still draw it.
    assert!(seq
        .set_targets(61_000, &[(1, target(320, 123, 60))])
        .is_empty());
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
    assert_eq!(seq.total(0), PhaseLoad([320; 3]));
    // Nothing is sent to an offline bay, not even the watchdog refresh.
    let sent = seq.poll(200_000);
    assert!(sent.iter().all(|c| c.bay != 0), "{sent:?}");
    ack_all(&mut seq, 200_000, sent);
    let sent = seq.release(200_000, 0).unwrap();
    assert_eq!(sent, vec![cmd(1, Param::Smaxcur, 320)]);
    assert_eq!(seq.reservation(0), PhaseLoad::ZERO);
}

#[test]
fn a_relearned_bay_keeps_its_reservation_from_the_bays_waiting_for_it() {
    let mut seq = settled(320, 160, target(160, 123, 60), 2);
    // Bay 1 waits for bay 0's share.
    assert!(seq
        .set_targets(1_000, &[(1, target(320, 123, 60))])
        .is_empty());
    // Bay 0's controller restarted (a firmware update): what it holds is unknown.
    seq.on_offline(0);
    assert!(seq.relearn(2_000, 0).unwrap().is_empty());
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
    assert_eq!(seq.total(0), PhaseLoad([320; 3]));
    assert!(seq.poll(3_000).iter().all(|c| c.bay != 1 || c.value <= 160));
}

#[test]
fn an_online_bay_cannot_be_released() {
    let mut seq = settled(320, 160, target(160, 123, 60), 1);
    assert_eq!(seq.release(1_000, 0), Err(SequencerError::StillOnline(0)));
    assert_eq!(seq.release(1_000, 7), Err(SequencerError::UnknownBay(7)));
}

#[test]
fn a_bay_back_from_offline_gets_its_writes_again() {
    let mut seq = settled(320, 160, target(160, 123, 60), 1);
    seq.on_offline(0);
    assert!(seq
        .set_targets(1_000, &[(0, target(100, 123, 60))])
        .is_empty());
    let sent = seq.on_heartbeat(2_000, 0, &heartbeat(160, 160));
    assert_eq!(sent, vec![cmd(0, Param::Smaxcur, 100)]);
}

#[test]
fn a_rejected_fail_safe_marks_no_watchdog_and_the_bay_still_gets_its_setpoint() {
    let mut seq = site(320, 1, params());
    // Discovery: the watchdog period goes out first; its reply is lost.
    let sent = seq.on_heartbeat(0, 0, &heartbeat(160, 0));
    assert_eq!(sent, vec![cmd(0, Param::Wdtsec, 60)]);
    assert!(seq
        .set_targets(100, &[(0, target(160, 123, 60))])
        .is_empty());
    // The fail-safe may be up to 16 A; it goes down first, to what the setpoint surely is.
    assert_eq!(seq.poll(3_000), vec![cmd(0, Param::Fsafecur, 0)]);
    // The original firmware knows no fsafecur.
    assert_eq!(
        seq.on_ack(3_100, 0, false),
        vec![cmd(0, Param::Phases, 123)]
    );
    assert!(seq.no_watchdog(0));
    assert_eq!(
        seq.on_ack(3_200, 0, true),
        vec![cmd(0, Param::Smaxcur, 160)]
    );
    assert!(seq.on_ack(3_300, 0, true).is_empty());
    assert!(seq.is_settled(0));
    assert_eq!(
        seq.confirmed(0),
        Some(Setpoint {
            current: Deciamps(160),
            phases: PhaseSet::ALL
        })
    );
    assert_eq!(seq.confirmed_fail_safe(0), None);
    // Neither watchdog parameter is tried again; the setpoint is still refreshed.
    assert!(seq.poll(23_199).is_empty());
    assert_eq!(seq.poll(23_200), vec![cmd(0, Param::Smaxcur, 160)]);
    assert!(seq.on_ack(23_300, 0, true).is_empty());
    assert!(seq.poll(30_000).is_empty());
    // Without a watchdog only the setpoint counts.
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
}

#[test]
fn the_setpoint_is_refreshed_to_feed_the_watchdog() {
    let mut seq = settled(320, 160, target(160, 123, 60), 1);
    assert!(seq.poll(19_999).is_empty());
    assert_eq!(seq.poll_timeout(), Some(20_000));
    assert_eq!(seq.poll(20_000), vec![cmd(0, Param::Smaxcur, 160)]);
    assert!(seq.on_ack(20_100, 0, true).is_empty());
    assert_eq!(seq.poll(40_000), vec![cmd(0, Param::Smaxcur, 160)]);
}

#[test]
fn the_startup_grace_blocks_raises_but_not_reductions() {
    let mut seq = site(320, 2, SequencerParams::default());
    let sent = seq.on_heartbeat(0, 0, &heartbeat(160, 160));
    ack_all(&mut seq, 0, sent);
    let sent = seq.on_heartbeat(0, 1, &heartbeat(0, 0));
    ack_all(&mut seq, 0, sent);
    let sent = seq.set_targets(1_000, &[(0, target(100, 123, 0)), (1, target(160, 123, 0))]);
    let sent = ack_all(&mut seq, 1_000, sent);
    // Bay 1 may get its phases and fail-safe (no load at 0 A), not its current.
    assert!(
        sent.iter().all(|c| c.bay == 0 || c.par != Param::Smaxcur),
        "{sent:?}"
    );
    assert_eq!(seq.reservation(1), PhaseLoad::ZERO);
    assert!(sent.contains(&cmd(0, Param::Smaxcur, 100)));
    assert!(!seq.is_settled(1));
    assert!(seq.poll(29_999).iter().all(|c| c.bay == 0));
    let sent = seq.poll(30_000);
    assert!(sent.contains(&cmd(1, Param::Smaxcur, 160)), "{sent:?}");
}

#[test]
fn a_lost_raise_counts_as_applied_and_is_retried() {
    let mut seq = settled(320, 160, target(100, 123, 60), 1);
    assert_eq!(
        seq.set_targets(1_000, &[(0, target(160, 123, 60))]),
        vec![cmd(0, Param::Smaxcur, 160)]
    );
    // No reply: the node may have it.
    assert_eq!(seq.poll(4_000), vec![cmd(0, Param::Smaxcur, 160)]);
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
    // Superseded by a lower target before it was confirmed: still counted until confirmed.
    assert_eq!(seq.poll(7_000), vec![cmd(0, Param::Smaxcur, 160)]);
    // Third failure: back off.
    assert!(seq.poll(10_000).is_empty());
    assert_eq!(seq.give_ups(0), 1);
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
    assert!(seq
        .set_targets(11_000, &[(0, target(60, 123, 60))])
        .is_empty());
    assert_eq!(seq.poll(30_000), vec![cmd(0, Param::Smaxcur, 60)]);
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
    assert!(seq.on_ack(30_500, 0, true).is_empty());
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]), "held until seen");
    seq.on_heartbeat(31_000, 0, &heartbeat(60, 58));
    assert_eq!(seq.reservation(0), PhaseLoad([60; 3]));
}

#[test]
fn a_late_reply_is_not_taken_for_the_next_write() {
    let mut seq = settled(320, 160, target(100, 123, 60), 1);
    seq.set_targets(1_000, &[(0, target(160, 123, 60))]);
    // Too late to be sure it answers this write: the write counts as maybe applied and is
    // sent again.
    assert_eq!(
        seq.on_ack(4_000, 0, true),
        vec![cmd(0, Param::Smaxcur, 160)]
    );
    assert_eq!(seq.confirmed(0), None);
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
}

#[test]
fn targets_below_six_amps_are_rounded_down_and_fail_safe_capped() {
    let mut seq = settled(320, 160, target(160, 123, 60), 1);
    let sent = seq.set_targets(1_000, &[(0, target(59, 123, 100))]);
    assert_eq!(sent, vec![cmd(0, Param::Fsafecur, 0)]);
    assert_eq!(seq.target(0), Some(target(0, 123, 0)));
    assert_eq!(seq.on_ack(1_100, 0, true), vec![cmd(0, Param::Smaxcur, 0)]);
}

#[test]
fn a_fail_safe_is_never_above_the_setpoint_the_node_may_hold() {
    // Lowering both: fail-safe first. Raising both: setpoint first.
    let mut seq = settled(320, 160, target(160, 123, 160), 1);
    let sent = seq.set_targets(1_000, &[(0, target(60, 123, 60))]);
    assert_eq!(sent, vec![cmd(0, Param::Fsafecur, 60)]);
    assert_eq!(seq.on_ack(1_100, 0, true), vec![cmd(0, Param::Smaxcur, 60)]);
    seq.on_ack(1_200, 0, true);
    seq.on_heartbeat(1_300, 0, &heartbeat(60, 60));
    let sent = seq.set_targets(2_000, &[(0, target(160, 123, 160))]);
    assert_eq!(sent, vec![cmd(0, Param::Smaxcur, 160)]);
    assert_eq!(
        seq.on_ack(2_100, 0, true),
        vec![cmd(0, Param::Fsafecur, 160)]
    );
}

#[test]
fn circuits_limit_their_bays_on_the_rotated_phases() {
    // Bay 1 is wired rotated (its L1 on site L2); the circuit holds 16 A per phase.
    let rotated = BayWiring {
        rotation: [Phase::L2, Phase::L3, Phase::L1],
        counted_phases: PhaseSet::ALL,
    };
    let groups = vec![
        LimitGroup {
            name: "site".into(),
            limit: [Deciamps(630); 3],
            bays: vec![0, 1],
        },
        LimitGroup {
            name: "circuit".into(),
            limit: [Deciamps(160); 3],
            bays: vec![0, 1],
        },
    ];
    let mut seq = Sequencer::new(0, params(), groups, vec![STRAIGHT, rotated]).unwrap();
    for bay in 0..2 {
        let sent = seq.on_heartbeat(0, bay, &heartbeat(0, 0));
        ack_all(&mut seq, 0, sent);
    }
    let sent = seq.set_targets(0, &[(0, target(160, 1, 0)), (1, target(160, 1, 0))]);
    let sent = ack_all(&mut seq, 0, sent);
    // Bay 0 on site L1, bay 1 on site L2: both fit.
    assert!(seq.is_settled(0) && seq.is_settled(1), "{sent:?}");
    assert_eq!(seq.total(1), PhaseLoad([160, 160, 0]));
    // Bay 1 onto its L3 = site L1 does not fit while bay 0 is there.
    let sent = seq.set_targets(100, &[(1, target(160, 3, 0))]);
    let sent = ack_all(&mut seq, 100, sent);
    assert_eq!(seq.total(1), PhaseLoad([0, 160, 0]).max(seq.reservation(0)));
    assert!(!seq.is_settled(1), "{sent:?}");
}

#[test]
fn groups_naming_missing_bays_are_rejected() {
    let group = LimitGroup {
        name: "c1".into(),
        limit: [Deciamps(160); 3],
        bays: vec![3],
    };
    let err = Sequencer::new(0, params(), vec![group], vec![STRAIGHT]).unwrap_err();
    assert!(matches!(
        err,
        SequencerError::GroupBayOutOfRange { bay: 3, .. }
    ));
}

#[test]
fn the_button_is_pressed_once_when_the_write_slot_is_free() {
    let mut seq = settled(320, 160, target(160, 123, 60), 1);
    assert_eq!(
        seq.set_targets(1_000, &[(0, target(100, 123, 60))]),
        vec![cmd(0, Param::Smaxcur, 100)]
    );
    assert!(seq.press_button(1_100, 0).is_empty());
    assert_eq!(seq.on_ack(1_200, 0, true), vec![cmd(0, Param::Opbutton, 1)]);
    // The reply is lost: a toggle is not pressed again.
    assert!(seq.poll(4_200).is_empty());
}

#[test]
fn a_limit_overcommitted_on_paper_allows_only_writes_that_cannot_raise() {
    // Two nodes heard at 16 A: reserved on all three phases, 32 A against a 20 A limit,
    // though each may use only one phase. Neither may move its load to another phase or
    // go back from a possible fail-safe to a setpoint; after the startup grace each pauses
    // and comes back through the budget.
    let mut seq = site(200, 2, SequencerParams::default());
    for bay in 0..2 {
        let sent = seq.on_heartbeat(0, bay, &heartbeat(160, 160));
        ack_all(&mut seq, 0, sent);
    }
    assert_eq!(seq.total(0), PhaseLoad([320; 3]));
    let sent = seq.set_targets(1_000, &[(0, target(100, 1, 0)), (1, target(100, 2, 0))]);
    let sent = ack_all(&mut seq, 1_000, sent);
    // The fail-safe may go to 0; nothing else in the grace.
    assert!(
        sent.iter()
            .all(|c| c.par == Param::Fsafecur && c.value == 0),
        "{sent:?}"
    );
    assert_eq!(seq.total(0), PhaseLoad([320; 3]));
    // After the grace: pause, then come back on one phase each.
    let first = seq.poll(30_000);
    let mut sent = ack_all(&mut seq, 30_000, first);
    assert!(sent.contains(&cmd(0, Param::Smaxcur, 0)), "{sent:?}");
    for bay in 0..2 {
        let next = seq.on_heartbeat(31_000, bay, &heartbeat(0, 0));
        sent.extend(ack_all(&mut seq, 31_000, next));
    }
    let next = seq.poll(40_000);
    sent.extend(ack_all(&mut seq, 40_000, next));
    assert!(seq.is_settled(0) && seq.is_settled(1), "{sent:?}");
    assert_eq!(seq.total(0), PhaseLoad([100, 100, 0]));
}

#[test]
fn garbage_measurements_do_not_end_a_hold() {
    let mut seq = settled(320, 160, target(160, 123, 60), 2);
    seq.set_targets(
        1_000,
        &[(0, target(100, 123, 60)), (1, target(220, 123, 60))],
    );
    assert!(seq.on_ack(1_500, 0, true).is_empty());
    let garbage = Measurement {
        amaxcur: Deciamps(100),
        aphases: PhaseSet::ALL,
        cur: [Deciamps(-5), Deciamps(90), Deciamps(90)],
    };
    assert!(seq.on_heartbeat(2_000, 0, &garbage).is_empty());
    let garbage = Measurement {
        amaxcur: Deciamps(-1),
        ..heartbeat(100, 90)
    };
    assert!(seq.on_heartbeat(2_500, 0, &garbage).is_empty());
    assert_eq!(seq.reservation(0), PhaseLoad([160; 3]));
}
