//! The MQTT topic scheme of the root node: `/<mesh id>/<addr>/<kind>`, the mesh id being the
//! compile-time topic root (`DEMESH` by default) and `<addr>` a MAC in topic form, `*` or `root`.

use core::fmt::{self, Write as _};

use super::{AddrError, Address, ProtocolError};

/// The last topic level: what travels on the topic and in which direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// Node -> host: periodic and on-change heartbeats.
    Heartbeat,
    /// Node -> host: replies to commands.
    Acknowledge,
    /// Node -> host: unsolicited charge-controller log lines.
    AvrLog,
    /// Host -> node: commands.
    Control,
}

impl TopicKind {
    pub const ALL: [Self; 4] = [
        Self::Heartbeat,
        Self::Acknowledge,
        Self::AvrLog,
        Self::Control,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Heartbeat => "heartbeat",
            Self::Acknowledge => "acknowledge",
            Self::AvrLog => "avrlog",
            Self::Control => "control",
        }
    }
}

impl fmt::Display for TopicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest mesh id whose every topic fits the 96-byte topic strings of this module.
pub const MAX_MESH_ID_LEN: usize = 64;

/// Checks that `mesh_id` can serve as a topic root: 1 to [`MAX_MESH_ID_LEN`] bytes, no `/`,
/// no MQTT wildcard and no NUL. Call it when the mesh id is configured: [`topic`] and
/// [`subscriptions`] assume it.
///
/// # Errors
/// [`ProtocolError::BadTopic`] when the mesh id is unusable.
pub fn check_mesh_id(mesh_id: &str) -> Result<(), ProtocolError> {
    let usable = !mesh_id.is_empty()
        && mesh_id.len() <= MAX_MESH_ID_LEN
        && !mesh_id.contains(['/', '+', '#', '\0']);
    if usable {
        Ok(())
    } else {
        Err(ProtocolError::BadTopic)
    }
}

/// Splits a topic into the addressed node and the topic kind.
///
/// # Errors
/// [`ProtocolError::BadTopic`] for another mesh, a wrong number of levels or an unknown kind;
/// [`ProtocolError::BadAddress`] when the address level is not a MAC (either form), `*` or
/// `root`.
pub fn parse_topic(mesh_id: &str, topic: &str) -> Result<(Address, TopicKind), ProtocolError> {
    check_mesh_id(mesh_id)?;
    let rest = topic
        .strip_prefix('/')
        .and_then(|t| t.strip_prefix(mesh_id))
        .and_then(|t| t.strip_prefix('/'))
        .ok_or(ProtocolError::BadTopic)?;
    let (addr, kind) = rest.split_once('/').ok_or(ProtocolError::BadTopic)?;
    let kind = TopicKind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or(ProtocolError::BadTopic)?;
    let addr = addr
        .parse()
        .map_err(|AddrError| ProtocolError::BadAddress)?;
    Ok((addr, kind))
}

/// The topic for `kind` messages of `addr`: `/DEMESH/d8a01d55a710/heartbeat`.
///
/// Never panics; a mesh id that fails [`check_mesh_id`] yields a truncated topic that
/// [`parse_topic`] and the encoders reject.
#[must_use]
pub fn topic(mesh_id: &str, addr: &Address, kind: TopicKind) -> heapless::String<96> {
    let mut topic = heapless::String::new();
    // An overflow can only come from an unchecked mesh id; see the doc comment.
    let _ = write!(topic, "/{mesh_id}/{}/{kind}", addr.topic_form());
    topic
}

/// What the host subscribes to: every node's heartbeat, acknowledge and avrlog topics.
#[must_use]
pub fn subscriptions(mesh_id: &str) -> [heapless::String<96>; 3] {
    [
        TopicKind::Heartbeat,
        TopicKind::Acknowledge,
        TopicKind::AvrLog,
    ]
    .map(|kind| {
        let mut filter = heapless::String::new();
        let _ = write!(filter, "/{mesh_id}/+/{kind}");
        filter
    })
}

/// [`topic`], refusing mesh ids it would truncate.
pub(crate) fn checked_topic(
    mesh_id: &str,
    addr: &Address,
    kind: TopicKind,
) -> Result<heapless::String<96>, ProtocolError> {
    check_mesh_id(mesh_id)?;
    Ok(topic(mesh_id, addr, kind))
}

#[cfg(all(test, feature = "std"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mesh::MacAddr;

    const MAC: MacAddr = MacAddr([0xd8, 0xa0, 0x1d, 0x55, 0xa7, 0x10]);

    #[test]
    fn topics_round_trip() {
        for addr in [Address::Node(MAC), Address::Broadcast, Address::Root] {
            for kind in TopicKind::ALL {
                let t = topic("DEMESH", &addr, kind);
                assert_eq!(parse_topic("DEMESH", &t), Ok((addr, kind)), "{t}");
            }
        }
        assert_eq!(
            topic("DEMESH", &Address::Node(MAC), TopicKind::Heartbeat).as_str(),
            "/DEMESH/d8a01d55a710/heartbeat"
        );
    }

    #[test]
    fn colon_form_in_topic_is_accepted() {
        assert_eq!(
            parse_topic("DEMESH", "/DEMESH/d8:a0:1d:55:a7:10/acknowledge"),
            Ok((Address::Node(MAC), TopicKind::Acknowledge))
        );
    }

    #[test]
    fn bad_topics_are_rejected() {
        for t in [
            "",
            "/",
            "DEMESH/d8a01d55a710/heartbeat",
            "/OTHER/d8a01d55a710/heartbeat",
            "/DEMESHX/d8a01d55a710/heartbeat",
            "/DEMESH/d8a01d55a710",
            "/DEMESH/d8a01d55a710/heartbeat/extra",
            "/DEMESH/d8a01d55a710/Heartbeat",
            "/DEMESH//heartbeat",
        ] {
            assert!(parse_topic("DEMESH", t).is_err(), "{t:?}");
        }
        assert_eq!(
            parse_topic("DEMESH", "/DEMESH/+/heartbeat"),
            Err(ProtocolError::BadAddress)
        );
        assert_eq!(
            parse_topic("DE/MESH", "/DE/MESH/*/control"),
            Err(ProtocolError::BadTopic)
        );
    }

    #[test]
    fn subscriptions_cover_the_uplink_kinds() {
        let subs = subscriptions("DEMESH");
        assert_eq!(
            subs.each_ref().map(heapless::String::as_str),
            [
                "/DEMESH/+/heartbeat",
                "/DEMESH/+/acknowledge",
                "/DEMESH/+/avrlog"
            ]
        );
    }

    #[test]
    fn longest_mesh_id_fits() {
        let id = "M".repeat(MAX_MESH_ID_LEN);
        assert_eq!(check_mesh_id(&id), Ok(()));
        let t = topic(&id, &Address::Node(MAC), TopicKind::Acknowledge);
        assert_eq!(
            parse_topic(&id, &t),
            Ok((Address::Node(MAC), TopicKind::Acknowledge))
        );
        assert!(check_mesh_id(&format!("{id}M")).is_err());
    }
}
