//! The simulator's world without any IO: determinism for a seed, and the AVR OTA exchange.

#![allow(clippy::unwrap_used)]

use ctrl22_node::mesh::{Address, Command, MacAddr, NodeMessage, OtaState};
use ctrl22_node::sim::{Arrivals, SimConfig, SimWorld};
use ctrl22_node::{Deciamps, PhaseSet};

fn config(seed: u64) -> SimConfig {
    SimConfig {
        nodes: 50,
        seed,
        heartbeat_ms: 1_000,
        arrivals: Arrivals::Random,
        ..SimConfig::default()
    }
}

/// The first `count` messages of a run that starts every bay and lets random cars arrive.
fn first_messages(seed: u64, count: usize) -> Vec<(MacAddr, NodeMessage)> {
    let mut world = SimWorld::new(config(seed));
    let mut out = Vec::new();
    for second in 0..600u64 {
        let now_ms = second * 1_000;
        out.extend(world.step(now_ms));
        let smaxcur = Command::AvrSetPar {
            par: "smaxcur".try_into().unwrap(),
            val: 160,
        };
        out.extend(world.handle_command(now_ms, &Address::Broadcast, &smaxcur));
        if second % 60 == 0 {
            let start = Command::AvrSetPar {
                par: "opbutton".try_into().unwrap(),
                val: 1,
            };
            out.extend(world.handle_command(now_ms, &Address::Broadcast, &start));
        }
        if out.len() >= count {
            break;
        }
    }
    out.truncate(count);
    out
}

#[test]
fn same_seed_same_messages() {
    let a = first_messages(7, 5_000);
    let b = first_messages(7, 5_000);
    assert_eq!(a.len(), 5_000);
    assert_eq!(a, b);
    let heartbeats = a
        .iter()
        .filter(|(_, m)| matches!(m, NodeMessage::Heartbeat(_)))
        .count();
    assert!(heartbeats > 1_000, "{heartbeats} heartbeats");
}

#[test]
fn another_seed_another_site() {
    let a = SimWorld::new(config(7));
    let b = SimWorld::new(config(8));
    assert_ne!(a.root_mac(), b.root_mac());
    assert_ne!(first_messages(7, 500), first_messages(8, 500));
}

fn ota(world: &mut SimWorld, now_ms: u64, dst: MacAddr, cmd: &Command) -> Vec<NodeMessage> {
    world
        .handle_command(now_ms, &Address::Node(dst), cmd)
        .into_iter()
        .map(|(src, msg)| {
            assert_eq!(src, dst);
            msg
        })
        .collect()
}

#[test]
fn avr_ota_checks_every_chunk_and_flashes_a_complete_image() {
    let mut world = SimWorld::new(SimConfig {
        nodes: 3,
        arrivals: Arrivals::None,
        ..SimConfig::default()
    });
    let node = world.macs().nth(2).unwrap();
    let image: Vec<u8> = (0..1_000u32).map(|i| (i * 7 % 251) as u8).collect();

    // A chunk before `recimg` has nowhere to go.
    let early = Command::avr_img(0, &image[..128]).unwrap();
    assert_eq!(
        ota(&mut world, 0, node, &early),
        vec![NodeMessage::AvrImg { addr: 0, ok: false }]
    );

    assert_eq!(
        ota(&mut world, 0, node, &Command::AvrOtaRecImg),
        vec![NodeMessage::AvrOta {
            state: OtaState::RecImg
        }]
    );
    for (index, chunk) in image.chunks(128).enumerate() {
        let addr = u32::try_from(index * 128).unwrap();
        let good = Command::avr_img(addr, chunk).unwrap();
        if index == 3 {
            // A corrupted chunk is refused; the host retries it.
            let Command::AvrImg { addr, data, crc } = good.clone() else {
                unreachable!()
            };
            let bad = Command::AvrImg {
                addr,
                data,
                crc: crc.wrapping_add(1),
            };
            assert_eq!(
                ota(&mut world, 0, node, &bad),
                vec![NodeMessage::AvrImg { addr, ok: false }]
            );
        }
        assert_eq!(
            ota(&mut world, 0, node, &good),
            vec![NodeMessage::AvrImg { addr, ok: true }]
        );
    }
    // A chunk that skips ahead leaves a hole: refused.
    let gap = Command::avr_img(2_000, &image[..16]).unwrap();
    assert_eq!(
        ota(&mut world, 0, node, &gap),
        vec![NodeMessage::AvrImg {
            addr: 2_000,
            ok: false
        }]
    );

    let flash = Command::AvrOtaFlash { image_len: 1_000 };
    assert!(
        ota(&mut world, 0, node, &flash).is_empty(),
        "flashing takes a while"
    );
    let later: Vec<_> = world
        .step(30_000)
        .into_iter()
        .filter(|(_, m)| matches!(m, NodeMessage::AvrOta { .. }))
        .collect();
    assert_eq!(
        later,
        vec![(
            node,
            NodeMessage::AvrOta {
                state: OtaState::Running
            }
        )]
    );
}

