//! The two uplinks' framing around message and command bodies.
//!
//! MQTT: the topic names node and kind; bodies name the sender as `"dev"` (topic form), and
//! commands carry no destination. TCP: the root writes one object per line ending `\r\n`
//! with `"src"` (colon form) and `"mtype"`; the host writes one command per write with
//! `"dst"` first.

use super::command::{self, CommandBody};
use super::message::{self, Uplink, UplinkBody};
use super::topic::{checked_topic, parse_topic};
use super::{Address, Command, MacAddr, NodeMessage, ProtocolError, TopicKind};

/// Longest body (without the TCP line end) accepted or produced: the root's receive buffer.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Decodes a node message received on the MQTT uplink.
///
/// # Errors
/// [`ProtocolError::BadTopic`] for a foreign or control topic, or a body whose `mtype` belongs
/// on another topic; [`ProtocolError::BadAddress`] when the topic names `*`/`root` or the
/// body's `dev` names another node; any decoding error of the body.
pub fn decode_uplink_mqtt(
    mesh_id: &str,
    topic: &str,
    payload: &[u8],
) -> Result<(MacAddr, NodeMessage), ProtocolError> {
    let (addr, kind) = parse_topic(mesh_id, topic)?;
    if kind == TopicKind::Control {
        return Err(ProtocolError::BadTopic);
    }
    let Address::Node(node) = addr else {
        return Err(ProtocolError::BadAddress);
    };
    let (sender, msg) = message::decode_body(payload, Some(kind))?;
    if sender.is_some_and(|sender| sender != node) {
        return Err(ProtocolError::BadAddress);
    }
    Ok((node, msg))
}

/// Encodes a node message for the MQTT uplink: returns the topic, and the body's length in
/// `buf`.
///
/// # Errors
/// [`ProtocolError::BadTopic`] for an unusable mesh id, [`ProtocolError::OutOfRange`] for
/// values no node sends, [`ProtocolError::TooLong`] / [`ProtocolError::BufferTooSmall`].
pub fn encode_uplink_mqtt(
    mesh_id: &str,
    src: MacAddr,
    msg: &NodeMessage,
    buf: &mut [u8],
) -> Result<(heapless::String<96>, usize), ProtocolError> {
    let topic = checked_topic(mesh_id, &Address::Node(src), msg.topic_kind())?;
    let len = super::wire::write(&UplinkBody::new(Uplink::Mqtt, src, msg)?, buf)?;
    Ok((topic, len))
}

/// Decodes a command received on the MQTT uplink (what a root node does).
///
/// # Errors
/// [`ProtocolError::BadTopic`] unless the topic is a control topic of this mesh;
/// [`ProtocolError::BadAddress`] when a `dst` in the body disagrees with the topic; any
/// decoding error of the body.
pub fn decode_command_mqtt(
    mesh_id: &str,
    topic: &str,
    payload: &[u8],
) -> Result<(Address, Command), ProtocolError> {
    let (addr, kind) = parse_topic(mesh_id, topic)?;
    if kind != TopicKind::Control {
        return Err(ProtocolError::BadTopic);
    }
    let (dst, cmd) = command::decode_body(payload)?;
    if dst.is_some_and(|dst| dst != addr) {
        return Err(ProtocolError::BadAddress);
    }
    Ok((addr, cmd))
}

/// Encodes a command body for the MQTT uplink (the topic carries the destination, see
/// [`super::topic`] with [`TopicKind::Control`]).
///
/// # Errors
/// [`ProtocolError::BufferTooSmall`]; every command fits [`MAX_MESSAGE_LEN`] bytes.
pub fn encode_command(cmd: &Command, buf: &mut [u8]) -> Result<usize, ProtocolError> {
    super::wire::write(&CommandBody { dst: None, cmd }, buf)
}

/// The JSON object of a TCP line: without the line end, which is optional on input.
fn strip_line_end(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .unwrap_or(line)
}

/// Decodes one line the root wrote on the TCP uplink (with or without its `\r\n`).
///
/// # Errors
/// [`ProtocolError::MissingField`] without `src` or `mtype`; any decoding error of the body.
pub fn decode_uplink_tcp(line: &[u8]) -> Result<(MacAddr, NodeMessage), ProtocolError> {
    let (sender, msg) = message::decode_body(strip_line_end(line), None)?;
    let src = sender.ok_or(ProtocolError::MissingField { field: "src" })?;
    Ok((src, msg))
}

