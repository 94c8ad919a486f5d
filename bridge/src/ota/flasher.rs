//! Flashing a node's AVR charge controller over the mesh (what `dmctrl.py` did): put the node
//! into receive mode (`avrota recimg`), send the image in 128-byte `avrimg` chunks, each
//! acknowledged by CRC and retried up to 10 times, then `avrota flash` and wait for the
//! controller to come back `running` (or `halted`).
//!
//! [`Flasher`] is the sans-IO state machine; the CLI drives it with messages and timeouts.

use std::time::Duration;

use ctrl22_node::mesh::{Command, MacAddr, NodeMessage, OtaState, ProtocolError};

/// Bytes per `avrimg` chunk, as the original tool sent them.
pub const CHUNK_LEN: usize = 128;
/// Attempts per chunk (the original tool's count).
pub const CHUNK_ATTEMPTS: u32 = 10;
/// Attempts to enter receive mode.
const RECIMG_ATTEMPTS: u32 = 3;
/// Wait for one reply to `recimg` or `avrimg`.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Writing the flash and restarting the controller takes a while.
pub const FLASH_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest image accepted: the biggest AVR of the CTRL22 family has 256 KiB of flash.
pub const MAX_IMAGE_LEN: usize = 256 * 1024;

/// Why flashing failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlashError {
    #[error("the image is empty")]
    EmptyImage,
    #[error("the image has {0} bytes; at most {MAX_IMAGE_LEN} fit an AVR")]
    ImageTooLarge(usize),
    #[error("Intel HEX line {line}: {problem}")]
    Hex { line: usize, problem: &'static str },
    #[error("the node did not enter receive mode")]
    NoReceiveMode,
    #[error("chunk at byte {addr} failed {CHUNK_ATTEMPTS} times")]
    ChunkFailed { addr: u32 },
    #[error("the controller reported `halted` after flashing")]
    Halted,
    #[error("no answer to `avrota flash` within {FLASH_TIMEOUT:?}")]
    FlashTimeout,
    #[error("cannot encode a chunk: {0}")]
    Encode(ProtocolError),
}

/// What the driver does next.
// `Command` holds an avrimg chunk inline (no_std codec); steps are few and short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlashStep {
    /// Send this command to the node, then wait for a message or [`Flasher::timeout`].
    Send(Command),
    /// Nothing to send; keep waiting.
    Wait,
    /// Finished: the controller runs the new firmware, or the reason it does not.
    Done(Result<(), FlashError>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    ReceiveMode,
    Chunk { offset: usize },
    Flashing,
    Finished,
}

/// The flashing conversation with one node.
#[derive(Debug)]
pub struct Flasher {
    node: MacAddr,
    image: Vec<u8>,
    stage: Stage,
    attempts: u32,
}

impl Flasher {
    /// # Errors
    /// An empty or oversized image.
    pub fn new(node: MacAddr, image: Vec<u8>) -> Result<Self, FlashError> {
        if image.is_empty() {
            return Err(FlashError::EmptyImage);
        }
        if image.len() > MAX_IMAGE_LEN {
            return Err(FlashError::ImageTooLarge(image.len()));
        }
        Ok(Self {
            node,
            image,
            stage: Stage::ReceiveMode,
            attempts: 0,
        })
    }

    /// The first command.
    pub fn start(&mut self) -> FlashStep {
        self.stage = Stage::ReceiveMode;
        self.attempts = 1;
        FlashStep::Send(Command::AvrOtaRecImg)
    }

