//! Node -> host messages: heartbeats, command replies and AVR log lines, with their wire form.
//!
//! On the wire every message is one flat JSON object naming its sender (`src` in colon form on
//! TCP, `dev` in topic form on MQTT) and its kind (`mtype`, dropped from MQTT heartbeats and
//! log lines, whose topic names the kind). Keys follow the node firmware's order exactly.

use serde::ser::SerializeStruct as _;
use serde::Serialize;
use serde_json_core::str::EscapedStr;

use super::wire::{self, int, keyword, required, required_int, text};
use super::{MacAddr, ParName, ProtocolError, TopicKind};
use crate::{Ccss, Deciamps, PhaseSet};

/// The periodic (and on-change) state report of a bay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// Signal to the mesh parent, dBm.
    pub rssi: i16,
    pub ccss: Ccss,
    /// The current the controller signals to the EV via the pilot PWM.
    pub amaxcur: Deciamps,
    /// Cable capacity read from the proximity pilot; `Deciamps(-1)` = no cable.
    pub cmaxcur: Deciamps,
    /// Phases with contactors closed.
    pub aphases: PhaseSet,
    /// Measured RMS current per phase, indexed by [`crate::Phase::index`].
    pub cur: [Deciamps; 3],
}

/// Reply to `status`: the node's place in the mesh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatusReply {
    /// Mesh parent (the router for the root).
    pub parent: MacAddr,
    pub rssi: i16,
    /// 1 = root.
    pub layer: u8,
    /// Mesh size.
    pub nodes: u16,
    /// Round trip to the parent, ms.
    pub plat: u32,
}

/// Reply to `system`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SystemReply {
    /// Node uptime in ms, wrapping at [`SystemReply::TIME_WRAP_MS`].
    pub time_ms: u32,
    /// Firmware version, "M.m".
    pub version: heapless::String<16>,
    /// Board name, e.g. `m5stick`, `agccs12`.
    pub board: heapless::String<32>,
    /// AVR firmware version (13 = v1.3, 0 = no AVR).
    pub avrver: i16,
}

impl SystemReply {
    /// The node's clock wraps every hour.
    pub const TIME_WRAP_MS: u32 = 3_600_000;
}

/// Reply to `tsync`: three time stamps of the sync exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TsyncReply {
    pub tsync1: u32,
    pub tsync2: u32,
    pub tsync3: u32,
}

/// State reported by `avrota` replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OtaState {
    /// Ready to receive image chunks.
    RecImg,
    /// Flashing succeeded, the new AVR firmware runs.
    Running,
    /// Flashing failed.
    Halted,
}

impl OtaState {
    pub const ALL: [Self; 3] = [Self::RecImg, Self::Running, Self::Halted];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RecImg => "recimg",
            Self::Running => "running",
            Self::Halted => "halted",
        }
    }
}

/// Anything a node sends to the host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeMessage {
    Heartbeat(Heartbeat),
    Status(StatusReply),
    System(SystemReply),
    Tsync(TsyncReply),
    /// `"avrpar":"ok"` or `"fail"`; the reply does not name the parameter.
    AvrSetPar {
        ok: bool,
    },
    /// `val: None` = `"avrval":"fail"`.
    AvrGetPar {
        par: ParName,
        val: Option<i16>,
    },
    AvrOta {
        state: OtaState,
    },
    /// `"avrcrc":"ok"` or `"error"` for the chunk at `addr`.
    AvrImg {
        addr: u32,
        ok: bool,
    },
    AvrLog {
        line: heapless::String<256>,
    },
}

/// Highest current any field carries: 80 A is the top of the IEC 61851-1 PWM range.
const MAX_WIRE_CURRENT: Deciamps = Deciamps(800);
/// `cmaxcur` without a cable.
const NO_CABLE: Deciamps = Deciamps(-1);

fn check_current(
    value: Deciamps,
    min: Deciamps,
    field: &'static str,
) -> Result<Deciamps, ProtocolError> {
    if (min..=MAX_WIRE_CURRENT).contains(&value) {
        Ok(value)
    } else {
        Err(ProtocolError::OutOfRange { field })
    }
}

