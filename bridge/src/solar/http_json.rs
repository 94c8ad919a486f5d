//! Any HTTP JSON API: `GET <url>`, the value at `pointer` (RFC 6901), times `scale`, sign
//! flipped by `invert`. For meters and energy managers without an adapter of their own.

use super::error::SourceError;
use super::json;
use super::value::{self, Value};

/// Parses an answer into the value at `pointer`.
///
/// # Errors
/// Not JSON (an HTML page is told apart), nothing at `pointer`, or not a number or on/off.
pub fn parse(body: &[u8], pointer: &str) -> Result<Value, SourceError> {
    value::from_json(&json::parse(body)?, pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_strings_booleans_and_misses() {
        let body = br#"{"meter":{"p":-1234.5,"s":"42","relay":true}}"#;
        assert_eq!(parse(body, "/meter/p"), Ok(Value::Number(-1234.5)));
        assert_eq!(parse(body, "/meter/s"), Ok(Value::Number(42.0)));
        assert_eq!(parse(body, "/meter/relay"), Ok(Value::On(true)));
        assert_eq!(
            parse(body, "/meter/q").map_err(|e| e.kind()),
            Err("missing")
        );
        assert_eq!(parse(b"<html>502</html>", "/p"), Err(SourceError::Html));
    }
}
