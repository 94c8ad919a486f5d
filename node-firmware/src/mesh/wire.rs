//! Helpers shared by the message and command codecs: bounded JSON parsing, field extraction
//! with range checks, and serialization into a caller's buffer.
//!
//! Wire structs hold every number as `i64` and every string as a still-escaped
//! [`EscapedStr`], so that an out-of-range value is reported as
//! [`ProtocolError::OutOfRange`] naming the field rather than as a bare JSON error, and so
//! that strings with escapes decode without an unescape buffer.

use serde_json_core::str::{EscapedStr, EscapedStringFragment};

use super::{JsonError, ProtocolError, MAX_MESSAGE_LEN};

/// Deepest nesting any mesh message needs is 1 (a flat object); unknown keys may carry a
/// little structure, but serde-json-core recurses per level, so depth is bounded up front.
const MAX_NESTING: usize = 8;

/// Rejects what must not reach the recursive parser: oversized and too deeply nested input.
fn check_bounds(body: &[u8]) -> Result<(), ProtocolError> {
    if body.len() > MAX_MESSAGE_LEN {
        return Err(ProtocolError::TooLong);
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (_, b'"') => in_string = !in_string,
            (false, b'{' | b'[') => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ProtocolError::Json(JsonError::TooDeep));
                }
            }
            (false, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses one JSON object into a wire struct after the bounds check.
pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ProtocolError> {
    check_bounds(body)?;
    let (value, _) = serde_json_core::from_slice(body)?;
    Ok(value)
}

/// Like [`parse`], but keeps serde-json-core's own error so a caller can retry with another
/// wire shape (see `avrval` in the message codec).
pub(crate) fn parse_raw<'a, T: serde::Deserialize<'a>>(
    body: &'a [u8],
) -> Result<Result<T, serde_json_core::de::Error>, ProtocolError> {
    check_bounds(body)?;
    Ok(serde_json_core::from_slice(body).map(|(value, _)| value))
}

/// Serializes `value` into `buf`, refusing bodies longer than [`MAX_MESSAGE_LEN`] so that
/// every encoded message is one the decoders accept.
pub(crate) fn write<T: serde::Serialize>(
    value: &T,
    buf: &mut [u8],
) -> Result<usize, ProtocolError> {
    let len = serde_json_core::to_slice(value, buf).map_err(|_| {
        if buf.len() > MAX_MESSAGE_LEN {
            ProtocolError::TooLong
        } else {
            ProtocolError::BufferTooSmall
        }
    })?;
    if len > MAX_MESSAGE_LEN {
        return Err(ProtocolError::TooLong);
    }
    Ok(len)
}

/// Serializes any `Display` value as a JSON string (addresses, base64), without a buffer.
pub(crate) struct DisplayStr<T>(pub T);

impl<T: core::fmt::Display> serde::Serialize for DisplayStr<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

pub(crate) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, ProtocolError> {
    value.ok_or(ProtocolError::MissingField { field })
}

/// A JSON integer as the narrower type the field holds.
pub(crate) fn int<T: TryFrom<i64>>(value: i64, field: &'static str) -> Result<T, ProtocolError> {
    T::try_from(value).map_err(|_| ProtocolError::OutOfRange { field })
}

pub(crate) fn required_int<T: TryFrom<i64>>(
    value: Option<i64>,
    field: &'static str,
) -> Result<T, ProtocolError> {
    int(required(value, field)?, field)
}

/// Unescapes a JSON string into a bounded string; too long is out of range.
pub(crate) fn text<const N: usize>(
    value: EscapedStr<'_>,
    field: &'static str,
) -> Result<heapless::String<N>, ProtocolError> {
    let mut out = heapless::String::new();
    let mut utf8 = [0u8; 4];
    for fragment in value.fragments() {
        let piece = match fragment.map_err(|_| ProtocolError::Json(JsonError::BadString))? {
            EscapedStringFragment::NotEscaped(s) => s,
            EscapedStringFragment::Escaped(c) => c.encode_utf8(&mut utf8),
        };
        out.push_str(piece)
            .map_err(|()| ProtocolError::OutOfRange { field })?;
    }
    Ok(out)
}

/// A protocol keyword (`cmd`, `mtype`, `state`, ...): anything that is not short plain text
/// cannot be one of them.
pub(crate) fn keyword(value: EscapedStr<'_>) -> heapless::String<16> {
    text(value, "").unwrap_or_default()
}

/// A MAC address or destination, in either form.
pub(crate) fn address<T: core::str::FromStr>(value: EscapedStr<'_>) -> Result<T, ProtocolError> {
    text::<17>(value, "")
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ProtocolError::BadAddress)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_bounded_outside_strings_only() {
        let deep = [b'['; 9];
        assert_eq!(
            check_bounds(&deep),
            Err(ProtocolError::Json(JsonError::TooDeep))
        );
        assert_eq!(check_bounds(br#"{"a":"[[[[[[[[[[[[\"[[[["}"#), Ok(()));
        assert_eq!(
            check_bounds(&[b' '; MAX_MESSAGE_LEN + 1]),
            Err(ProtocolError::TooLong)
        );
    }

    #[test]
    fn text_unescapes_and_bounds() {
        let s: heapless::String<8> = text(EscapedStr(r#"a\"b\u0041"#), "f").unwrap();
        assert_eq!(s.as_str(), "a\"bA");
        assert_eq!(
            text::<2>(EscapedStr("abc"), "f"),
            Err(ProtocolError::OutOfRange { field: "f" })
        );
        assert_eq!(
            text::<8>(EscapedStr(r"\q"), "f"),
            Err(ProtocolError::Json(JsonError::BadString))
        );
    }
}