/// RSSI is an `int8_t` in the firmware.
fn check_rssi(rssi: i16) -> Result<i16, ProtocolError> {
    i8::try_from(rssi)
        .map(i16::from)
        .map_err(|_| ProtocolError::OutOfRange { field: "rssi" })
}

fn check_time(time_ms: u32) -> Result<u32, ProtocolError> {
    if time_ms < SystemReply::TIME_WRAP_MS {
        Ok(time_ms)
    } else {
        Err(ProtocolError::OutOfRange { field: "time" })
    }
}

impl Heartbeat {
    /// The values a node can actually send; encoders and decoders both hold to them.
    fn validate(&self) -> Result<(), ProtocolError> {
        check_rssi(self.rssi)?;
        check_current(self.amaxcur, Deciamps::ZERO, "amaxcur")?;
        check_current(self.cmaxcur, NO_CABLE, "cmaxcur")?;
        for (value, field) in self.cur.into_iter().zip(CUR_FIELDS) {
            check_current(value, Deciamps::ZERO, field)?;
        }
        Ok(())
    }
}

const CUR_FIELDS: [&str; 3] = ["cur1", "cur2", "cur3"];

/// The wire name of each message kind (`mtype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MessageType {
    Heartbeat,
    Status,
    System,
    Tsync,
    AvrSetPar,
    AvrGetPar,
    AvrOta,
    AvrImg,
    AvrLog,
}

impl MessageType {
    const ALL: [Self; 9] = [
        Self::Heartbeat,
        Self::Status,
        Self::System,
        Self::Tsync,
        Self::AvrSetPar,
        Self::AvrGetPar,
        Self::AvrOta,
        Self::AvrImg,
        Self::AvrLog,
    ];

    const fn as_str(self) -> &'static str {
        match self {
            Self::Heartbeat => "heartbeat",
            Self::Status => "status",
            Self::System => "system",
            Self::Tsync => "tsync",
            Self::AvrSetPar => "avrsetpar",
            Self::AvrGetPar => "avrgetpar",
            Self::AvrOta => "avrota",
            Self::AvrImg => "avrimg",
            Self::AvrLog => "avrlog",
        }
    }

    fn parse(mtype: EscapedStr<'_>) -> Result<Self, ProtocolError> {
        let word = keyword(mtype);
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == word.as_str())
            .ok_or(ProtocolError::UnknownMessageType)
    }

    /// The MQTT topic a message of this kind travels on.
    const fn topic_kind(self) -> TopicKind {
        match self {
            Self::Heartbeat => TopicKind::Heartbeat,
            Self::AvrLog => TopicKind::AvrLog,
            _ => TopicKind::Acknowledge,
        }
    }
}

impl NodeMessage {
    fn message_type(&self) -> MessageType {
        match self {
            Self::Heartbeat(_) => MessageType::Heartbeat,
            Self::Status(_) => MessageType::Status,
            Self::System(_) => MessageType::System,
            Self::Tsync(_) => MessageType::Tsync,
            Self::AvrSetPar { .. } => MessageType::AvrSetPar,
            Self::AvrGetPar { .. } => MessageType::AvrGetPar,
            Self::AvrOta { .. } => MessageType::AvrOta,
            Self::AvrImg { .. } => MessageType::AvrImg,
            Self::AvrLog { .. } => MessageType::AvrLog,
        }
    }

    /// The `mtype` of this message; for replies, the `cmd` of the command answered.
    #[must_use]
    pub fn mtype(&self) -> &'static str {
        self.message_type().as_str()
    }

    /// The MQTT topic kind this message is published on.
    #[must_use]
    pub fn topic_kind(&self) -> TopicKind {
        self.message_type().topic_kind()
    }
}

/// Which uplink a body is written for; decides the sender key and whether `mtype` is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Uplink {
    Tcp,
    Mqtt,
}

/// A message as one uplink writes it. Serialization validates nothing: call
/// [`UplinkBody::new`], which does.
pub(crate) struct UplinkBody<'a> {
    uplink: Uplink,
    sender: MacAddr,
    msg: &'a NodeMessage,
}