    /// How long to wait for the reply to the last command.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        if self.stage == Stage::Flashing {
            FLASH_TIMEOUT
        } else {
            REPLY_TIMEOUT
        }
    }

    /// Whether `avrota flash` went out: from then on the controller may be writing its flash
    /// and restarting, whatever the node answers.
    #[must_use]
    pub fn flash_sent(&self) -> bool {
        self.stage == Stage::Flashing
    }

    /// Bytes acknowledged so far, and the image size.
    #[must_use]
    pub fn progress(&self) -> (usize, usize) {
        let done = match self.stage {
            Stage::ReceiveMode => 0,
            Stage::Chunk { offset } => offset,
            Stage::Flashing | Stage::Finished => self.image.len(),
        };
        (done, self.image.len())
    }

    /// A message from the mesh; messages from other nodes and unrelated replies are ignored.
    pub fn on_message(&mut self, src: MacAddr, msg: &NodeMessage) -> FlashStep {
        if src != self.node {
            return FlashStep::Wait;
        }
        match (self.stage, msg) {
            (
                Stage::ReceiveMode,
                NodeMessage::AvrOta {
                    state: OtaState::RecImg,
                },
            ) => self.send_chunk(0),
            (Stage::Chunk { offset }, NodeMessage::AvrImg { addr, ok })
                if chunk_addr(offset) == Some(*addr) =>
            {
                if *ok {
                    self.send_chunk(offset.saturating_add(CHUNK_LEN))
                } else {
                    self.retry_chunk(offset)
                }
            }
            (
                Stage::Flashing,
                NodeMessage::AvrOta {
                    state: OtaState::Running,
                },
            ) => self.finish(Ok(())),
            (
                Stage::Flashing,
                NodeMessage::AvrOta {
                    state: OtaState::Halted,
                },
            ) => self.finish(Err(FlashError::Halted)),
            _ => FlashStep::Wait,
        }
    }

    /// No reply within [`Flasher::timeout`].
    pub fn on_timeout(&mut self) -> FlashStep {
        match self.stage {
            Stage::ReceiveMode if self.attempts < RECIMG_ATTEMPTS => {
                self.attempts += 1;
                FlashStep::Send(Command::AvrOtaRecImg)
            }
            Stage::ReceiveMode => self.finish(Err(FlashError::NoReceiveMode)),
            Stage::Chunk { offset } => self.retry_chunk(offset),
            Stage::Flashing => self.finish(Err(FlashError::FlashTimeout)),
            Stage::Finished => FlashStep::Wait,
        }
    }

    fn send_chunk(&mut self, offset: usize) -> FlashStep {
        self.attempts = 1;
        if offset >= self.image.len() {
            self.stage = Stage::Flashing;
            // `new` bounds the length by MAX_IMAGE_LEN.
            let image_len = u32::try_from(self.image.len()).unwrap_or(u32::MAX);
            return FlashStep::Send(Command::AvrOtaFlash { image_len });
        }
        self.stage = Stage::Chunk { offset };
        self.chunk_command(offset)
    }

    fn retry_chunk(&mut self, offset: usize) -> FlashStep {
        if self.attempts >= CHUNK_ATTEMPTS {
            let addr = chunk_addr(offset).unwrap_or(u32::MAX);
            return self.finish(Err(FlashError::ChunkFailed { addr }));
        }
        self.attempts += 1;
        self.chunk_command(offset)
    }

    fn chunk_command(&mut self, offset: usize) -> FlashStep {
        let end = offset.saturating_add(CHUNK_LEN).min(self.image.len());
        let chunk = self.image.get(offset..end).unwrap_or_default();
        let command = chunk_addr(offset)
            .ok_or(ProtocolError::OutOfRange { field: "avraddr" })
            .and_then(|addr| Command::avr_img(addr, chunk));
        match command {
            Ok(command) => FlashStep::Send(command),
            Err(e) => self.finish(Err(FlashError::Encode(e))),
        }
    }

    fn finish(&mut self, result: Result<(), FlashError>) -> FlashStep {
        self.stage = Stage::Finished;
        FlashStep::Done(result)
    }
}

fn chunk_addr(offset: usize) -> Option<u32> {
    u32::try_from(offset).ok()
}

