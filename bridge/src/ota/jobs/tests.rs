//! The job queue against the real node simulator, in simulated time.

use ctrl22_node::mesh::{Address, MacAddr, NodeMessage};
use ctrl22_node::sim::{Arrivals, OtaFaults, SimConfig, SimWorld};

use super::*;

/// The simulator's board.
const BOARD: &str = "agccs12";

/// A 1000-byte image (8 chunks) that makes the controller report `ver`.
fn image(ver: i16) -> AvrImage {
    let mut bytes = vec![0x0c, 0x94];
    bytes.extend_from_slice(format!("CTRL22VER={ver}\0").as_bytes());
    bytes.resize(1000, 0xff);
    AvrImage {
        name: format!("ctrl22_{BOARD}_{ver}.hex"),
        bytes,
        version: Some(ver),
        board: Some(BOARD.to_owned()),
    }
}

/// The simulated site and the queue, with what the queue asked for.
struct Harness {
    world: SimWorld,
    jobs: OtaJobs,
    now_ms: u64,
    /// Every output of the queue, in order.
    outputs: Vec<OtaOutput>,
    /// Bays whose commands and messages the mesh loses entirely.
    unreachable: Vec<MacAddr>,
    /// Most bays held at once.
    most_held: usize,
    held: Vec<BayId>,
    /// Commands the mesh loses (to every bay).
    lost: fn(&Command) -> bool,
}

fn id(mac: MacAddr) -> BayId {
    BayId(mac.topic_form().to_string())
}

impl Harness {
    fn new(bays: usize, params: OtaParams) -> Self {
        let world = SimWorld::new(SimConfig {
            nodes: bays,
            seed: 7,
            heartbeat_ms: 1_000,
            arrivals: Arrivals::None,
            ..SimConfig::default()
        });
        Self {
            world,
            jobs: OtaJobs::new(params),
            now_ms: 0,
            outputs: Vec::new(),
            unreachable: Vec::new(),
            most_held: 0,
            held: Vec::new(),
            lost: |_| false,
        }
    }

    fn mac(&self, index: usize) -> MacAddr {
        self.world.macs().nth(index).expect("bay")
    }

    fn facts(&self) -> BayFacts {
        BayFacts {
            online: true,
            in_session: false,
            board: Some(BOARD.to_owned()),
        }
    }

    fn submit(&mut self, index: usize, image: AvrImage) -> u64 {
        let mac = self.mac(index);
        let facts = self.facts();
        let (job, out) = self
            .jobs
            .submit(id(mac), mac, image, false, &facts)
            .expect("accepted");
        self.carry_out(out);
        job
    }

    /// Carries out outputs: commands to the simulated nodes, their replies back at once.
    fn carry_out(&mut self, out: Vec<OtaOutput>) {
        let mut pending = out;
        while !pending.is_empty() {
            let mut next = Vec::new();
            for output in pending {
                match &output {
                    OtaOutput::Send { dst, cmd }
                        if !self.unreachable.contains(dst) && !(self.lost)(cmd) =>
                    {
                        let replies =
                            self.world
                                .handle_command(self.now_ms, &Address::Node(*dst), cmd);
                        for (src, msg) in replies {
                            next.extend(self.jobs.on_message(self.now_ms, src, &msg));
                        }
                    }
                    OtaOutput::Hold(bay) => {
                        self.held.push(bay.clone());
                        self.most_held = self.most_held.max(self.held.len());
                    }
                    OtaOutput::Release(bay) => self.held.retain(|b| b != bay),
                    _ => {}
                }
                self.outputs.push(output);
            }
            pending = next;
        }
    }

    /// Runs until every job is finished or `limit_ms` of simulated time passed.
    fn run(&mut self, limit_ms: u64) {
        let end = self.now_ms + limit_ms;
        while self.now_ms < end && !self.all_finished() {
            self.now_ms += 100;
            let messages = self.world.step(self.now_ms);
            for (src, msg) in messages {
                if self.unreachable.contains(&src) {
                    continue;
                }
                let out = self.jobs.on_message(self.now_ms, src, &msg);
                self.carry_out(out);
            }
            let facts = self.facts();
            let out = self.jobs.poll(self.now_ms, |_| Some(facts.clone()));
            self.carry_out(out);
        }
    }

