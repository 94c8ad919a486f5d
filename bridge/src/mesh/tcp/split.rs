//! Sans-IO framing of the root's TCP uplink: a byte stream of JSON objects written back to
//! back with no delimiter (the root strips its `\r\n` before `write()`, mesh-protocol.md
//! section 3), cut into one object each.
//!
//! The scanner only tracks what it needs to find an object's end: nesting depth, whether it is
//! inside a string, and a pending backslash escape. Whitespace, `\r\n` and NUL between objects
//! are skipped (other hosts and older firmware add them). Memory stays at one object's cap
//! whatever arrives: an object that outgrows it is followed to its end without being kept.
//!
//! Resynchronisation: a byte sequence that cannot occur inside one JSON value ends the broken
//! object and counts it as garbage: a `{` that does not follow `:`, `,` or `[` (so an object
//! left unclosed is cut at the next root message, which starts with `{` right after a value),
//! or a control character other than whitespace (NUL included) anywhere in it. So a NUL
//! always resynchronises: the object after it is found whatever came before.

/// What the splitter found in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// One complete top-level JSON object, braces included, as received.
    Object(Vec<u8>),
    /// An object grew beyond the cap: reported once, when the cap is crossed, with the bytes
    /// seen so far; the rest of it is skipped without being buffered. A run of garbage beyond
    /// the cap is reported the same way (it would never become an object).
    TooLong { seen: usize },
    /// Bytes that are not an object (between objects, or a broken object); reported when the
    /// run ends, at the next object's `{`.
    Garbage { len: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between objects, nothing pending.
    Between,
    /// Inside a run of garbage of `run` bytes.
    Garbage,
    /// A garbage run already reported as too long; skipped silently.
    GarbageSkipped,
    /// Inside an object that fits so far: its bytes are in `buf`.
    Object,
    /// Inside an object already reported as too long: followed, not kept.
    Oversized,
}

/// Cuts a byte stream into JSON objects of at most `max_len` bytes.
#[derive(Debug)]
pub struct ObjectSplitter {
    max_len: usize,
    buf: Vec<u8>,
    state: State,
    /// Open `{`/`[` of the current object.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The last byte outside a string that was not whitespace (`"` once a string closed).
    last: u8,
    /// Bytes of the current garbage run or oversized object.
    run: usize,
}

