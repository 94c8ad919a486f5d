//! Host -> node commands and their wire form: one flat JSON object with `cmd` first (after
//! `dst` on the TCP uplink), keys in the order the original host tool wrote them.

use base64::Engine as _;
use serde::ser::SerializeStruct as _;
use serde_json_core::str::EscapedStr;

use super::wire::{self, keyword, required, required_int, text, DisplayStr};
use super::{Address, ProtocolError};

/// A charge-controller parameter name (`smaxcur`, `phases`, `ver`, ...).
pub type ParName = heapless::String<16>;

/// Largest AVR firmware chunk one `avrimg` command carries (the original tool sends 128).
pub const MAX_AVR_CHUNK: usize = 512;

/// A command to a node.
// Without an allocator the avrimg chunk lives inline; the other variants pay its size.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Reply: [`super::NodeMessage::Status`].
    Status,
    /// Reply: [`super::NodeMessage::System`].
    System,
    /// Reply: [`super::NodeMessage::Tsync`].
    Tsync,
    /// No reply; the node reboots after about 10 s.
    Restart,
    /// No reply; sets the heartbeat period.
    HbPeriod { period_ms: u32 },
    /// Writes a controller parameter. The reply does not name the parameter: one set per node
    /// at a time.
    AvrSetPar { par: ParName, val: i16 },
    /// Reads a controller parameter.
    AvrGetPar { par: ParName },
    /// To the root only, no reply: fetch and distribute node firmware `version` for `board`.
    Upgrade {
        version: heapless::String<16>,
        board: heapless::String<32>,
    },
    /// Prepares the AVR update; reply `avrota` with state `recimg`.
    AvrOtaRecImg,
    /// One chunk of AVR firmware at byte offset `addr`; `crc` is the CRC-32 (zlib/IEEE) of
    /// `data` as a signed 32-bit integer, see [`avr_chunk_crc`]. `data` is base64 on the wire.
    AvrImg {
        addr: u32,
        data: heapless::Vec<u8, MAX_AVR_CHUNK>,
        crc: i32,
    },
    /// Flashes the received image of `image_len` bytes; reply `avrota` with state `running`
    /// or `halted` (allow 30 s).
    AvrOtaFlash { image_len: u32 },
}

/// The CRC-32 (zlib/IEEE) of an AVR image chunk, as the signed integer `avrcrc` carries.
#[must_use]
pub fn avr_chunk_crc(chunk: &[u8]) -> i32 {
    i32::from_ne_bytes(crc32fast::hash(chunk).to_ne_bytes())
}

impl Command {
    /// An `avrimg` command for `chunk` at byte offset `addr`, with its CRC.
    ///
    /// # Errors
    /// [`ProtocolError::OutOfRange`] (`avrdata`) for chunks over [`MAX_AVR_CHUNK`] bytes.
    pub fn avr_img(addr: u32, chunk: &[u8]) -> Result<Self, ProtocolError> {
        let data = heapless::Vec::from_slice(chunk)
            .map_err(|()| ProtocolError::OutOfRange { field: "avrdata" })?;
        Ok(Self::AvrImg {
            addr,
            data,
            crc: avr_chunk_crc(chunk),
        })
    }

    /// The `cmd` word; replies carry it back as `mtype`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::System => "system",
            Self::Tsync => "tsync",
            Self::Restart => "restart",
            Self::HbPeriod { .. } => "hbperiod",
            Self::AvrSetPar { .. } => "avrsetpar",
            Self::AvrGetPar { .. } => "avrgetpar",
            Self::Upgrade { .. } => "upgrade",
            Self::AvrOtaRecImg | Self::AvrOtaFlash { .. } => "avrota",
            Self::AvrImg { .. } => "avrimg",
        }
    }

    /// Whether the node answers this command at all.
    #[must_use]
    pub const fn expects_reply(&self) -> bool {
        !matches!(
            self,
            Self::Restart | Self::HbPeriod { .. } | Self::Upgrade { .. }
        )
    }
}

/// A command as written on an uplink: with `dst` on TCP, without on MQTT.
pub(crate) struct CommandBody<'a> {
    pub(crate) dst: Option<&'a Address>,
    pub(crate) cmd: &'a Command,
}

impl serde::Serialize for CommandBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Command", 0)?;
        if let Some(dst) = self.dst {
            s.serialize_field("dst", dst)?;
        }
        s.serialize_field("cmd", self.cmd.name())?;
        match self.cmd {
            Command::Status | Command::System | Command::Tsync | Command::Restart => {}
            Command::HbPeriod { period_ms } => s.serialize_field("val", period_ms)?,
            Command::AvrSetPar { par, val } => {
                s.serialize_field("avrpar", par.as_str())?;
                s.serialize_field("avrval", val)?;
            }
            Command::AvrGetPar { par } => s.serialize_field("avrpar", par.as_str())?,
            Command::Upgrade { version, board } => {
                s.serialize_field("version", version.as_str())?;
                s.serialize_field("board", board.as_str())?;
            }
            Command::AvrOtaRecImg => s.serialize_field("state", "recimg")?,
            Command::AvrImg { addr, data, crc } => {
                s.serialize_field("avraddr", addr)?;
                let base64 = base64::display::Base64Display::new(
                    data,
                    &base64::engine::general_purpose::STANDARD,
                );
                s.serialize_field("avrdata", &DisplayStr(base64))?;
                s.serialize_field("avrcrc", crc)?;
            }
            Command::AvrOtaFlash { image_len } => {
                s.serialize_field("state", "flash")?;
                s.serialize_field("avrimgcnt", image_len)?;
            }
        }
        s.end()
    }
}

