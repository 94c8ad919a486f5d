//! Our side of the RPC: at most one CALL outstanding, unique ids, a response deadline.

use serde_json::Value;

use super::frame::encode_call;

/// A CALL we want to send; `tag` lets the session know, on the answer, what it was for.
#[derive(Clone, Debug, PartialEq)]
pub struct OutgoingCall<T> {
    pub action: &'static str,
    pub payload: Value,
    pub tag: T,
}

/// The one CALL in flight, and the next id.
#[derive(Debug)]
pub struct Outstanding<T> {
    id_prefix: String,
    next_id: u64,
    open: Option<Open<T>>,
}

#[derive(Debug)]
struct Open<T> {
    id: String,
    deadline_mono_ms: u64,
    call: OutgoingCall<T>,
}

impl<T> Outstanding<T> {
    /// `id_prefix` keeps ids unique across restarts of the caller (e.g. a boot counter);
    /// it is cut so an id stays within 36 characters.
    #[must_use]
    pub fn new(id_prefix: &str) -> Self {
        Self {
            id_prefix: id_prefix.chars().take(16).collect(),
            next_id: 1,
            open: None,
        }
    }

    /// Whether a CALL may be sent now.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.open.is_none()
    }

    /// The action of the CALL in flight.
    #[must_use]
    pub fn open_tag(&self) -> Option<&T> {
        self.open.as_ref().map(|open| &open.call.tag)
    }

    /// Sends `call` (the caller checked [`Self::is_idle`]); returns the frame text.
    pub fn start(&mut self, now_mono_ms: u64, timeout_ms: u64, call: OutgoingCall<T>) -> String {
        let id = format!("{}{}", self.id_prefix, self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let text = encode_call(&id, call.action, &call.payload);
        self.open = Some(Open {
            id,
            deadline_mono_ms: now_mono_ms.saturating_add(timeout_ms),
            call,
        });
        text
    }

    /// The answer with `id` arrived: the CALL it closes, or `None` for an unknown id.
    pub fn finish(&mut self, id: &str) -> Option<OutgoingCall<T>> {
        if self.open.as_ref().is_some_and(|open| open.id == id) {
            self.open.take().map(|open| open.call)
        } else {
            None
        }
    }

    /// When the CALL in flight times out.
    #[must_use]
    pub fn deadline(&self) -> Option<u64> {
        self.open.as_ref().map(|open| open.deadline_mono_ms)
    }

    /// The CALL in flight if its deadline has passed (it is closed).
    pub fn expire(&mut self, now_mono_ms: u64) -> Option<OutgoingCall<T>> {
        if self
            .open
            .as_ref()
            .is_some_and(|open| now_mono_ms >= open.deadline_mono_ms)
        {
            self.open.take().map(|open| open.call)
        } else {
            None
        }
    }

    /// The connection dropped: the CALL in flight will get no answer.
    pub fn abandon(&mut self) -> Option<OutgoingCall<T>> {
        self.open.take().map(|open| open.call)
    }
}
