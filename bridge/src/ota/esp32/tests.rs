//! The ESP32 jobs against the real node simulator, in simulated time: mixed boards, a node
//! that never takes the upgrade, a cancel.

use ctrl22_node::mesh::{Address, MacAddr, NodeMessage};
use ctrl22_node::sim::{Arrivals, OtaFaults, SimConfig, SimWorld};

use super::*;

const BOARD: &str = "agccs12";

fn id(mac: MacAddr) -> BayId {
    BayId(mac.topic_form().to_string())
}

fn image() -> Esp32Image {
    Esp32Image {
        file: "demesh_agccs12_3_6.bin".to_owned(),
        board: BOARD.to_owned(),
        version: "3.6".to_owned(),
    }
}

struct Harness {
    world: SimWorld,
    jobs: Esp32Jobs,
    now_ms: u64,
    /// What the site knows of each bay (from `system` replies).
    bays: Vec<Esp32Bay>,
    sent: Vec<(Address, Command)>,
    /// The bay events: each bay's view of the job when it changed.
    views: Vec<(BayId, Esp32BayJob)>,
    rebooted: Vec<BayId>,
    /// What the site says of its AVR jobs.
    avr_running: bool,
}

impl Harness {
    /// `agccs12` bays, then `m5stick` ones; `straggler`: an agccs12 bay that never upgrades.
    fn new(agccs12: usize, m5stick: usize, straggler: Option<usize>) -> Self {
        let mut world = SimWorld::new(SimConfig {
            nodes: agccs12 + m5stick,
            seed: 3,
            heartbeat_ms: 1_000,
            arrivals: Arrivals::None,
            ..SimConfig::default()
        });
        let macs: Vec<MacAddr> = world.macs().collect();
        for mac in &macs[agccs12..] {
            assert!(world.set_board(*mac, "m5stick"));
        }
        if let Some(index) = straggler {
            world.set_ota_faults(
                macs[index],
                OtaFaults {
                    refuses_esp32_upgrade: true,
                    ..OtaFaults::default()
                },
            );
        }
        let mut harness = Self {
            world,
            jobs: Esp32Jobs::new(Esp32Params {
                timeout_ms: 120_000,
                poll_every_ms: 5_000,
                polls_per_round: 2,
            }),
            now_ms: 0,
            bays: Vec::new(),
            sent: Vec::new(),
            views: Vec::new(),
            rebooted: Vec::new(),
            avr_running: false,
        };
        // What the site learns from its own `system` polls.
        for (mac, msg) in harness
            .world
            .handle_command(0, &Address::Broadcast, &Command::System)
        {
            harness.learn(mac, &msg);
        }
        harness
    }

    fn learn(&mut self, mac: MacAddr, msg: &NodeMessage) {
        let NodeMessage::System(s) = msg else { return };
        let known = Esp32Bay {
            bay: id(mac),
            mac,
            board: Some(s.board.to_string()),
            version: Some(s.version.to_string()),
        };
        match self.bays.iter_mut().find(|b| b.mac == mac) {
            Some(b) => *b = known,
            None => self.bays.push(known),
        }
    }

    fn carry_out(&mut self, out: Vec<Esp32Output>) {
        for output in out {
            match output {
                Esp32Output::Send { dst, cmd } => {
                    self.sent.push((dst, cmd.clone()));
                    let replies = self.world.handle_command(self.now_ms, &dst, &cmd);
                    self.deliver(replies);
                }
                Esp32Output::Changed { job, bays } => {
                    for bay in bays {
                        let view = self.jobs.bay_job(job, &bay).expect("the job exists");
                        self.views.push((bay, view));
                    }
                }
                Esp32Output::Finished { summary } => assert!(summary.contains("ESP32")),
                Esp32Output::Rebooted(bay) => self.rebooted.push(bay),
            }
        }
    }

    fn deliver(&mut self, messages: Vec<(MacAddr, NodeMessage)>) {
        for (mac, msg) in messages {
            self.learn(mac, &msg);
            let out = self.jobs.on_message(mac, &msg);
            self.carry_out(out);
        }
    }

    /// Runs in steps of 1 s until the job is over or `until_ms`.
    fn run(&mut self, until_ms: u64) {
        while self.now_ms < until_ms {
            self.now_ms += 1_000;
            let messages = self.world.step(self.now_ms);
            self.deliver(messages);
            let bays = self.bays.clone();
            let out = self.jobs.poll(self.now_ms, &bays, self.avr_running);
            self.carry_out(out);
            if self.jobs.views().iter().all(|v| v.state.is_finished()) {
                return;
            }
        }
    }

    fn last(&self) -> Esp32JobView {
        self.jobs.views().remove(0)
    }

    fn upgrades_sent(&self) -> usize {
        self.sent
            .iter()
            .filter(|(dst, cmd)| *dst == Address::Root && matches!(cmd, Command::Upgrade { .. }))
            .count()
    }

    fn polled(&self, mac: MacAddr) -> usize {
        self.sent
            .iter()
            .filter(|(dst, cmd)| *dst == Address::Node(mac) && *cmd == Command::System)
            .count()
    }
}