/// Every key any command may carry.
#[derive(serde::Deserialize)]
struct CommandWire<'a> {
    #[serde(borrow)]
    dst: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    cmd: Option<EscapedStr<'a>>,
    val: Option<i64>,
    #[serde(borrow)]
    avrpar: Option<EscapedStr<'a>>,
    avrval: Option<i64>,
    #[serde(borrow)]
    version: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    board: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    state: Option<EscapedStr<'a>>,
    avrimgcnt: Option<i64>,
    avraddr: Option<i64>,
    #[serde(borrow)]
    avrdata: Option<EscapedStr<'a>>,
    avrcrc: Option<i64>,
}

/// Base64 length of a full [`MAX_AVR_CHUNK`].
const MAX_AVR_CHUNK_BASE64: usize = MAX_AVR_CHUNK.div_ceil(3) * 4;

fn avr_data(value: EscapedStr<'_>) -> Result<heapless::Vec<u8, MAX_AVR_CHUNK>, ProtocolError> {
    let encoded: heapless::String<MAX_AVR_CHUNK_BASE64> = text(value, "avrdata")?;
    // Room for base64's conservative length estimate, which may exceed the true length.
    let mut decoded = [0u8; MAX_AVR_CHUNK + 3];
    let len = base64::engine::general_purpose::STANDARD
        .decode_slice(encoded.as_bytes(), &mut decoded)
        .map_err(|_| ProtocolError::BadBase64)?;
    decoded
        .get(..len)
        .and_then(|chunk| heapless::Vec::from_slice(chunk).ok())
        .ok_or(ProtocolError::OutOfRange { field: "avrdata" })
}

/// `avrcrc` is specified signed; unsigned spellings of the same 32 bits are accepted too.
fn avr_crc(value: i64) -> Result<i32, ProtocolError> {
    i32::try_from(value)
        .or_else(|_| u32::try_from(value).map(|crc| i32::from_ne_bytes(crc.to_ne_bytes())))
        .map_err(|_| ProtocolError::OutOfRange { field: "avrcrc" })
}

impl CommandWire<'_> {
    fn command(self) -> Result<Command, ProtocolError> {
        Ok(match keyword(required(self.cmd, "cmd")?).as_str() {
            "status" => Command::Status,
            "system" => Command::System,
            "tsync" => Command::Tsync,
            "restart" => Command::Restart,
            "hbperiod" => Command::HbPeriod {
                period_ms: required_int(self.val, "val")?,
            },
            "avrsetpar" => Command::AvrSetPar {
                par: text(required(self.avrpar, "avrpar")?, "avrpar")?,
                val: required_int(self.avrval, "avrval")?,
            },
            "avrgetpar" => Command::AvrGetPar {
                par: text(required(self.avrpar, "avrpar")?, "avrpar")?,
            },
            "upgrade" => Command::Upgrade {
                version: text(required(self.version, "version")?, "version")?,
                board: text(required(self.board, "board")?, "board")?,
            },
            "avrota" => match keyword(required(self.state, "state")?).as_str() {
                "recimg" => Command::AvrOtaRecImg,
                "flash" => Command::AvrOtaFlash {
                    image_len: required_int(self.avrimgcnt, "avrimgcnt")?,
                },
                _ => return Err(ProtocolError::InvalidValue { field: "state" }),
            },
            "avrimg" => Command::AvrImg {
                addr: required_int(self.avraddr, "avraddr")?,
                data: avr_data(required(self.avrdata, "avrdata")?)?,
                crc: avr_crc(required(self.avrcrc, "avrcrc")?)?,
            },
            _ => return Err(ProtocolError::UnknownCommand),
        })
    }
}

/// Decodes a command body; returns the `dst` it names, if any.
pub(crate) fn decode_body(body: &[u8]) -> Result<(Option<Address>, Command), ProtocolError> {
    let wire: CommandWire<'_> = wire::parse(body)?;
    let dst = wire.dst.map(wire::address).transpose()?;
    Ok((dst, wire.command()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_zlib_crc32_signed() {
        // zlib.crc32(b"123456789") == 0xCBF43926, negative as a signed 32-bit integer.
        assert_eq!(avr_chunk_crc(b"123456789"), -873_187_034);
        assert_eq!(avr_crc(0xCBF4_3926), Ok(avr_chunk_crc(b"123456789")));
        assert!(avr_crc(1 << 32).is_err());
        assert!(avr_crc(-(1 << 31) - 1).is_err());
    }

    #[test]
    fn int_conversion_names_the_field() {
        assert_eq!(
            wire::int::<u32>(-1, "val"),
            Err(ProtocolError::OutOfRange { field: "val" })
        );
    }
}
