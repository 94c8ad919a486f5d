//! Why a mesh message or command was rejected. Plain `Copy` enums (no allocator) whose
//! `Display` names the field or problem, so a log line says what was wrong with the bytes.

use core::fmt;

/// Everything that can go wrong decoding or encoding mesh wire data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolError {
    /// The payload (or the encoded body) exceeds [`super::MAX_MESSAGE_LEN`].
    TooLong,
    /// The bytes are not the JSON object shape the protocol uses.
    Json(JsonError),
    /// A key the message or command needs is absent.
    MissingField { field: &'static str },
    /// `cmd` names no known command.
    UnknownCommand,
    /// `mtype` names no known node message.
    UnknownMessageType,
    /// The MQTT topic is not `/<mesh>/<addr>/<kind>`, names another mesh, or its kind does
    /// not fit the body (a heartbeat body on the acknowledge topic, a command as uplink, ...).
    BadTopic,
    /// A MAC address or destination could not be parsed, is not allowed here (broadcast as a
    /// sender), or disagrees with the address in the topic.
    BadAddress,
    /// A number (or a string's length) lies outside what the field can hold.
    OutOfRange { field: &'static str },
    /// A string field holds a word the protocol does not define for it (e.g. `"state":"foo"`).
    InvalidValue { field: &'static str },
    /// `avrdata` is not standard base64.
    BadBase64,
    /// The caller's output buffer cannot hold the encoded message.
    BufferTooSmall,
}

/// The JSON-level problem behind [`ProtocolError::Json`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JsonError {
    /// The input ended in the middle of a value.
    UnexpectedEnd,
    /// A character that cannot appear at this place.
    Syntax,
    /// A value of the wrong JSON type (a string where a number belongs, ...).
    WrongType,
    /// A malformed number, or one beyond 64 bits.
    BadNumber,
    /// A bad escape sequence or invalid UTF-8 in a string.
    BadString,
    /// Something other than whitespace after the object.
    TrailingCharacters,
    /// Arrays or objects nested deeper than any mesh message needs (bounds the parser's stack).
    TooDeep,
    /// A key appears twice, or another structural mismatch.
    Malformed,
}

impl From<serde_json_core::de::Error> for JsonError {
    fn from(error: serde_json_core::de::Error) -> Self {
        use serde_json_core::de::Error as E;
        match error {
            E::EofWhileParsingList
            | E::EofWhileParsingObject
            | E::EofWhileParsingString
            | E::EofWhileParsingNumber
            | E::EofWhileParsingValue => Self::UnexpectedEnd,
            E::ExpectedColon
            | E::ExpectedListCommaOrEnd
            | E::ExpectedObjectCommaOrEnd
            | E::ExpectedSomeIdent
            | E::ExpectedSomeValue
            | E::KeyMustBeAString
            | E::TrailingComma => Self::Syntax,
            E::InvalidType => Self::WrongType,
            E::InvalidNumber => Self::BadNumber,
            E::InvalidUnicodeCodePoint | E::InvalidEscapeSequence | E::EscapedStringIsTooLong => {
                Self::BadString
            }
            E::TrailingCharacters => Self::TrailingCharacters,
            _ => Self::Malformed,
        }
    }
}

impl From<serde_json_core::de::Error> for ProtocolError {
    fn from(error: serde_json_core::de::Error) -> Self {
        Self::Json(error.into())
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnexpectedEnd => "unexpected end of input",
            Self::Syntax => "syntax error",
            Self::WrongType => "value of the wrong type",
            Self::BadNumber => "malformed or too large number",
            Self::BadString => "bad string escape or UTF-8",
            Self::TrailingCharacters => "trailing characters after the object",
            Self::TooDeep => "nested too deeply",
            Self::Malformed => "malformed object (duplicate key?)",
        })
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => write!(f, "message longer than {} bytes", super::MAX_MESSAGE_LEN),
            Self::Json(e) => write!(f, "invalid JSON: {e}"),
            Self::MissingField { field } => write!(f, "missing field `{field}`"),
            Self::UnknownCommand => f.write_str("unknown `cmd`"),
            Self::UnknownMessageType => f.write_str("unknown `mtype`"),
            Self::BadTopic => f.write_str("topic is not /<mesh>/<addr>/<kind> of this mesh"),
            Self::BadAddress => f.write_str("bad or mismatching node address"),
            Self::OutOfRange { field } => write!(f, "field `{field}` out of range"),
            Self::InvalidValue { field } => write!(f, "field `{field}` has an undefined value"),
            Self::BadBase64 => f.write_str("`avrdata` is not base64"),
            Self::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolError {}

#[cfg(feature = "std")]
impl std::error::Error for JsonError {}