#[test]
fn avr_ota_halts_on_an_incomplete_image() {
    let mut world = SimWorld::new(SimConfig {
        nodes: 1,
        arrivals: Arrivals::None,
        ..SimConfig::default()
    });
    let root = world.root_mac();
    ota(&mut world, 0, root, &Command::AvrOtaRecImg);
    let chunk = [0xAB; 128];
    ota(&mut world, 0, root, &Command::avr_img(0, &chunk).unwrap());
    assert_eq!(
        ota(
            &mut world,
            0,
            root,
            &Command::AvrOtaFlash { image_len: 256 }
        ),
        vec![NodeMessage::AvrOta {
            state: OtaState::Halted
        }]
    );
    // The image is gone after a failed flash: a new `recimg` is needed.
    assert_eq!(
        ota(
            &mut world,
            0,
            root,
            &Command::AvrOtaFlash { image_len: 128 }
        ),
        vec![NodeMessage::AvrOta {
            state: OtaState::Halted
        }]
    );
}

#[test]
fn broadcast_reaches_every_node_and_root_only_the_root() {
    let mut world = SimWorld::new(config(3));
    let all = world.handle_command(0, &Address::Broadcast, &Command::Status);
    assert_eq!(all.len(), 50);
    let root = world.handle_command(0, &Address::Root, &Command::Status);
    assert_eq!(root.len(), 1);
    let NodeMessage::Status(status) = &root[0].1 else {
        panic!("{root:?}")
    };
    assert_eq!((status.layer, status.nodes), (1, 50));
    let stranger = MacAddr([2, 0, 0, 0, 0, 1]);
    assert!(world
        .handle_command(0, &Address::Node(stranger), &Command::Status)
        .is_empty());
}

/// The bridge's `demo` spawns the drivers on a multi-threaded runtime.
#[test]
fn the_drivers_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let mqtt = ctrl22_node::sim::run_mqtt(
        SimWorld::new(config(1)),
        "mqtt://127.0.0.1:1",
        "DEMESH",
        1.0,
        async {},
    );
    assert_send(&mqtt);
    let tcp = ctrl22_node::sim::run_tcp(SimWorld::new(config(1)), "127.0.0.1:1", 1.0, async {});
    assert_send(&tcp);
}

