//! The serial line protocol between the mesh node and the charge controller (reference:
//! mesh-protocol.md section 6), both directions, without allocation.
//!
//! Requests (node -> controller): `par?` reads, `par=val` writes, `par!` writes 1, `par~`
//! writes 0, `?` dumps. Replies (controller -> node): ` par=val` (leading space), `parse error`,
//! and for a dump ` par=val` lines between `[[[` and `]]]`. Lines starting with `%` are debug
//! chatter and are ignored by both sides. Lines end in `\r\n` on output; `\n` alone or `\r\n`
//! is accepted on input.

use core::fmt;

use crate::params::{ParError, Param, ParameterStore};

/// The longest line either side accepts, without its terminator.
pub const MAX_LINE_LEN: usize = 64;
/// What every line written by this module ends with.
pub const LINE_END: &str = "\r\n";

/// A request line, as the node sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `par?`
    Read(Param),
    /// `par=val`; `par!` and `par~` parse as writes of 1 and 0.
    Write(Param, i16),
    /// `?`
    Dump,
}

/// A reply line, as the controller sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// ` par=val`
    Value(Param, i16),
    /// `parse error`: the request was malformed, unknown or refused.
    ParseError,
    /// `[[[`: a dump starts.
    DumpBegin,
    /// `]]]`: a dump ends.
    DumpEnd,
}

/// Why a line could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineError {
    /// Longer than [`MAX_LINE_LEN`] bytes.
    TooLong { len: usize },
    /// Not UTF-8, or not of any request/reply form.
    Syntax,
    /// A well-formed line naming no known parameter.
    UnknownParam,
    /// A value that is not a signed 16-bit decimal.
    BadValue,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => {
                write!(f, "line of {len} bytes exceeds {MAX_LINE_LEN}")
            }
            Self::Syntax => f.write_str("malformed line"),
            Self::UnknownParam => f.write_str("unknown parameter"),
            Self::BadValue => f.write_str("value is not a 16-bit integer"),
        }
    }
}

/// The text of a line without terminator and surrounding blanks; `None` for chatter and blank
/// lines.
fn content(line: &[u8]) -> Result<Option<&str>, LineError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.first() == Some(&b'%') {
        return Ok(None);
    }
    if line.len() > MAX_LINE_LEN {
        return Err(LineError::TooLong { len: line.len() });
    }
    let text = core::str::from_utf8(line)
        .map_err(|_| LineError::Syntax)?
        .trim();
    Ok((!text.is_empty()).then_some(text))
}

fn param(name: &str) -> Result<Param, LineError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(LineError::Syntax);
    }
    Param::from_name(name).map_err(|_| LineError::UnknownParam)
}

fn assignment(text: &str) -> Option<Result<(Param, i16), LineError>> {
    let (name, value) = text.split_once('=')?;
    Some(param(name).and_then(|param| {
        value
            .parse::<i16>()
            .map(|value| (param, value))
            .map_err(|_| LineError::BadValue)
    }))
}

/// Parses a request line (controller side). `Ok(None)` for chatter and blank lines.
///
/// # Errors
/// [`LineError`] for anything else that is not a request.
pub fn parse_request(line: &[u8]) -> Result<Option<Request>, LineError> {
    let Some(text) = content(line)? else {
        return Ok(None);
    };
    if text == "?" {
        return Ok(Some(Request::Dump));
    }
    if let Some(result) = assignment(text) {
        return result.map(|(param, value)| Some(Request::Write(param, value)));
    }
    let request = if let Some(name) = text.strip_suffix('?') {
        Request::Read(param(name)?)
    } else if let Some(name) = text.strip_suffix('!') {
        Request::Write(param(name)?, 1)
    } else if let Some(name) = text.strip_suffix('~') {
        Request::Write(param(name)?, 0)
    } else {
        return Err(LineError::Syntax);
    };
    Ok(Some(request))
}

/// Parses a reply line (node side). `Ok(None)` for chatter and blank lines.
///
/// # Errors
/// [`LineError`] for anything else that is not a reply.
pub fn parse_reply(line: &[u8]) -> Result<Option<Reply>, LineError> {
    let Some(text) = content(line)? else {
        return Ok(None);
    };
    let reply = match text {
        "parse error" => Reply::ParseError,
        "[[[" => Reply::DumpBegin,
        "]]]" => Reply::DumpEnd,
        _ => match assignment(text) {
            Some(result) => result.map(|(param, value)| Reply::Value(param, value))?,
            None => return Err(LineError::Syntax),
        },
    };
    Ok(Some(reply))
}