impl<'a> UplinkBody<'a> {
    pub(crate) fn new(
        uplink: Uplink,
        sender: MacAddr,
        msg: &'a NodeMessage,
    ) -> Result<Self, ProtocolError> {
        match msg {
            NodeMessage::Heartbeat(hb) => {
                hb.validate()?;
            }
            NodeMessage::Status(status) => {
                check_rssi(status.rssi)?;
            }
            NodeMessage::System(system) => {
                check_time(system.time_ms)?;
            }
            _ => {}
        }
        Ok(Self {
            uplink,
            sender,
            msg,
        })
    }
}

/// `avrval` as written: a number or the word `fail`.
struct AvrValOut(Option<i16>);

impl Serialize for AvrValOut {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(value) => serializer.serialize_i16(value),
            None => serializer.serialize_str("fail"),
        }
    }
}

impl Serialize for UplinkBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let kind = self.msg.message_type();
        let mut s = serializer.serialize_struct("NodeMessage", 0)?;
        match self.uplink {
            Uplink::Tcp => {
                s.serialize_field("src", &self.sender)?;
                s.serialize_field("mtype", kind.as_str())?;
            }
            Uplink::Mqtt => {
                s.serialize_field("dev", &wire::DisplayStr(self.sender.topic_form()))?;
                if kind.topic_kind() == TopicKind::Acknowledge {
                    s.serialize_field("mtype", kind.as_str())?;
                }
            }
        }
        match self.msg {
            NodeMessage::Heartbeat(hb) => {
                s.serialize_field("rssi", &hb.rssi)?;
                s.serialize_field("ccss", &hb.ccss)?;
                s.serialize_field("amaxcur", &hb.amaxcur)?;
                s.serialize_field("cmaxcur", &hb.cmaxcur)?;
                s.serialize_field("aphases", &hb.aphases)?;
                for (field, value) in CUR_FIELDS.into_iter().zip(&hb.cur) {
                    s.serialize_field(field, value)?;
                }
            }
            NodeMessage::Status(status) => {
                s.serialize_field("parent", &status.parent)?;
                s.serialize_field("rssi", &status.rssi)?;
                s.serialize_field("layer", &status.layer)?;
                s.serialize_field("nodes", &status.nodes)?;
                s.serialize_field("plat", &status.plat)?;
            }
            NodeMessage::System(system) => {
                s.serialize_field("time", &system.time_ms)?;
                s.serialize_field("version", system.version.as_str())?;
                s.serialize_field("board", system.board.as_str())?;
                s.serialize_field("avrver", &system.avrver)?;
            }
            NodeMessage::Tsync(tsync) => {
                s.serialize_field("tsync1", &tsync.tsync1)?;
                s.serialize_field("tsync2", &tsync.tsync2)?;
                s.serialize_field("tsync3", &tsync.tsync3)?;
            }
            NodeMessage::AvrSetPar { ok } => {
                s.serialize_field("avrpar", if *ok { "ok" } else { "fail" })?;
            }
            NodeMessage::AvrGetPar { par, val } => {
                s.serialize_field("avrpar", par.as_str())?;
                s.serialize_field("avrval", &AvrValOut(*val))?;
            }
            NodeMessage::AvrOta { state } => {
                s.serialize_field("state", state.as_str())?;
            }
            NodeMessage::AvrImg { addr, ok } => {
                s.serialize_field("avraddr", addr)?;
                s.serialize_field("avrcrc", if *ok { "ok" } else { "error" })?;
            }
            NodeMessage::AvrLog { line } => {
                s.serialize_field("line", line.as_str())?;
            }
        }
        s.end()
    }
}

