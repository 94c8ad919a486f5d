//! Scenarios shared by the end-to-end tests of both uplinks, written once against
//! [`WireRecord`] so that the MQTT and the TCP test check exactly the same things.

use std::time::Duration;

use anyhow::{bail, ensure};
use tokio::time::Instant;

use crate::bridge::BridgeProcess;
use crate::safety::{check_wire_with, WireStats, ACK_GIVE_UP};
use crate::wire::{self, WireMessage, WireRecord};
use ctrl22_node::mesh::NodeMessage;

/// What a scenario needs of the test: the mesh, the limit and the recording so far.
#[derive(Debug)]
pub struct Wire<F> {
    pub mesh_id: String,
    /// Site limit per phase, 0.1 A.
    pub limit: [i32; 3],
    /// Everything recorded so far (a recorder's or proxy's `messages`).
    pub records: F,
    /// See [`check_wire_with`].
    pub ack_give_up: Duration,
}

impl<F> Wire<F> {
    /// The checks of [`crate::safety::check_wire`] over `records`.
    pub fn new(mesh_id: &str, limit: [i32; 3], records: F) -> Self {
        Self {
            mesh_id: mesh_id.to_owned(),
            limit,
            records,
            ack_give_up: ACK_GIVE_UP,
        }
    }
}

impl<R: WireRecord, F: Fn() -> Vec<R>> Wire<F> {
    /// Waits until at least `count` bays charge in what was recorded from index `from` on.
    ///
    /// # Errors
    /// When they do not within `timeout`; the error shows the last heartbeats.
    pub async fn wait_charging(
        &self,
        from: usize,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = (self.records)();
            let recent = records.get(from..).unwrap_or_default();
            if wire::charging_bays(&self.mesh_id, recent) >= count {
                return Ok(());
            }
            if Instant::now() > deadline {
                let states: Vec<String> = wire::latest_heartbeats(&self.mesh_id, recent)
                    .iter()
                    .map(|(mac, hb)| format!("{mac}: {hb:?}"))
                    .collect();
                bail!("fewer than {count} bays charge after {timeout:?}:\n{states:#?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Checks the whole recording against the limit (see [`check_wire_with`]).
    ///
    /// # Errors
    /// The first violation, prefixed with `when`.
    pub fn check(&self, when: &str) -> anyhow::Result<WireStats> {
        let records = (self.records)();
        wire::dump_if_asked(&records);
        check_wire_with(&self.mesh_id, &records, self.limit, self.ack_give_up)
            .map_err(|v| anyhow::anyhow!("{when}: {v}"))
    }

    /// The kill-and-restart run, from a freshly started `bridge` and bays that boot:
    /// bays charge within the limit; the bridge is killed without a word and every bay falls
    /// to the fail-safe current it was last told once its watchdog (`wdtsec`) ran out; a
    /// restarted bridge (`restart`) resumes charging without any instant above the limit.
    /// Returns the wire statistics of the whole run and the restarted bridge.
    ///
    /// # Errors
    /// Any of these not holding.
    pub async fn kill_and_restart(
        &self,
        mut bridge: BridgeProcess,
        wdtsec: u64,
        restart: impl FnOnce() -> anyhow::Result<BridgeProcess>,
    ) -> anyhow::Result<(WireStats, BridgeProcess)> {
        // Bays start charging once the start-up grace (the heartbeat timeout) is over.
        self.wait_charging(0, 4, Duration::from_secs(40)).await?;
        tokio::time::sleep(Duration::from_secs(8)).await;
        let stats = self.check("before the kill")?;
        ensure!(stats.setpoint_writes > 20, "{stats:?}");

        bridge.kill();
        let before_kill = (self.records)();
        let killed_at = before_kill.len();
        let fail_safe = wire::fail_safe_currents(&self.mesh_id, &before_kill);
        let last_before = before_kill.last().map(WireRecord::at);
        tokio::time::sleep(Duration::from_secs(wdtsec * 2)).await;
        let after = (self.records)();
        // The watchdog counts from the last setpoint; allow a heartbeat period on top.
        let watchdog_due =
            last_before.unwrap_or_else(std::time::Instant::now) + Duration::from_secs(wdtsec + 3);
        let mut late = 0;
        for r in after.get(killed_at..).unwrap_or_default() {
            if r.at() < watchdog_due {
                continue;
            }
            if let Some(WireMessage::Uplink {
                src,
                msg: NodeMessage::Heartbeat(hb),
            }) = r.decode(&self.mesh_id)
            {
                late += 1;
                let allowed = fail_safe.get(&src).copied().unwrap_or(0);
                ensure!(
                    hb.amaxcur.get() <= allowed,
                    "{src} offers {} after its watchdog, fail-safe {allowed}",
                    hb.amaxcur
                );
            }
        }
        ensure!(late > 20, "heartbeats continue without the bridge ({late})");
        self.check("while the bridge was dead")?;

        // A restarted bridge knows nothing and must not overshoot while it learns; paused
        // bays resume after the controller's pause and wait states (10 s each).
        let bridge = restart()?;
        let resumed_from = (self.records)().len();
        self.wait_charging(resumed_from, 4, Duration::from_secs(45))
            .await
            .map_err(|e| e.context("after the restart"))?;
        // Bays on a generous fail-safe may charge on without any bridge: make sure the new
        // one took over, and give it time to settle.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(self.records)()
            .get(resumed_from..)
            .unwrap_or_default()
            .iter()
            .any(|r| matches!(r.decode(&self.mesh_id), Some(WireMessage::Command { .. })))
        {
            ensure!(
                Instant::now() < deadline,
                "the restarted bridge sent no command"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let stats = self.check("after the restart")?;
        Ok((stats, bridge))
    }
}
