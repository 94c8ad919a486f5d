//! The pair harness (quinn-proto's model): the bridge's [`Site`] core and the simulator's
//! [`SimWorld`] in one thread on one simulated clock. Commands from the site reach the bays
//! and node messages reach the site, each direction through a [`Link`] that may lose, delay
//! and reorder; every step is then checked from the simulator's ground truth by
//! [`ctrl22_testkit::safety::check_instant`], which trusts nothing the core or the nodes say.
//!
//! Deterministic for a seed: a failing run replays exactly. No broker, no sockets, no sleeps.

pub mod clock;
pub mod layout;
pub mod network;

use std::collections::VecDeque;

use ctrl22_bridge::handle::CONTROL_INTERVAL;
use ctrl22_bridge::site::snapshot::SiteSnapshot;
use ctrl22_bridge::site::{Input, Output, SettingChange, SettingError, Site, Stored};
use ctrl22_node::mesh::{Address, Command, MacAddr, NodeMessage};
use ctrl22_node::sim::{BayTruth, SimConfig, SimWorld};
use ctrl22_testkit::safety::{check_instant, Envelope};

use clock::SimClock;
use layout::Layout;
use network::{Link, LinkModel, LinkStats};

/// The harness advances in steps of this much simulated time (the simulator's own sub-step).
pub const STEP_MS: u64 = 100;
/// How many of the last commands a breach report shows.
const RECENT: usize = 12;