/// Every key any node message may carry. `avrval` is a number or the word `fail`;
/// serde-json-core cannot look ahead at a value's type (`deserialize_any` is unsupported), so
/// the body is parsed as `V = i64` first and, when that meets a string, again as
/// `V = EscapedStr`.
#[derive(serde::Deserialize)]
struct UplinkWire<'a, V> {
    #[serde(borrow)]
    src: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    dev: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    mtype: Option<EscapedStr<'a>>,
    rssi: Option<i64>,
    ccss: Option<i64>,
    amaxcur: Option<i64>,
    /// Older firmware's name for `amaxcur`.
    smaxcur: Option<i64>,
    cmaxcur: Option<i64>,
    aphases: Option<i64>,
    /// Older firmware's name for `aphases`.
    phases: Option<i64>,
    cur1: Option<i64>,
    cur2: Option<i64>,
    cur3: Option<i64>,
    #[serde(borrow)]
    parent: Option<EscapedStr<'a>>,
    layer: Option<i64>,
    nodes: Option<i64>,
    plat: Option<i64>,
    time: Option<i64>,
    #[serde(borrow)]
    version: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    board: Option<EscapedStr<'a>>,
    avrver: Option<i64>,
    tsync1: Option<i64>,
    tsync2: Option<i64>,
    tsync3: Option<i64>,
    #[serde(borrow)]
    avrpar: Option<EscapedStr<'a>>,
    avrval: Option<V>,
    #[serde(borrow)]
    state: Option<EscapedStr<'a>>,
    avraddr: Option<i64>,
    #[serde(borrow)]
    avrcrc: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    line: Option<EscapedStr<'a>>,
}

/// The two shapes `avrval` comes in.
trait AvrValWire {
    /// `None` for `"fail"`.
    fn value(self) -> Result<Option<i16>, ProtocolError>;
}

impl AvrValWire for i64 {
    fn value(self) -> Result<Option<i16>, ProtocolError> {
        int(self, "avrval").map(Some)
    }
}

impl AvrValWire for EscapedStr<'_> {
    fn value(self) -> Result<Option<i16>, ProtocolError> {
        if self.0 == "fail" {
            Ok(None)
        } else {
            Err(ProtocolError::InvalidValue { field: "avrval" })
        }
    }
}

/// A new key when present, else the older firmware's key; the name goes into errors.
fn new_or_old(
    new: Option<i64>,
    new_name: &'static str,
    old: Option<i64>,
    old_name: &'static str,
) -> Result<(i64, &'static str), ProtocolError> {
    match (new, old) {
        (Some(value), _) => Ok((value, new_name)),
        (None, Some(value)) => Ok((value, old_name)),
        (None, None) => Err(ProtocolError::MissingField { field: new_name }),
    }
}

fn current(value: i64, min: Deciamps, field: &'static str) -> Result<Deciamps, ProtocolError> {
    check_current(Deciamps(int(value, field)?), min, field)
}

fn ok_or_fail(
    word: EscapedStr<'_>,
    ok: &str,
    fail: &str,
    field: &'static str,
) -> Result<bool, ProtocolError> {
    match keyword(word).as_str() {
        w if w == ok => Ok(true),
        w if w == fail => Ok(false),
        _ => Err(ProtocolError::InvalidValue { field }),
    }
}

impl<'a, V: AvrValWire> UplinkWire<'a, V> {
    fn sender(&self) -> Result<Option<MacAddr>, ProtocolError> {
        self.src.or(self.dev).map(wire::address).transpose()
    }

    fn heartbeat(self) -> Result<Heartbeat, ProtocolError> {
        let rssi = check_rssi(required_int(self.rssi, "rssi")?)?;
        let ccss = required(self.ccss, "ccss")?;
        let ccss = i32::try_from(ccss)
            .ok()
            .and_then(|code| Ccss::from_code(code).ok())
            .ok_or(ProtocolError::OutOfRange { field: "ccss" })?;
        let (amaxcur, amaxcur_name) = new_or_old(self.amaxcur, "amaxcur", self.smaxcur, "smaxcur")?;
        let (aphases, aphases_name) = new_or_old(self.aphases, "aphases", self.phases, "phases")?;
        let aphases = i32::try_from(aphases)
            .ok()
            .and_then(|digits| PhaseSet::from_digits(digits).ok())
            .ok_or(ProtocolError::OutOfRange {
                field: aphases_name,
            })?;
        let mut cur = [Deciamps::ZERO; 3];
        for ((slot, value), field) in cur
            .iter_mut()
            .zip([self.cur1, self.cur2, self.cur3])
            .zip(CUR_FIELDS)
        {
            *slot = current(required(value, field)?, Deciamps::ZERO, field)?;
        }
        Ok(Heartbeat {
            rssi,
            ccss,
            amaxcur: current(amaxcur, Deciamps::ZERO, amaxcur_name)?,
            cmaxcur: current(required(self.cmaxcur, "cmaxcur")?, NO_CABLE, "cmaxcur")?,
            aphases,
            cur,
        })
    }

