//! Node addresses. A node is named by its ESP32 station MAC, written with colons in JSON
//! (`d8:a0:1d:55:a7:10`) and as bare lower-case hex in MQTT topics (`d8a01d55a710`); input in
//! either form and either case is accepted. Commands may also go to `*` (every node) or `root`.

use core::fmt;
use core::str::FromStr;

/// An ESP32 station MAC: the identity of one bay's mesh node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

/// Text that is neither a MAC address (either form) nor, where allowed, `*` or `root`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrError;

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a node address (d8:a0:1d:55:a7:10, d8a01d55a710, `*` or `root`)")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AddrError {}

/// The colon-less form used in MQTT topics, see [`MacAddr::topic_form`].
#[derive(Clone, Copy, Debug)]
struct TopicForm(MacAddr);

impl fmt::Display for TopicForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0 .0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl MacAddr {
    /// The MQTT topic form: `d8a01d55a710`.
    #[must_use]
    pub fn topic_form(&self) -> impl fmt::Display {
        TopicForm(*self)
    }
}

impl fmt::Display for MacAddr {
    /// The JSON form: `d8:a0:1d:55:a7:10`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

fn hex_digit(c: u8) -> Result<u8, AddrError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(AddrError),
    }
}

impl FromStr for MacAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, AddrError> {
        // Colon form is 17 bytes with a colon after every pair; topic form is 12 hex digits.
        let stride = match s.len() {
            17 => 3,
            12 => 2,
            _ => return Err(AddrError),
        };
        let bytes = s.as_bytes();
        let mut mac = [0u8; 6];
        for (i, out) in mac.iter_mut().enumerate() {
            let at = i * stride;
            let pair = bytes.get(at..at + 2).ok_or(AddrError)?;
            if let [hi, lo] = pair {
                *out = hex_digit(*hi)? << 4 | hex_digit(*lo)?;
            }
            if stride == 3 && i < 5 && bytes.get(at + 2) != Some(&b':') {
                return Err(AddrError);
            }
        }
        Ok(Self(mac))
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Parses a string with `FromStr` inside a serde visitor.
struct ParseVisitor<T>(core::marker::PhantomData<T>);

impl<T: FromStr> serde::de::Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node address")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        v.parse()
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParseVisitor(core::marker::PhantomData))
    }
}

/// Where a command goes: one node, every node, or whichever node is currently root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Address {
    Node(MacAddr),
    /// `*`
    Broadcast,
    /// `root`
    Root,
}

/// [`Address`] in topic form, see [`Address::topic_form`].
#[derive(Clone, Copy, Debug)]
struct AddressTopicForm(Address);

impl fmt::Display for AddressTopicForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Address::Node(mac) => TopicForm(mac).fmt(f),
            special => special.fmt(f),
        }
    }
}

impl Address {
    /// The MQTT topic form: `d8a01d55a710`, `*` or `root`.
    #[must_use]
    pub fn topic_form(&self) -> impl fmt::Display {
        AddressTopicForm(*self)
    }
}

impl fmt::Display for Address {
    /// The JSON (`dst`) form: `d8:a0:1d:55:a7:10`, `*` or `root`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(mac) => mac.fmt(f),
            Self::Broadcast => f.write_str("*"),
            Self::Root => f.write_str("root"),
        }
    }
}

impl From<MacAddr> for Address {
    fn from(mac: MacAddr) -> Self {
        Self::Node(mac)
    }
}

impl FromStr for Address {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, AddrError> {
        match s {
            "*" => Ok(Self::Broadcast),
            "root" => Ok(Self::Root),
            mac => mac.parse().map(Self::Node),
        }
    }
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParseVisitor(core::marker::PhantomData))
    }
}

#[cfg(all(test, feature = "std"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([0xd8, 0xa0, 0x1d, 0x55, 0xa7, 0x10]);

    #[test]
    fn both_forms_and_cases_parse() {
        for text in [
            "d8:a0:1d:55:a7:10",
            "D8:A0:1D:55:A7:10",
            "d8a01d55a710",
            "D8A01D55A710",
        ] {
            assert_eq!(text.parse::<MacAddr>(), Ok(MAC), "{text}");
        }
    }

    #[test]
    fn malformed_macs_are_rejected() {
        for text in [
            "",
            "d8:a0:1d:55:a7",
            "d8a01d55a71",
            "d8-a0-1d-55-a7-10",
            "g8a01d55a710",
            "d8:a0:1d:55:a7:1g",
            "d8:a01:d55:a7:10",
            "+8a01d55a710",
            "d8:a0:1d:55:a7:10:",
            "éa01d55a71",
        ] {
            assert_eq!(text.parse::<MacAddr>(), Err(AddrError), "{text:?}");
        }
    }

    #[test]
    fn display_forms() {
        assert_eq!(MAC.to_string(), "d8:a0:1d:55:a7:10");
        assert_eq!(MAC.topic_form().to_string(), "d8a01d55a710");
        assert_eq!(Address::Node(MAC).topic_form().to_string(), "d8a01d55a710");
        assert_eq!(Address::Broadcast.topic_form().to_string(), "*");
        assert_eq!(Address::Root.to_string(), "root");
        assert_eq!("*".parse::<Address>(), Ok(Address::Broadcast));
        assert_eq!("root".parse::<Address>(), Ok(Address::Root));
    }

    #[test]
    fn serde_uses_colon_form_and_accepts_both() {
        let json = serde_json::to_string(&MAC).unwrap();
        assert_eq!(json, "\"d8:a0:1d:55:a7:10\"");
        let back: MacAddr = serde_json::from_str("\"d8a01d55a710\"").unwrap();
        assert_eq!(back, MAC);
        let dst: Address = serde_json::from_str("\"root\"").unwrap();
        assert_eq!(dst, Address::Root);
    }
}