impl ObjectSplitter {
    /// Objects up to `max_len` bytes, braces included.
    #[must_use]
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len,
            buf: Vec::with_capacity(max_len.saturating_add(1)),
            state: State::Between,
            depth: 0,
            in_string: false,
            escaped: false,
            last: 0,
            run: 0,
        }
    }

    /// The bytes held right now (at most `max_len + 1`, whatever was pushed).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// Feeds received bytes; what they complete goes to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Frame>) {
        for &byte in data {
            self.step(byte, out);
        }
    }

    fn step(&mut self, byte: u8, out: &mut Vec<Frame>) {
        match self.state {
            State::Between => self.between(byte, out),
            State::Garbage => {
                if byte == b'{' {
                    out.push(Frame::Garbage { len: self.run });
                    self.open(byte, out);
                } else {
                    self.run = self.run.saturating_add(1);
                    if self.run > self.max_len {
                        out.push(Frame::TooLong { seen: self.run });
                        self.state = State::GarbageSkipped;
                    }
                }
            }
            State::GarbageSkipped => {
                if byte == b'{' {
                    self.open(byte, out);
                }
            }
            State::Object | State::Oversized => self.inside(byte, out),
        }
    }

    fn between(&mut self, byte: u8, out: &mut Vec<Frame>) {
        match byte {
            b'{' => self.open(byte, out),
            b' ' | b'\t' | b'\r' | b'\n' | 0 => {}
            _ => {
                self.state = State::Garbage;
                self.run = 1;
                if self.run > self.max_len {
                    out.push(Frame::TooLong { seen: self.run });
                    self.state = State::GarbageSkipped;
                }
            }
        }
    }

    /// Starts an object at its `{`.
    fn open(&mut self, byte: u8, out: &mut Vec<Frame>) {
        self.buf.clear();
        self.state = State::Object;
        self.depth = 1;
        self.in_string = false;
        self.escaped = false;
        self.last = byte;
        self.run = 0;
        self.keep(byte, out);
    }

    fn inside(&mut self, byte: u8, out: &mut Vec<Frame>) {
        if self.in_string {
            if byte < 0x20 {
                // JSON strings hold no raw control characters (not even escaped): this is not
                // one object. Also what makes a NUL resynchronise from anywhere.
                return self.broken(byte, out);
            }
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                self.last = b'"';
            }
            return self.keep(byte, out);
        }
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'"' => self.in_string = true,
            b'{' => {
                if !matches!(self.last, b':' | b',' | b'[') {
                    // No value may follow here: the broken object ends, a new one begins.
                    return self.broken(byte, out);
                }
                self.depth = self.depth.saturating_add(1);
            }
            b'[' => self.depth = self.depth.saturating_add(1),
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            // Outside strings JSON allows no other control characters.
            0..=0x1f => return self.broken(byte, out),
            _ => {}
        }
        if !matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | b'"') {
            self.last = byte;
        }
        self.keep(byte, out);
        if self.depth == 0 {
            if self.state == State::Object {
                out.push(Frame::Object(self.buf.as_slice().to_vec()));
            }
            self.buf.clear();
            self.state = State::Between;
        }
    }

    /// Appends a byte of the current object, or counts it once the object is over the cap.
    fn keep(&mut self, byte: u8, out: &mut Vec<Frame>) {
        match self.state {
            State::Object => {
                self.buf.push(byte);
                if self.buf.len() > self.max_len {
                    self.run = self.buf.len();
                    out.push(Frame::TooLong { seen: self.run });
                    self.buf.clear();
                    self.state = State::Oversized;
                }
            }
            _ => self.run = self.run.saturating_add(1),
        }
    }

    /// The current object cannot be JSON: what was kept is garbage; `byte` starts afresh.
    fn broken(&mut self, byte: u8, out: &mut Vec<Frame>) {
        if self.state == State::Object {
            out.push(Frame::Garbage {
                len: self.buf.len(),
            });
        }
        self.buf.clear();
        self.state = State::Between;
        self.between(byte, out);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut s = ObjectSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out
    }

    fn obj(s: &str) -> Frame {
        Frame::Object(s.as_bytes().to_vec())
    }

    #[test]
    fn bare_objects_back_to_back() {
        assert_eq!(
            split(100, &[br#"{"a":1}{"b":{"c":[1,{"d":2}]}}"#]),
            vec![obj(r#"{"a":1}"#), obj(r#"{"b":{"c":[1,{"d":2}]}}"#)]
        );
    }

    #[test]
    fn objects_across_reads_with_separators() {
        assert_eq!(
            split(100, &[b"{\"a\"", b":1}\r\n\0\0 {", b"\"b\":2", b"}\n"]),
            vec![obj(r#"{"a":1}"#), obj(r#"{"b":2}"#)]
        );
    }

    #[test]
    fn braces_and_escaped_quotes_inside_strings() {
        let tricky = r#"{"line":"}{ \"quoted {\" \\","x":"]"}"#;
        assert_eq!(
            split(100, &[tricky.as_bytes(), br#"{"n":1}"#]),
            vec![obj(tricky), obj(r#"{"n":1}"#)]
        );
    }

    #[test]
    fn exactly_max_is_accepted_one_more_is_too_long() {
        assert_eq!(split(7, &[br#"{"a":1}"#]), vec![obj(r#"{"a":1}"#)]);
        assert_eq!(
            split(6, &[br#"{"a":1}{"b":2}"#]),
            vec![Frame::TooLong { seen: 7 }, Frame::TooLong { seen: 7 }]
        );
    }

    #[test]
    fn oversized_object_is_skipped_to_its_end_and_the_next_parses() {
        let mut big = br#"{"pad":""#.to_vec();
        big.extend(std::iter::repeat_n(b'{', 10_000));
        big.extend_from_slice(br#"","more":{"x":[1,2]}}"#);
        let mut s = ObjectSplitter::new(1024);
        let mut out = Vec::new();
        for chunk in big.chunks(100) {
            s.push(chunk, &mut out);
        }
        s.push(br#"{"ok":true}"#, &mut out);
        assert_eq!(
            out,
            vec![Frame::TooLong { seen: 1025 }, obj(r#"{"ok":true}"#)]
        );
        assert!(s.buffered() <= 1025);
    }

    #[test]
    fn garbage_between_objects_is_counted() {
        assert_eq!(
            split(100, &[b"xyz\r\n{\"a\":1}", b"}}{\"b\":2}"]),
            vec![
                Frame::Garbage { len: 5 },
                obj(r#"{"a":1}"#),
                Frame::Garbage { len: 2 },
                obj(r#"{"b":2}"#)
            ]
        );
        // A long run is reported as soon as it crosses the cap, once.
        let junk = vec![b'x'; 5000];
        assert_eq!(
            split(100, &[&junk, &junk, b"{\"a\":1}"]),
            vec![Frame::TooLong { seen: 101 }, obj(r#"{"a":1}"#)]
        );
    }

    #[test]
    fn an_unclosed_object_is_cut_at_the_next_message() {
        assert_eq!(
            split(100, &[br#"{"src":"a","cur1":15{"src":"b"}"#]),
            vec![Frame::Garbage { len: 20 }, obj(r#"{"src":"b"}"#)]
        );
        // An unterminated string ends at a line end or NUL (not allowed in a JSON string).
        assert_eq!(
            split(100, &[b"{\"src\":\"a\r\n{\"src\":\"b\"}"]),
            vec![Frame::Garbage { len: 9 }, obj(r#"{"src":"b"}"#)]
        );
        // Nested objects where JSON allows them are not cut.
        assert_eq!(
            split(100, &[br#"{"a":{"b":1},"c":[{"d":2}]}"#]),
            vec![obj(r#"{"a":{"b":1},"c":[{"d":2}]}"#)]
        );
    }

    #[test]
    fn a_nul_inside_an_object_breaks_it() {
        assert_eq!(
            split(100, &[b"{\"a\":1\0{\"b\":2}"]),
            vec![Frame::Garbage { len: 6 }, obj(r#"{"b":2}"#)]
        );
    }
}