    fn all_finished(&self) -> bool {
        self.jobs.views().iter().all(|v| v.state.is_finished())
    }

    fn state(&self, job: u64) -> JobState {
        let view = self.jobs.views().into_iter().find(|v| v.id == job);
        view.expect("job").state
    }

    /// The `ver` the bay's controller reports now.
    fn avr_version(&mut self, index: usize) -> Option<i16> {
        let mac = self.mac(index);
        let replies = self
            .world
            .handle_command(self.now_ms, &Address::Node(mac), &Command::System);
        replies.into_iter().find_map(|(_, msg)| match msg {
            NodeMessage::System(s) => Some(s.avrver),
            _ => None,
        })
    }

    fn saw(&self, f: impl Fn(&JobState) -> bool) -> bool {
        self.outputs
            .iter()
            .any(|o| matches!(o, OtaOutput::Changed(v) if f(&v.state)))
    }
}

#[test]
fn an_image_is_flashed_held_throughout_and_its_version_verified() {
    let mut h = Harness::new(3, OtaParams::default());
    assert_eq!(h.avr_version(1), Some(14));
    // 80 chunks.
    let mut big = image(15);
    big.bytes.resize(10_240, 0xff);
    let job = h.submit(1, big);
    assert_eq!(h.state(job), JobState::Queued);
    h.run(60_000);
    assert_eq!(h.state(job), JobState::Succeeded { version: 15 });
    assert_eq!(h.avr_version(1), Some(15));
    // The hold comes before the first command and the release after the last.
    let first_send = h
        .outputs
        .iter()
        .position(|o| matches!(o, OtaOutput::Send { .. }));
    let hold = h
        .outputs
        .iter()
        .position(|o| matches!(o, OtaOutput::Hold(_)));
    let release = h
        .outputs
        .iter()
        .rposition(|o| matches!(o, OtaOutput::Release(_)));
    let last_send = h
        .outputs
        .iter()
        .rposition(|o| matches!(o, OtaOutput::Send { .. }));
    assert!(
        hold < first_send && release > last_send,
        "{hold:?} {release:?}"
    );
    assert!(h.held.is_empty());
    // Progress went up in steps, not once per chunk.
    let percents: Vec<u8> = h
        .outputs
        .iter()
        .filter_map(|o| match o {
            OtaOutput::Changed(v) => v.percent,
            _ => None,
        })
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    let steps = usize::from(100 / PROGRESS_STEP_PCT);
    assert!(percents.len() <= steps + 3, "{percents:?}");
}

#[test]
fn lost_and_corrupted_chunks_are_sent_again() {
    for faults in [
        OtaFaults {
            lose_every_nth_chunk: Some(3),
            ..OtaFaults::default()
        },
        OtaFaults {
            corrupt_every_nth_chunk: Some(2),
            ..OtaFaults::default()
        },
    ] {
        let mut h = Harness::new(2, OtaParams::default());
        let mac = h.mac(1);
        assert!(h.world.set_ota_faults(mac, faults.clone()));
        let job = h.submit(1, image(16));
        h.run(120_000);
        assert_eq!(
            h.state(job),
            JobState::Succeeded { version: 16 },
            "{faults:?}"
        );
        assert!(!h.saw(|s| matches!(s, JobState::WaitingForBay { .. })));
    }
}

#[test]
fn a_bay_that_drops_off_mid_transfer_is_flashed_from_the_start_when_back() {
    let mut h = Harness::new(2, OtaParams::default());
    let mac = h.mac(1);
    h.world.set_ota_faults(
        mac,
        OtaFaults {
            offline_after_chunks: Some(3),
            ..OtaFaults::default()
        },
    );
    let job = h.submit(1, image(15));
    h.run(180_000);
    assert_eq!(h.state(job), JobState::Succeeded { version: 15 });
    assert!(h.saw(|s| matches!(s, JobState::WaitingForBay { restarts: 0 })));
    assert_eq!(h.avr_version(1), Some(15));
}

