//! The mesh node wire protocol (see `shared/reference/mesh-protocol.md`, sections 1-5): node
//! addresses, the MQTT topic scheme, host -> node commands and node -> host messages, on both
//! uplinks (MQTT through a broker, plain TCP to the host). Firmware, simulator and bridge all
//! use this codec, so byte-exactness with the original node firmware is decided here once.
//!
//! `no_std` without allocator: bodies are parsed with serde-json-core into flat wire structs
//! (numbers as `i64`, strings borrowed and still escaped) and then checked into the typed
//! enums; every malformed input becomes a [`ProtocolError`], never a panic. Encoders refuse
//! values the decoders would reject, so whatever is encoded decodes again.

mod addr;
mod codec;
mod command;
mod error;
mod message;
mod topic;
mod wire;

pub use addr::{AddrError, Address, MacAddr};
pub use codec::{
    decode_command_mqtt, decode_command_tcp, decode_uplink_mqtt, decode_uplink_tcp, encode_command,
    encode_command_tcp, encode_uplink_mqtt, encode_uplink_tcp, MAX_MESSAGE_LEN,
};
#[cfg(feature = "std")]
pub use codec::{encode_command_tcp_vec, encode_uplink_mqtt_vec, encode_uplink_tcp_vec};
pub use command::{avr_chunk_crc, Command, ParName, MAX_AVR_CHUNK};
pub use error::{JsonError, ProtocolError};
pub use message::{Heartbeat, NodeMessage, OtaState, StatusReply, SystemReply, TsyncReply};
pub use topic::{check_mesh_id, parse_topic, subscriptions, topic, TopicKind, MAX_MESH_ID_LEN};