/// `ground_truth` shows the registers as written and what the watchdog makes of them.
#[test]
fn ground_truth_follows_the_writes_and_the_watchdog() {
    let mut world = SimWorld::new(SimConfig {
        nodes: 2,
        heartbeat_ms: 1_000,
        arrivals: Arrivals::AllPlugged,
        ..SimConfig::default()
    });
    let set = |world: &mut SimWorld, now_ms: u64, par: &str, val: i16| {
        let cmd = Command::AvrSetPar {
            par: par.try_into().unwrap(),
            val,
        };
        world.handle_command(now_ms, &Address::Broadcast, &cmd)
    };
    let fresh: Vec<_> = world.ground_truth().collect();
    assert_eq!(fresh.len(), 2);
    assert!(fresh
        .iter()
        .all(|b| b.smaxcur == Deciamps::ZERO && b.allowed == Deciamps::ZERO));
    assert!(fresh.iter().all(|b| b.phases == PhaseSet::ALL));
    set(&mut world, 0, "wdtsec", 10);
    set(&mut world, 0, "fsafecur", 60);
    set(&mut world, 0, "phases", 1);
    set(&mut world, 0, "smaxcur", 160);
    set(&mut world, 0, "opbutton", 1);
    world.step(5_000);
    for bay in world.ground_truth() {
        assert_eq!(
            (bay.smaxcur, bay.fsafecur, bay.wdtsec),
            (Deciamps(160), Deciamps(60), 10)
        );
        assert_eq!(bay.phases, PhaseSet::L1);
        assert_eq!(bay.allowed, Deciamps(160), "{bay:?}");
        assert!(!bay.watchdog_expired);
        assert!(bay.cable.is_some() && bay.car_phases.is_some());
        assert!(
            bay.draw[1..].iter().all(|d| *d == Deciamps::ZERO),
            "{bay:?}"
        );
    }
    // No more setpoints: after wdtsec the bays may only offer fsafecur.
    world.step(12_000);
    for bay in world.ground_truth() {
        assert!(bay.watchdog_expired);
        assert_eq!(bay.allowed, Deciamps(60), "{bay:?}");
        assert!(
            bay.offered <= Deciamps(60) && bay.draw[0] <= Deciamps(60),
            "{bay:?}"
        );
    }
    assert!(world.unplug(world.root_mac()));
    world.step(13_000);
    let root = world.ground_truth().next().unwrap();
    assert_eq!((root.cable, root.car_phases), (None, None));
    assert_eq!(root.draw, [Deciamps::ZERO; 3]);
}

/// A dropped link silences the bay both ways for its duration while the bay runs on, and the
/// ground truth counts the charge its car draws meanwhile.
#[test]
fn a_dropped_link_silences_a_bay_that_charges_on() {
    let mut world = SimWorld::new(SimConfig {
        nodes: 2,
        seed: 3,
        heartbeat_ms: 1_000,
        arrivals: Arrivals::AllPlugged,
        ..SimConfig::default()
    });
    let macs: Vec<MacAddr> = world.macs().collect();
    let smaxcur = Command::AvrSetPar {
        par: "smaxcur".try_into().unwrap(),
        val: 100,
    };
    let start = Command::AvrSetPar {
        par: "opbutton".try_into().unwrap(),
        val: 1,
    };
    for second in 0..30u64 {
        world.step(second * 1_000);
        world.handle_command(second * 1_000, &Address::Broadcast, &smaxcur);
        if second == 1 {
            world.handle_command(second * 1_000, &Address::Broadcast, &start);
        }
    }
    let charge = |world: &SimWorld| -> Vec<u64> {
        world
            .ground_truth()
            .map(|t| t.delivered_deciamp_ms)
            .collect()
    };
    let before = charge(&world);
    assert!(before.iter().all(|&c| c > 0), "{before:?}");

    assert!(world.drop_link(macs[1], 5_000));
    let out = world.step(33_900);
    assert!(out.iter().all(|(mac, _)| *mac != macs[1]), "{out:?}");
    assert!(out.iter().any(|(mac, _)| *mac == macs[0]));
    assert!(world
        .handle_command(33_900, &Address::Node(macs[1]), &Command::Status)
        .is_empty());
    let during = charge(&world);
    assert!(
        during[1] > before[1],
        "the car charges on: {before:?} -> {during:?}"
    );

    let out = world.step(37_000);
    assert!(out.iter().any(|(mac, _)| *mac == macs[1]), "back after 5 s");
    assert!(!world.drop_link(MacAddr([9; 6]), 1_000));
}