/// Encodes a node message as one TCP line, `\r\n` included; returns its length in `buf`.
///
/// # Errors
/// [`ProtocolError::OutOfRange`] for values no node sends, [`ProtocolError::TooLong`] /
/// [`ProtocolError::BufferTooSmall`].
pub fn encode_uplink_tcp(
    src: MacAddr,
    msg: &NodeMessage,
    buf: &mut [u8],
) -> Result<usize, ProtocolError> {
    let len = super::wire::write(&UplinkBody::new(Uplink::Tcp, src, msg)?, buf)?;
    buf.get_mut(len..len + 2)
        .ok_or(ProtocolError::BufferTooSmall)?
        .copy_from_slice(b"\r\n");
    Ok(len + 2)
}

/// Decodes a command the host wrote on the TCP uplink (what a root node does).
///
/// # Errors
/// [`ProtocolError::MissingField`] without `dst`; any decoding error of the body.
pub fn decode_command_tcp(bytes: &[u8]) -> Result<(Address, Command), ProtocolError> {
    let (dst, cmd) = command::decode_body(strip_line_end(bytes))?;
    let dst = dst.ok_or(ProtocolError::MissingField { field: "dst" })?;
    Ok((dst, cmd))
}

/// Encodes a command for the TCP uplink, `dst` first; no terminator (the root takes each
/// write as one object).
///
/// # Errors
/// [`ProtocolError::BufferTooSmall`]; every command fits [`MAX_MESSAGE_LEN`] bytes.
pub fn encode_command_tcp(
    dst: &Address,
    cmd: &Command,
    buf: &mut [u8],
) -> Result<usize, ProtocolError> {
    super::wire::write(
        &CommandBody {
            dst: Some(dst),
            cmd,
        },
        buf,
    )
}

#[cfg(feature = "std")]
mod convenience {
    use super::{
        encode_command, encode_command_tcp, encode_uplink_mqtt, encode_uplink_tcp, Address,
        Command, MacAddr, NodeMessage, ProtocolError, MAX_MESSAGE_LEN,
    };

    /// Runs an encoder on a buffer big enough for any message and its line end.
    fn to_vec(
        encode: impl FnOnce(&mut [u8]) -> Result<usize, ProtocolError>,
    ) -> Result<Vec<u8>, ProtocolError> {
        let mut buf = vec![0u8; MAX_MESSAGE_LEN + 2];
        let len = encode(&mut buf)?;
        buf.truncate(len);
        Ok(buf)
    }

    impl Command {
        /// The MQTT body of this command.
        #[must_use]
        pub fn to_json_string(&self) -> String {
            // Every command fits MAX_MESSAGE_LEN (the longest, a full avrimg chunk, needs
            // under 800 bytes; see the golden tests), so encoding cannot fail.
            to_vec(|buf| encode_command(self, buf))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_default()
        }
    }

    /// [`encode_uplink_mqtt`] into a fresh topic string and body.
    ///
    /// # Errors
    /// As [`encode_uplink_mqtt`].
    pub fn encode_uplink_mqtt_vec(
        mesh_id: &str,
        src: MacAddr,
        msg: &NodeMessage,
    ) -> Result<(String, Vec<u8>), ProtocolError> {
        let mut body = vec![0u8; MAX_MESSAGE_LEN];
        let (topic, len) = encode_uplink_mqtt(mesh_id, src, msg, &mut body)?;
        body.truncate(len);
        Ok((topic.as_str().into(), body))
    }

    /// [`encode_uplink_tcp`] into a fresh line, `\r\n` included.
    ///
    /// # Errors
    /// As [`encode_uplink_tcp`].
    pub fn encode_uplink_tcp_vec(
        src: MacAddr,
        msg: &NodeMessage,
    ) -> Result<Vec<u8>, ProtocolError> {
        to_vec(|buf| encode_uplink_tcp(src, msg, buf))
    }

    /// [`encode_command_tcp`] into a fresh buffer.
    ///
    /// # Errors
    /// As [`encode_command_tcp`].
    pub fn encode_command_tcp_vec(dst: &Address, cmd: &Command) -> Result<Vec<u8>, ProtocolError> {
        to_vec(|buf| encode_command_tcp(dst, cmd, buf))
    }
}

#[cfg(feature = "std")]
pub use convenience::{encode_command_tcp_vec, encode_uplink_mqtt_vec, encode_uplink_tcp_vec};