#[test]
fn every_bay_of_the_board_is_upgraded_and_the_others_are_left_alone() {
    let mut h = Harness::new(3, 2, None);
    h.jobs.submit(1, image(), None).expect("queued");
    h.run(200_000);
    let job = h.last();
    assert_eq!(job.state, Esp32State::Succeeded, "{job:?}");
    assert_eq!(job.progress_pct, 100);
    assert_eq!(job.bays.len(), 3);
    assert_eq!(job.bays_done.len(), 3);
    assert!(job.stragglers.is_empty());
    assert_eq!(h.upgrades_sent(), 1, "upgrade goes to the root once");
    let macs: Vec<MacAddr> = h.world.macs().collect();
    for mac in &macs[3..] {
        assert_eq!(h.polled(*mac), 0, "another board's bay is not asked");
        let bay = h.bays.iter().find(|b| b.mac == *mac).expect("known");
        assert_eq!(bay.version.as_deref(), Some("3.4"));
    }
    // Progress went up bay by bay, each step an event.
    let pcts: Vec<u8> = h.views.iter().map(|(_, v)| v.progress_pct).collect();
    assert!(pcts.windows(2).all(|w| w[0] <= w[1]), "{pcts:?}");
    assert!(pcts.contains(&33) && pcts.contains(&66), "{pcts:?}");
    // Polls are bounded: at most two per 5 s round.
    let polls: usize = macs.iter().map(|m| h.polled(*m)).sum();
    assert!(polls <= 2 * (200 / 5), "{polls} polls");
    // Each bay's node restarted once, and its own view says it is done.
    let mut rebooted = h.rebooted.clone();
    rebooted.sort_by(|a, b| a.0.cmp(&b.0));
    rebooted.dedup();
    assert_eq!(rebooted.len(), 3, "{:?}", h.rebooted);
    assert_eq!(h.rebooted.len(), 3, "once each");
    let first = id(macs[0]);
    let seen = h.jobs.latest_of(&first).expect("its job");
    assert!(seen.done_here && !seen.straggler_here, "{seen:?}");
    assert_eq!((seen.bays_done, seen.bays_total), (3, 3));
    assert!(
        h.jobs.latest_of(&id(macs[3])).is_none(),
        "another board's bay"
    );
}

#[test]
fn a_bay_that_never_reports_the_version_is_a_straggler() {
    let mut h = Harness::new(3, 1, Some(1));
    h.jobs.submit(1, image(), None).expect("queued");
    h.run(300_000);
    let job = h.last();
    let straggler = id(h.world.macs().nth(1).expect("bay"));
    assert!(
        matches!(&job.state, Esp32State::Failed { error } if error.contains("1 bays")),
        "{job:?}"
    );
    assert_eq!(job.stragglers, vec![straggler.clone()]);
    assert_eq!(job.bays_done.len(), 2);
    assert_eq!(job.progress_pct, 66);
    let seen = h.jobs.latest_of(&straggler).expect("its job");
    assert!(seen.straggler_here && !seen.done_here, "{seen:?}");
    assert_eq!((seen.bays_done, seen.bays_total), (2, 3));
}

#[test]
fn a_named_bay_of_another_board_is_refused_and_one_board_runs_at_a_time() {
    let mut h = Harness::new(2, 1, None);
    let m5 = h.bays[2].clone();
    assert!(matches!(
        h.jobs.submit(1, image(), Some(&m5)),
        Err(Refusal::WrongBoard { .. })
    ));
    let agccs = h.bays[0].clone();
    assert!(h.jobs.submit(2, image(), Some(&agccs)).is_ok());
    assert_eq!(h.jobs.submit(3, image(), None), Err(Refusal::Busy));
}

#[test]
fn a_cancelled_job_stops_polling_and_lists_the_bays_not_done() {
    let mut h = Harness::new(3, 0, None);
    h.jobs.submit(7, image(), None).expect("queued");
    h.run(20_000);
    assert_eq!(h.last().state, Esp32State::Upgrading);
    let out = h.jobs.cancel(7).expect("cancelled");
    h.carry_out(out);
    let job = h.last();
    assert!(matches!(&job.state, Esp32State::Failed { error } if error.contains("cancelled")));
    assert_eq!(job.stragglers.len(), 3);
    let sent = h.sent.len();
    h.run(200_000);
    assert_eq!(h.sent.len(), sent, "nothing sent after the cancel");
    assert_eq!(h.jobs.cancel(7), Err(CancelError::Finished));
    assert_eq!(h.jobs.cancel(99), Err(CancelError::Unknown));
}

#[test]
fn after_a_cancel_the_next_upgrade_waits_until_the_cancelled_one_would_have_given_up() {
    let mut h = Harness::new(2, 2, None);
    h.jobs.submit(7, image(), None).expect("queued");
    h.run(3_000);
    assert_eq!(h.last().state, Esp32State::Upgrading);
    // Started at 1 s: gives up at 121 s.
    let out = h.jobs.cancel(7).expect("cancelled");
    h.carry_out(out);
    let m5 = Esp32Image {
        file: "demesh_m5stick_3_6.bin".to_owned(),
        board: "m5stick".to_owned(),
        version: "3.6".to_owned(),
    };
    h.jobs.submit(8, m5, None).expect("queued");
    assert_eq!(h.jobs.poll_timeout(), Some(121_000));
    h.run(120_000);
    assert_eq!(
        h.upgrades_sent(),
        1,
        "the root may still run the cancelled upgrade"
    );
    h.run(122_000);
    assert_eq!(h.upgrades_sent(), 2, "then the next one goes");
}

#[test]
fn an_upgrade_waits_while_an_avr_job_runs() {
    let mut h = Harness::new(2, 0, None);
    h.avr_running = true;
    h.jobs.submit(1, image(), None).expect("queued");
    h.run(30_000);
    assert_eq!(h.upgrades_sent(), 0);
    assert!(!h.jobs.is_upgrading());
    h.avr_running = false;
    h.run(31_000);
    assert_eq!(h.upgrades_sent(), 1);
    assert!(h.jobs.is_upgrading());
}