#[test]
fn a_bay_that_never_comes_back_fails_the_job_and_is_released() {
    let params = OtaParams {
        offline_wait_ms: 30_000,
        ..OtaParams::default()
    };
    let mut h = Harness::new(2, params);
    let mac = h.mac(1);
    h.unreachable.push(mac);
    let job = h.submit(1, image(15));
    h.run(600_000);
    assert_eq!(
        h.state(job),
        JobState::Failed {
            error: JobError::BayGone
        }
    );
    assert!(h.held.is_empty());
    assert_eq!(h.avr_version(1), Some(14));
}

#[test]
fn an_image_for_another_board_is_refused_or_halts() {
    let mut h = Harness::new(2, OtaParams::default());
    let mac = h.mac(1);
    let facts = h.facts();
    let mut foreign = image(15);
    foreign.board = Some("m5stick".to_owned());
    assert_eq!(
        h.jobs.submit(id(mac), mac, foreign.clone(), true, &facts),
        Err(Refusal::WrongBoard {
            image: "m5stick".to_owned(),
            bay: BOARD.to_owned()
        })
    );
    // A file name that does not say, but the image is another board's: the bootloader halts.
    foreign.board = None;
    foreign
        .bytes
        .splice(20..20, b"CTRL22BOARD=m5stick;".iter().copied());
    foreign.bytes.truncate(1000);
    let job = h.submit(1, foreign);
    h.run(60_000);
    assert!(matches!(
        h.state(job),
        JobState::Failed { error: JobError::Flash(e) } if e.contains("halted")
    ));
    assert_eq!(h.avr_version(1), Some(14));
}

#[test]
fn a_version_other_than_the_image_promised_fails_the_job() {
    let mut h = Harness::new(2, OtaParams::default());
    let mut wrong = image(15);
    wrong.version = Some(16);
    let job = h.submit(1, wrong);
    h.run(60_000);
    assert_eq!(
        h.state(job),
        JobState::Failed {
            error: JobError::WrongVersion {
                expected: 16,
                found: 15
            }
        }
    );
}

#[test]
fn a_charging_bay_is_refused_unless_forced_also_when_its_turn_comes() {
    let mut h = Harness::new(3, OtaParams::default());
    let mac = h.mac(1);
    let charging = BayFacts {
        in_session: true,
        ..h.facts()
    };
    assert_eq!(
        h.jobs.submit(id(mac), mac, image(15), false, &charging),
        Err(Refusal::InSession)
    );
    assert!(h
        .jobs
        .submit(id(mac), mac, image(15), true, &charging)
        .is_ok());
    assert_eq!(
        h.jobs.submit(id(mac), mac, image(15), true, &charging),
        Err(Refusal::Busy)
    );
    let offline = BayFacts {
        online: false,
        ..h.facts()
    };
    let other = h.mac(2);
    assert_eq!(
        h.jobs.submit(id(other), other, image(15), true, &offline),
        Err(Refusal::Offline)
    );
    // Accepted while idle, but a car started charging before the job's turn.
    let job = h.submit(2, image(15));
    let out = h.jobs.poll(0, |bay| {
        Some(BayFacts {
            in_session: bay == &id(other),
            ..BayFacts {
                online: true,
                in_session: false,
                board: None,
            }
        })
    });
    assert!(out
        .iter()
        .any(|o| matches!(o, OtaOutput::Hold(b) if b == &id(mac))));
    assert!(!out
        .iter()
        .any(|o| matches!(o, OtaOutput::Hold(b) if b == &id(other))));
    assert_eq!(
        h.state(job),
        JobState::Failed {
            error: JobError::Refused(Refusal::InSession)
        }
    );
}