    fn message(self, kind: MessageType) -> Result<NodeMessage, ProtocolError> {
        Ok(match kind {
            MessageType::Heartbeat => NodeMessage::Heartbeat(self.heartbeat()?),
            MessageType::Status => NodeMessage::Status(StatusReply {
                parent: wire::address(required(self.parent, "parent")?)?,
                rssi: check_rssi(required_int(self.rssi, "rssi")?)?,
                layer: required_int(self.layer, "layer")?,
                nodes: required_int(self.nodes, "nodes")?,
                plat: required_int(self.plat, "plat")?,
            }),
            MessageType::System => NodeMessage::System(SystemReply {
                time_ms: check_time(required_int(self.time, "time")?)?,
                version: text(required(self.version, "version")?, "version")?,
                board: text(required(self.board, "board")?, "board")?,
                avrver: required_int(self.avrver, "avrver")?,
            }),
            MessageType::Tsync => NodeMessage::Tsync(TsyncReply {
                tsync1: required_int(self.tsync1, "tsync1")?,
                tsync2: required_int(self.tsync2, "tsync2")?,
                tsync3: required_int(self.tsync3, "tsync3")?,
            }),
            MessageType::AvrSetPar => NodeMessage::AvrSetPar {
                ok: ok_or_fail(required(self.avrpar, "avrpar")?, "ok", "fail", "avrpar")?,
            },
            MessageType::AvrGetPar => NodeMessage::AvrGetPar {
                par: text(required(self.avrpar, "avrpar")?, "avrpar")?,
                val: required(self.avrval, "avrval")?.value()?,
            },
            MessageType::AvrOta => {
                let word = keyword(required(self.state, "state")?);
                let state = OtaState::ALL
                    .into_iter()
                    .find(|s| s.as_str() == word.as_str())
                    .ok_or(ProtocolError::InvalidValue { field: "state" })?;
                NodeMessage::AvrOta { state }
            }
            MessageType::AvrImg => NodeMessage::AvrImg {
                addr: required_int(self.avraddr, "avraddr")?,
                ok: ok_or_fail(required(self.avrcrc, "avrcrc")?, "ok", "error", "avrcrc")?,
            },
            MessageType::AvrLog => NodeMessage::AvrLog {
                line: text(required(self.line, "line")?, "line")?,
            },
        })
    }

    /// The sender (if the body names one) and the message. `topic` is the MQTT topic kind,
    /// `None` on TCP. `mtype` is required on TCP; on MQTT it may be implied by the topic and,
    /// if present, must belong on it.
    fn decode(
        self,
        topic: Option<TopicKind>,
    ) -> Result<(Option<MacAddr>, NodeMessage), ProtocolError> {
        let sender = self.sender()?;
        let kind = match (self.mtype, topic) {
            (Some(mtype), _) => MessageType::parse(mtype)?,
            (None, Some(TopicKind::Heartbeat)) => MessageType::Heartbeat,
            (None, Some(TopicKind::AvrLog)) => MessageType::AvrLog,
            (None, _) => return Err(ProtocolError::MissingField { field: "mtype" }),
        };
        if topic.is_some_and(|topic| topic != kind.topic_kind()) {
            return Err(ProtocolError::BadTopic);
        }
        Ok((sender, self.message(kind)?))
    }
}

/// Decodes one node message body; `topic` is the MQTT topic kind, `None` on TCP.
pub(crate) fn decode_body(
    body: &[u8],
    topic: Option<TopicKind>,
) -> Result<(Option<MacAddr>, NodeMessage), ProtocolError> {
    match wire::parse_raw::<UplinkWire<'_, i64>>(body)? {
        Ok(numeric) => numeric.decode(topic),
        Err(first) if first == serde_json_core::de::Error::InvalidType => {
            // Perhaps `"avrval":"fail"`; if not, the first error is the one to report.
            wire::parse::<UplinkWire<'_, EscapedStr<'_>>>(body)
                .map_err(|_| ProtocolError::from(first))?
                .decode(topic)
        }
        Err(other) => Err(other.into()),
    }
}
