//! What a simulated bay makes of an AVR update: the version an image carries, and the
//! failures a test injects (lost chunks, corrupted chunks, the node dropping off the mesh
//! mid-transfer, an image for another board).
//!
//! A real image carries its version in its code; a simulated one says it in an ASCII tag
//! anywhere in the image, `CTRL22VER=<ver>` (e.g. `CTRL22VER=15`), and may name its board
//! with `CTRL22BOARD=<board>;`. An image without a version tag leaves `ver` as it was.

/// Failures injected into one bay's AVR updates ([`super::SimWorld::set_ota_faults`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtaFaults {
    /// Every n-th `avrimg` chunk is lost on the way: no reply.
    pub lose_every_nth_chunk: Option<u32>,
    /// Every n-th chunk arrives damaged: the node answers `"avrcrc":"error"`.
    pub corrupt_every_nth_chunk: Option<u32>,
    /// After this many chunks the node drops off the mesh once: it reboots (silent while
    /// booting) and forgets the image received so far.
    pub offline_after_chunks: Option<u32>,
    /// The node never takes an ESP32 upgrade (a straggler): it keeps its version.
    pub refuses_esp32_upgrade: bool,
}

/// A chunk's fate under [`OtaFaults`]; `count` is the chunk's number since boot, from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChunkFate {
    Delivered,
    Lost,
    Corrupted,
    DropOff,
}

impl OtaFaults {
    pub(super) fn fate(&mut self, count: u32) -> ChunkFate {
        let every = |n: Option<u32>| n.is_some_and(|n| n > 0 && count % n == 0);
        if self.offline_after_chunks.is_some_and(|n| count > n) {
            // Once: after the reboot the transfer may succeed.
            self.offline_after_chunks = None;
            ChunkFate::DropOff
        } else if every(self.lose_every_nth_chunk) {
            ChunkFate::Lost
        } else if every(self.corrupt_every_nth_chunk) {
            ChunkFate::Corrupted
        } else {
            ChunkFate::Delivered
        }
    }
}

/// The tag `name` in `image` and what follows it up to a non-word byte.
fn tag<'a>(image: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let start = image.windows(name.len()).position(|w| w == name)? + name.len();
    let rest = image.get(start..)?;
    let len = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(rest.len());
    rest.get(..len)
}

/// The `ver` an image makes the controller report, if it says.
pub(super) fn image_version(image: &[u8]) -> Option<i16> {
    core::str::from_utf8(tag(image, b"CTRL22VER=")?)
        .ok()?
        .parse()
        .ok()
}

/// Whether the image names a board other than `board` (the bootloader refuses it).
pub(super) fn wrong_board(image: &[u8], board: &str) -> bool {
    tag(image, b"CTRL22BOARD=").is_some_and(|b| b != board.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_from_anywhere_in_the_image() {
        let image = b"\x0c\x94\x00CTRL22VER=15\x00CTRL22BOARD=m5stick;\xff";
        assert_eq!(image_version(image), Some(15));
        assert!(wrong_board(image, "agccs12"));
        assert!(!wrong_board(image, "m5stick"));
        assert_eq!(image_version(b"\x0c\x94"), None);
        assert!(!wrong_board(b"\x0c\x94", "agccs12"));
    }

    #[test]
    fn faults_follow_the_chunk_count() {
        let mut faults = OtaFaults {
            lose_every_nth_chunk: Some(3),
            offline_after_chunks: Some(4),
            ..OtaFaults::default()
        };
        let fates: Vec<_> = (1..=6).map(|n| faults.fate(n)).collect();
        use ChunkFate::*;
        assert_eq!(
            fates,
            [Delivered, Delivered, Lost, Delivered, DropOff, Lost]
        );
    }
}