/// The flash image in `bytes`: Intel HEX when it starts with `:`, raw binary otherwise. HEX
/// gaps are filled with `0xff` (erased flash).
///
/// # Errors
/// A malformed HEX file, or an empty or oversized image.
pub fn parse_image(bytes: &[u8]) -> Result<Vec<u8>, FlashError> {
    let is_hex = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b':');
    let image = if is_hex {
        parse_intel_hex(bytes)?
    } else {
        bytes.to_vec()
    };
    if image.is_empty() {
        return Err(FlashError::EmptyImage);
    }
    if image.len() > MAX_IMAGE_LEN {
        return Err(FlashError::ImageTooLarge(image.len()));
    }
    Ok(image)
}

fn parse_intel_hex(text: &[u8]) -> Result<Vec<u8>, FlashError> {
    let mut image = Vec::new();
    let mut base: usize = 0;
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let bad = |problem| FlashError::Hex { line, problem };
        let record = raw.trim_ascii();
        if record.is_empty() {
            continue;
        }
        let hex = record
            .strip_prefix(b":")
            .ok_or(bad("does not start with ':'"))?;
        if hex.len() % 2 != 0 {
            return Err(bad("odd number of hex digits"));
        }
        let bytes = hex
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(bad("not hex"))?;
        let [len, addr_hi, addr_lo, kind, rest @ ..] = bytes.as_slice() else {
            return Err(bad("record too short"));
        };
        let (data, _checksum) = rest
            .split_at_checked(usize::from(*len))
            .filter(|(_, sum)| sum.len() == 1)
            .ok_or(bad("length does not match the record"))?;
        if bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b)) != 0 {
            return Err(bad("checksum mismatch"));
        }
        let addr = usize::from(u16::from_be_bytes([*addr_hi, *addr_lo]));
        match (kind, data) {
            (0x00, _) => {
                let start = base + addr;
                let end = start + data.len();
                if end > MAX_IMAGE_LEN {
                    return Err(FlashError::ImageTooLarge(end));
                }
                if image.len() < end {
                    image.resize(end, 0xff);
                }
                if let Some(slot) = image.get_mut(start..end) {
                    slot.copy_from_slice(data);
                }
            }
            (0x01, _) => return Ok(image),
            (0x02, [hi, lo]) => base = usize::from(u16::from_be_bytes([*hi, *lo])) << 4,
            (0x04, [hi, lo]) => base = usize::from(u16::from_be_bytes([*hi, *lo])) << 16,
            // Start addresses do not matter for an AVR image.
            (0x03 | 0x05, _) => {}
            _ => return Err(bad("unknown record type")),
        }
    }
    Err(FlashError::Hex {
        line: 0,
        problem: "no end-of-file record",
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NODE: MacAddr = MacAddr([0xd8, 0xa0, 0x1d, 0x55, 0xa7, 0x10]);

    fn sent(step: FlashStep) -> Command {
        match step {
            FlashStep::Send(c) => c,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    fn ota(state: OtaState) -> NodeMessage {
        NodeMessage::AvrOta { state }
    }

    /// A flasher of a 10-byte image whose node has entered receive mode; the first chunk is sent.
    fn receiving() -> Flasher {
        let mut f = Flasher::new(NODE, vec![0; 10]).unwrap();
        f.start();
        sent(f.on_message(NODE, &ota(OtaState::RecImg)));
        f
    }

    #[test]
    fn full_conversation_with_one_retry() {
        let image: Vec<u8> = (0..=255u8).chain(0..10).collect(); // 266 bytes: 3 chunks
        let mut f = Flasher::new(NODE, image.clone()).unwrap();
        assert_eq!(sent(f.start()), Command::AvrOtaRecImg);
        let other = MacAddr([1; 6]);
        assert_eq!(f.on_message(other, &ota(OtaState::RecImg)), FlashStep::Wait);
        let c0 = sent(f.on_message(NODE, &ota(OtaState::RecImg)));
        assert_eq!(c0, Command::avr_img(0, &image[..128]).unwrap());
        // CRC error: the same chunk again.
        let again = sent(f.on_message(NODE, &NodeMessage::AvrImg { addr: 0, ok: false }));
        assert_eq!(again, c0);
        // A late reply for another address is ignored.
        assert_eq!(
            f.on_message(
                NODE,
                &NodeMessage::AvrImg {
                    addr: 512,
                    ok: true
                }
            ),
            FlashStep::Wait
        );
        let c1 = sent(f.on_message(NODE, &NodeMessage::AvrImg { addr: 0, ok: true }));
        assert_eq!(c1, Command::avr_img(128, &image[128..256]).unwrap());
        let c2 = sent(f.on_message(
            NODE,
            &NodeMessage::AvrImg {
                addr: 128,
                ok: true,
            },
        ));
        assert_eq!(c2, Command::avr_img(256, &image[256..]).unwrap());
        assert_eq!(f.progress(), (256, 266));
        let flash = sent(f.on_message(
            NODE,
            &NodeMessage::AvrImg {
                addr: 256,
                ok: true,
            },
        ));
        assert_eq!(flash, Command::AvrOtaFlash { image_len: 266 });
        assert_eq!(f.timeout(), FLASH_TIMEOUT);
        assert_eq!(
            f.on_message(NODE, &ota(OtaState::Running)),
            FlashStep::Done(Ok(()))
        );
    }

    #[test]
    fn a_chunk_fails_after_ten_attempts() {
        let mut f = receiving();
        for _ in 1..CHUNK_ATTEMPTS {
            sent(f.on_timeout());
        }
        assert_eq!(
            f.on_timeout(),
            FlashStep::Done(Err(FlashError::ChunkFailed { addr: 0 }))
        );
    }

    #[test]
    fn halted_and_silence_are_failures() {
        let mut f = Flasher::new(NODE, vec![0; 10]).unwrap();
        f.start();
        for _ in 1..RECIMG_ATTEMPTS {
            assert_eq!(sent(f.on_timeout()), Command::AvrOtaRecImg);
        }
        assert_eq!(
            f.on_timeout(),
            FlashStep::Done(Err(FlashError::NoReceiveMode))
        );

        let mut f = receiving();
        sent(f.on_message(NODE, &NodeMessage::AvrImg { addr: 0, ok: true }));
        assert_eq!(
            f.on_message(NODE, &ota(OtaState::Halted)),
            FlashStep::Done(Err(FlashError::Halted))
        );
    }

    #[test]
    fn intel_hex_with_gap_and_extended_address() {
        let hex = b":0400000001020304F2\n\
                    :02000800AABB91\n\
                    :00000001FF\n";
        let image = parse_image(hex).unwrap();
        assert_eq!(image, [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xaa, 0xbb]);
        let linear = b":020000040001F9\n:0100000042BD\n:00000001FF\n";
        let image = parse_image(linear).unwrap();
        assert_eq!(image.len(), 0x10001);
        assert_eq!(image.last(), Some(&0x42));
        let beyond = b":020000040010EA\n:0100000042BD\n:00000001FF\n";
        assert_eq!(
            parse_image(beyond),
            Err(FlashError::ImageTooLarge(0x100001))
        );
    }

    #[test]
    fn intel_hex_errors_name_the_line() {
        let bad_sum = b":0400000001020304F3\n:00000001FF\n";
        assert_eq!(
            parse_image(bad_sum),
            Err(FlashError::Hex {
                line: 1,
                problem: "checksum mismatch"
            })
        );
        assert!(matches!(
            parse_image(b":0400000001020304F2\n"),
            Err(FlashError::Hex {
                problem: "no end-of-file record",
                ..
            })
        ));
        assert!(matches!(
            parse_image(b":04000000010203\n"),
            Err(FlashError::Hex { line: 1, .. })
        ));
    }

    #[test]
    fn binary_images_pass_through() {
        assert_eq!(parse_image(&[0x0c, 0x94]).unwrap(), [0x0c, 0x94]);
        assert_eq!(parse_image(b""), Err(FlashError::EmptyImage));
    }
}