impl fmt::Display for Request {
    /// The request line without terminator; writes of 1 and 0 use the `=` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(param) => write!(f, "{param}?"),
            Self::Write(param, value) => write!(f, "{param}={value}"),
            Self::Dump => f.write_str("?"),
        }
    }
}

impl fmt::Display for Reply {
    /// The reply line without terminator.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(param, value) => write!(f, " {param}={value}"),
            Self::ParseError => f.write_str("parse error"),
            Self::DumpBegin => f.write_str("[[["),
            Self::DumpEnd => f.write_str("]]]"),
        }
    }
}

fn write_line<W: fmt::Write + ?Sized>(out: &mut W, reply: Reply) -> fmt::Result {
    write!(out, "{reply}{LINE_END}")
}

/// The reply to a read or write that `store` answered.
fn reply_to(result: Result<(Param, i16), ParError>) -> Reply {
    result.map_or(Reply::ParseError, |(param, value)| {
        Reply::Value(param, value)
    })
}

/// The controller side of the protocol: parses one request line, applies it to `store` at
/// `now_ms` and writes the reply line(s), each ending in [`LINE_END`]. Chatter and blank lines
/// get no reply. A write is answered with the parameter read back if readable (so the node sees
/// what took effect), else with the written value; refused reads and writes get
/// `parse error`, as the original firmware does.
///
/// # Errors
/// Only errors of `out`.
pub fn serve<S, W>(store: &mut S, now_ms: u64, line: &[u8], out: &mut W) -> fmt::Result
where
    S: ParameterStore + ?Sized,
    W: fmt::Write + ?Sized,
{
    let request = match parse_request(line) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(_) => return write_line(out, Reply::ParseError),
    };
    match request {
        Request::Read(param) => {
            write_line(out, reply_to(store.get(param).map(|value| (param, value))))
        }
        Request::Write(param, value) => {
            let result = store.set(now_ms, param, value).map(|()| {
                let effective = if param.access().readable() {
                    store.get(param).unwrap_or(value)
                } else {
                    value
                };
                (param, effective)
            });
            write_line(out, reply_to(result))
        }
        Request::Dump => {
            write_line(out, Reply::DumpBegin)?;
            for param in Param::ALL {
                if let Ok(value) = store.get(param) {
                    write_line(out, Reply::Value(param, value))?;
                }
            }
            write_line(out, Reply::DumpEnd)
        }
    }
}

/// Collects bytes from a serial stream into lines of at most [`MAX_LINE_LEN`] bytes.
#[derive(Clone, Debug)]
pub struct LineAssembler {
    buf: [u8; MAX_LINE_LEN],
    len: usize,
    /// Bytes seen in the current line, including those that did not fit.
    seen: usize,
}

impl Default for LineAssembler {
    fn default() -> Self {
        Self {
            buf: [0; MAX_LINE_LEN],
            len: 0,
            seen: 0,
        }
    }
}

impl LineAssembler {
    /// Feeds one byte. At `\n` returns the finished line (without `\r\n`) or
    /// [`LineError::TooLong`]; an overlong `%` chatter line is returned truncated, since it is
    /// ignored anyway.
    pub fn push(&mut self, byte: u8) -> Option<Result<&[u8], LineError>> {
        match byte {
            b'\n' => {
                let (len, seen) = (self.len, self.seen);
                self.len = 0;
                self.seen = 0;
                let line = self.buf.get(..len).unwrap_or_default();
                let chatter = line.first() == Some(&b'%');
                Some(if seen > MAX_LINE_LEN && !chatter {
                    Err(LineError::TooLong { len: seen })
                } else {
                    Ok(line)
                })
            }
            b'\r' => None,
            _ => {
                if let Some(slot) = self.buf.get_mut(self.len) {
                    *slot = byte;
                    self.len += 1;
                }
                self.seen = self.seen.saturating_add(1);
                None
            }
        }
    }
}