/// A rule broken at one instant, with what led up to it.
#[derive(Debug)]
pub struct Breach {
    pub seed: u64,
    /// Simulated ms since the start.
    pub at_ms: u64,
    pub problem: String,
    /// The last commands delivered to the bays, oldest first.
    pub recent: Vec<String>,
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {} at {:.1} s: {}",
            self.seed,
            self.at_ms as f64 / 1000.0,
            self.problem
        )?;
        for line in &self.recent {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// What a run did, for reports and for asserting that it did anything at all.
#[derive(Clone, Copy, Debug, Default)]
pub struct PairStats {
    pub checks: u64,
    /// Highest possible draw per site phase seen, 0.1 A.
    pub peak_possible: [i32; 3],
    /// Highest measured sum per site phase seen, 0.1 A.
    pub peak_measured: [i32; 3],
    pub uplink: LinkStats,
    pub downlink: LinkStats,
}

/// A runtime site limit below the ceiling, held once the site had time to follow it.
#[derive(Clone, Copy, Debug)]
struct Lowered {
    limit: i32,
    from_ms: u64,
}

/// The site core and the simulated bays, joined.
#[derive(Debug)]
pub struct Pair {
    seed: u64,
    clock: SimClock,
    site: Site,
    world: SimWorld,
    macs: Vec<MacAddr>,
    /// Node messages on their way to the site.
    uplink: Link<NodeMessage>,
    /// Commands on their way to the bays.
    downlink: Link<Command>,
    envelope: Envelope,
    /// Per site phase, a runtime limit under the ceiling and from when it must hold.
    lowered: [Option<Lowered>; 3],
    /// How long the site gets to follow a lowered runtime limit.
    pub settle_ms: u64,
    /// Feed the core [`Input::Timeout`] when [`Site::poll_timeout`] is due, as the runtime
    /// does (at the harness's resolution: the step after the change); off, only the cycle
    /// allocates, as the scenarios were written for.
    pub event_driven: bool,
    next_tick_ms: u64,
    truth: Vec<BayTruth>,
    recent: VecDeque<(u64, MacAddr, Command)>,
    stats: PairStats,
}

impl Pair {
    /// The site of `layout`, both directions [`LinkModel::CLEAN`], laid out and run by `seed`.
    pub fn new(layout: &Layout, seed: u64) -> Self {
        let world = SimWorld::new(SimConfig {
            nodes: layout.bays,
            seed,
            heartbeat_ms: layout.heartbeat_ms,
            arrivals: layout.arrivals,
            ..SimConfig::default()
        });
        let macs: Vec<MacAddr> = world.macs().collect();
        let clock = SimClock::start();
        let site = Site::new(layout.settings(&macs), Stored::default(), clock.core())
            .expect("the layout is a valid site");
        let mut pair = Self {
            seed,
            clock,
            site,
            world,
            uplink: Link::new(LinkModel::CLEAN, seed ^ 0x0075_706c_696e_6b00),
            downlink: Link::new(LinkModel::CLEAN, seed ^ 0x646f_776e_6c69_6e6b),
            envelope: layout.envelope(&macs),
            macs,
            lowered: [None; 3],
            settle_ms: 120_000,
            event_driven: false,
            next_tick_ms: 0,
            truth: Vec::new(),
            recent: VecDeque::with_capacity(RECENT),
            stats: PairStats::default(),
        };
        let out = pair.site.handle(
            pair.clock.core(),
            Input::MeshLink {
                up: true,
                reply_deadline_ms: 3_000,
            },
        );
        pair.carry(out);
        pair
    }

    /// Checks from now on against `layout`'s limits instead of the core's own (to show that
    /// the check bites).
    pub fn hold_to(&mut self, layout: &Layout) {
        self.envelope = layout.envelope(&self.macs);
    }

    pub fn stats(&self) -> PairStats {
        PairStats {
            uplink: self.uplink.stats(),
            downlink: self.downlink.stats(),
            ..self.stats
        }
    }

    pub fn snapshot(&self) -> SiteSnapshot {
        self.site.snapshot(self.clock.core())
    }

    /// The simulator's ground truth right now.
    pub fn truth(&self) -> Vec<BayTruth> {
        self.world.ground_truth().collect()
    }

    /// Both directions of the mesh from now on.
    pub fn set_links(&mut self, uplink: LinkModel, downlink: LinkModel) {
        self.uplink.set_model(uplink);
        self.downlink.set_model(downlink);
    }

    /// The car at bay `index` leaves; `false` if there was none.
    pub fn unplug(&mut self, index: usize) -> bool {
        self.macs
            .get(index)
            .is_some_and(|mac| self.world.unplug(*mac))
    }

    /// A car arrives at bay `index`; `false` if one is there already.
    pub fn plug(&mut self, index: usize) -> bool {
        self.macs
            .get(index)
            .is_some_and(|mac| self.world.plug(*mac))
    }

    /// An operator changes the site limit of `phase` (1-3) at runtime. A value below the
    /// configured ceiling must hold from [`Self::settle_ms`] on; the ceiling holds always.
    ///
    /// # Errors
    /// What the core refused.
    pub fn set_site_limit(&mut self, phase: u8, amps: f64) -> Result<(), SettingError> {
        let out = self
            .site
            .apply(self.clock.core(), SettingChange::SiteLimit { phase, amps })?;
        self.carry(out);
        if let Some(slot) = usize::from(phase)
            .checked_sub(1)
            .and_then(|p| self.lowered.get_mut(p))
        {
            // Accepted, so finite and in range.
            #[allow(clippy::cast_possible_truncation)]
            let limit = (amps * 10.0).round() as i32;
            *slot = Some(Lowered {
                limit,
                from_ms: self.clock.sim_ms() + self.settle_ms,
            });
        }
        Ok(())
    }

    /// Hands the site core any input now (a meter reading, an external limit).
    pub fn input(&mut self, input: Input) {
        let out = self.site.handle(self.clock.core(), input);
        self.carry(out);
    }

    /// Simulated ms since the start.
    pub fn now_ms(&self) -> u64 {
        self.clock.sim_ms()
    }

    /// What the simulated cars really draw per site phase (0.1 A), from the ground truth and
    /// each bay's wiring: what a grid meter at the site connection sees of them.
    pub fn cars_draw(&self) -> [i32; 3] {
        let mut sum = [0i32; 3];
        for truth in self.world.ground_truth() {
            let rotation = self
                .envelope
                .bays
                .get(&truth.mac)
                .map_or(ctrl22_node::Phase::ALL, |b| b.rotation);
            for (bay_phase, draw) in truth.draw.iter().enumerate() {
                if let Some(site) = rotation.get(bay_phase) {
                    sum[site.index()] += i32::from(draw.get().max(0));
                }
            }
        }
        sum
    }

    /// Runs for `ms` of simulated time, checking after every step.
    ///
    /// # Errors
    /// The first [`Breach`].
    pub fn run_for(&mut self, ms: u64) -> Result<(), Breach> {
        let until = self.clock.sim_ms() + ms;
        while self.clock.sim_ms() < until {
            self.step()?;
        }
        Ok(())
    }

    /// One step of [`STEP_MS`]: the bays advance and report, commands due reach the bays,
    /// messages due reach the site, and the site runs its control cycle when it is due. The
    /// envelope is checked after the bays advanced and after every command they received.
    ///
    /// # Errors
    /// The first [`Breach`].
    pub fn step(&mut self) -> Result<(), Breach> {
        self.clock.advance(STEP_MS);
        let now = self.clock.sim_ms();
        for (src, msg) in self.world.step(now) {
            self.uplink.send(now, src, msg);
        }
        self.check()?;
        while let Some((dst, cmd)) = self.downlink.receive(now) {
            let replies = self.world.handle_command(now, &Address::Node(dst), &cmd);
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back((now, dst, cmd));
            for (src, msg) in replies {
                self.uplink.send(now, src, msg);
            }
            self.check()?;
        }
        if self.event_driven && self.site.poll_timeout().is_some_and(|due| due <= now) {
            let out = self.site.handle(self.clock.core(), Input::Timeout);
            self.carry(out);
        }
        while let Some((src, msg)) = self.uplink.receive(now) {
            let out = self
                .site
                .handle(self.clock.core(), Input::Mesh { src, msg });
            self.carry(out);
        }
        if now >= self.next_tick_ms {
            self.next_tick_ms = now + control_interval_ms();
            let out = self.site.handle(self.clock.core(), Input::Tick);
            self.carry(out);
        }
        Ok(())
    }

    /// Sends the site's commands on their way; the rest of its outputs (storage, events)
    /// has no reader here.
    fn carry(&mut self, out: Vec<Output>) {
        let now = self.clock.sim_ms();
        for output in out {
            if let Output::Send { dst, cmd } = output {
                match dst {
                    Address::Node(mac) => self.downlink.send(now, mac, cmd),
                    // The site addresses bays one by one; anything else would be a finding
                    // of its own, and the simulator answers it at once.
                    other => {
                        for (src, msg) in self.world.handle_command(now, &other, &cmd) {
                            self.uplink.send(now, src, msg);
                        }
                    }
                }
            }
        }
    }

    fn check(&mut self) -> Result<(), Breach> {
        self.stats.checks += 1;
        self.truth.clear();
        self.truth.extend(self.world.ground_truth());
        let now = self.clock.sim_ms();
        let load = check_instant(&self.envelope, &self.truth).map_err(|p| self.breach(p))?;
        for (i, lowered) in self.lowered.iter().enumerate() {
            let Some(lowered) = lowered.filter(|l| now >= l.from_ms) else {
                continue;
            };
            if load.possible[i] > lowered.limit {
                let problem = format!(
                    "site L{}: bays may draw {} dA, {} s after the limit was lowered to {} dA",
                    i + 1,
                    load.possible[i],
                    self.settle_ms / 1000,
                    lowered.limit
                );
                return Err(self.breach(problem));
            }
        }
        for i in 0..3 {
            self.stats.peak_possible[i] = self.stats.peak_possible[i].max(load.possible[i]);
            self.stats.peak_measured[i] = self.stats.peak_measured[i].max(load.measured[i]);
        }
        Ok(())
    }

    fn breach(&self, problem: String) -> Breach {
        Breach {
            seed: self.seed,
            at_ms: self.clock.sim_ms(),
            problem,
            recent: self
                .recent
                .iter()
                .map(|(t, dst, cmd)| format!("{:.1} s -> {dst}: {cmd:?}", *t as f64 / 1000.0))
                .collect(),
        }
    }
}

fn control_interval_ms() -> u64 {
    u64::try_from(CONTROL_INTERVAL.as_millis()).unwrap_or(1_000)
}
