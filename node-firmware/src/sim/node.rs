//! The ESP32 side of a bay: boot and reboot, its heartbeat schedule, the firmware version it
//! reports and the AVR image it buffers during an OTA.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::meshtree::MeshNode;
use crate::controller::Outputs;
use crate::mesh::{avr_chunk_crc, Heartbeat, SystemReply};
use crate::pilot;
use crate::Ccss;

/// A node reboots this long after `restart`, and is silent this long while booting.
pub(super) const RESTART_DELAY_MS: u64 = 10_000;
const BOOT_MS: u64 = 3_000;
/// How long the root takes to fetch and distribute node firmware after `upgrade` when no
/// firmware server is configured (the simulated one always has the image).
pub(super) const UPGRADE_MS: u64 = 60_000;
/// With a firmware server: the first node restarts this long after the download, the
/// others one [`UPGRADE_STAGGER_MS`] after another (the mesh relays the image node by node).
pub(super) const UPGRADE_AFTER_FETCH_MS: u64 = 3_000;
pub(super) const UPGRADE_STAGGER_MS: u64 = 1_500;
/// How long flashing the AVR takes before `running` / `halted` is reported.
pub(super) const FLASH_MS: u64 = 5_000;
/// Largest AVR image a node buffers (the ATmega2560's flash).
const MAX_IMAGE_LEN: usize = 256 * 1024;
/// Node firmware and board the simulated nodes report.
const NODE_VERSION: &str = "3.4";
pub(super) const NODE_BOARD: &str = "agccs12";

/// Something a node does later.
#[derive(Clone, Debug)]
pub(super) enum Scheduled {
    Reboot {
        version: Option<heapless::String<16>>,
    },
    /// Flashing the AVR finished: it restarts on the new image (reporting `version` from
    /// then on, when the image says) and reports `running`.
    Flashed { version: Option<i16> },
}

/// The ESP32 side of a bay.
#[derive(Clone, Debug)]
pub(super) struct Node {
    boot_ms: u64,
    /// Silent (booting) until then.
    up_at_ms: u64,
    heartbeat_ms: u32,
    next_heartbeat_ms: u64,
    last_reported: Option<Ccss>,
    pub(super) version: heapless::String<16>,
    /// The board `system` reports (what ESP32 upgrades match).
    pub(super) board: heapless::String<32>,
    /// AVR image being received after `avrota recimg`.
    pub(super) image: Option<Vec<u8>>,
}

impl Node {
    /// A node up since simulated time 0, its first heartbeat at a random moment within the
    /// first period so that a large mesh does not report in lockstep.
    pub(super) fn new(heartbeat_ms: u32, rng: &mut ChaCha8Rng) -> Self {
        let mut version = heapless::String::new();
        let _ = version.push_str(NODE_VERSION);
        Self {
            boot_ms: 0,
            up_at_ms: 0,
            heartbeat_ms,
            next_heartbeat_ms: rng.gen_range(0..u64::from(heartbeat_ms).max(1)),
            last_reported: None,
            version,
            board: board(),
            image: None,
        }
    }

    /// Booting nodes neither send nor answer.
    pub(super) fn is_up(&self, now_ms: u64) -> bool {
        now_ms >= self.up_at_ms
    }

    /// `hbperiod`: the new period runs from now.
    pub(super) fn set_heartbeat_period(&mut self, now_ms: u64, period_ms: u32) {
        self.heartbeat_ms = period_ms;
        self.next_heartbeat_ms = now_ms + u64::from(period_ms);
    }

    /// A heartbeat when one is due: periodically, and at once on every `ccss` change.
    pub(super) fn heartbeat_if_due(
        &mut self,
        now_ms: u64,
        outputs: &Outputs,
        pp_ohms: u32,
        cur: [crate::Deciamps; 3],
        mesh: &MeshNode,
        rng: &mut ChaCha8Rng,
    ) -> Option<Heartbeat> {
        if !self.is_up(now_ms) {
            return None;
        }
        let changed = self.last_reported != Some(outputs.ccss);
        let periodic = self.heartbeat_ms > 0 && now_ms >= self.next_heartbeat_ms;
        if periodic {
            let period = u64::from(self.heartbeat_ms);
            self.next_heartbeat_ms = (self.next_heartbeat_ms + period).max(now_ms + 1);
        }
        if !(changed || periodic) {
            return None;
        }
        self.last_reported = Some(outputs.ccss);
        Some(Heartbeat {
            rssi: mesh.rssi_dbm + rng.gen_range(-2..=2),
            ccss: outputs.ccss,
            amaxcur: outputs.offered,
            cmaxcur: pilot::cmaxcur(pp_ohms),
            aphases: outputs.contactors,
            cur,
        })
    }

    pub(super) fn uptime_ms(&self, now_ms: u64) -> u32 {
        let wrapped = now_ms.saturating_sub(self.boot_ms) % u64::from(SystemReply::TIME_WRAP_MS);
        u32::try_from(wrapped).unwrap_or(0)
    }

    /// Stores a chunk if its CRC matches and it continues (or repeats a tail of) the image.
    pub(super) fn receive_chunk(&mut self, addr: u32, data: &[u8], crc: i32) -> bool {
        let Some(image) = self.image.as_mut() else {
            return false;
        };
        let Ok(addr) = usize::try_from(addr) else {
            return false;
        };
        if avr_chunk_crc(data) != crc || addr > image.len() || addr + data.len() > MAX_IMAGE_LEN {
            return false;
        }
        image.truncate(addr);
        image.extend_from_slice(data);
        true
    }

    /// Boots again (after `restart` or into a new version): silent for a while, then back
    /// on the configured heartbeat period.
    pub(super) fn reboot(
        &mut self,
        now_ms: u64,
        version: Option<heapless::String<16>>,
        heartbeat_ms: u32,
    ) {
        self.boot_ms = now_ms;
        self.up_at_ms = now_ms + BOOT_MS;
        self.heartbeat_ms = heartbeat_ms;
        self.next_heartbeat_ms = now_ms + BOOT_MS;
        self.last_reported = None;
        self.image = None;
        if let Some(version) = version {
            self.version = version;
        }
    }
}

fn board() -> heapless::String<32> {
    let mut board = heapless::String::new();
    let _ = board.push_str(NODE_BOARD);
    board
}