#[test]
fn no_more_than_max_parallel_bays_are_flashed_at_once() {
    let params = OtaParams {
        max_parallel: 2,
        ..OtaParams::default()
    };
    let mut h = Harness::new(6, params);
    let jobs: Vec<u64> = (1..6).map(|i| h.submit(i, image(15))).collect();
    h.run(300_000);
    for job in jobs {
        assert_eq!(h.state(job), JobState::Succeeded { version: 15 });
    }
    assert_eq!(h.most_held, 2);
    for i in 1..6 {
        assert_eq!(h.avr_version(i), Some(15));
    }
}

#[test]
fn a_cancelled_job_releases_its_bay_and_a_queued_one_never_starts() {
    let mut h = Harness::new(
        3,
        OtaParams {
            max_parallel: 1,
            ..OtaParams::default()
        },
    );
    // Bay 1 does not answer: its job stays running, waiting for receive mode.
    h.unreachable.push(h.mac(1));
    let running = h.submit(1, image(15));
    let queued = h.submit(2, image(15));
    h.run(1_000);
    assert!(h.jobs.holds(&id(h.mac(1))));
    assert_eq!(h.state(queued), JobState::Queued);

    let out = h.jobs.cancel(queued).expect("cancelled");
    h.carry_out(out);
    let out = h.jobs.cancel(running).expect("cancelled");
    h.carry_out(out);
    assert!(h.held.is_empty(), "the hold is released");
    assert!(!h.jobs.holds(&id(h.mac(1))));
    for job in [running, queued] {
        assert_eq!(
            h.state(job),
            JobState::Failed {
                error: JobError::Cancelled
            }
        );
    }
    // Only the running job held its bay, so only it is released.
    let releases = h
        .outputs
        .iter()
        .filter(|o| matches!(o, OtaOutput::Release(_)))
        .count();
    assert_eq!(releases, 1);
    let sends = h.outputs.len();
    h.run(30_000);
    assert_eq!(h.outputs.len(), sends, "nothing more after the cancel");
    assert_eq!(h.jobs.cancel(running), Err(CancelError::Finished));
    assert_eq!(h.jobs.cancel(999), Err(CancelError::Unknown));
}

#[test]
fn a_job_that_sent_the_flash_or_verifies_cannot_be_cancelled() {
    let lost: [fn(&Command) -> bool; 2] = [
        |cmd| matches!(cmd, Command::AvrOtaFlash { .. }),
        |cmd| matches!(cmd, Command::AvrGetPar { .. }),
    ];
    for (lost, stage) in lost.into_iter().zip(["flashing", "verifying"]) {
        let mut h = Harness::new(1, OtaParams::default());
        h.lost = lost;
        let job = h.submit(0, image(15));
        // The controller restarts a few seconds after `avrota flash`; the flash times out
        // after 30 s.
        h.run(10_000);
        let state = h.state(job);
        assert!(
            matches!(
                (stage, &state),
                (
                    "flashing",
                    JobState::Transferring {
                        done_bytes: 1000,
                        ..
                    }
                ) | ("verifying", JobState::Verifying)
            ),
            "{stage}: {state:?}"
        );
        assert_eq!(h.jobs.cancel(job), Err(CancelError::Flashing), "{stage}");
        assert_eq!(h.held, vec![id(h.mac(0))], "{stage}: the hold stays");
        assert_eq!(h.state(job), state, "{stage}: the job runs on");
    }
}

#[test]
fn no_avr_job_is_accepted_or_started_while_an_esp32_upgrade_runs() {
    let mut h = Harness::new(2, OtaParams::default());
    let queued = h.submit(0, image(15));
    h.jobs.pause_starts(true);
    let mac = h.mac(1);
    let refused = h.jobs.submit(id(mac), mac, image(15), false, &h.facts());
    assert_eq!(refused.map(|_| ()), Err(Refusal::Esp32UpgradeRunning));
    h.run(5_000);
    assert_eq!(h.state(queued), JobState::Queued, "waits for the upgrade");
    assert!(h.held.is_empty() && !h.jobs.any_running());
    h.jobs.pause_starts(false);
    h.run(60_000);
    assert_eq!(h.state(queued), JobState::Succeeded { version: 15 });
}
