//! Durable transaction messages (OCPP 1.6 §3.7, §4.10): StartTransaction, StopTransaction
//! and transaction MeterValues.
//!
//! Each message is handed to the caller to persist ([`StoredMessage`], an upsert by `seq`)
//! before it is sent, and removed only on the backend's CALLRESULT or after
//! `TransactionMessageAttempts` CALLERRORs, waiting `TransactionMessageRetryInterval × n`
//! before retry n. They go strictly in order, one at a time. A StopTransaction or MeterValues
//! whose StartTransaction is still queued holds the transaction's *local* id; when the
//! StartTransaction's CALLRESULT brings the backend's id, the queued messages are rewritten
//! (and handed out again for persisting). Nothing here is OCPP 1.6 specific except the field
//! name patched in.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The caller's transaction id, unique per charge point across restarts.
pub type LocalTxId = u64;

/// The transaction id OCPP uses when the StartTransaction never got through (errata 3.54).
pub const UNKNOWN_TRANSACTION_ID: i32 = -1;

/// One queued message as the caller stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Position in the queue: increasing, the caller's row key.
    pub seq: u64,
    /// `StartTransaction`, `StopTransaction` or `MeterValues`.
    pub action: String,
    pub local_tx: LocalTxId,
    /// The backend's transaction id once known (patched into `payload` before sending).
    pub transaction_id: Option<i32>,
    /// Failed attempts so far.
    pub attempts: u32,
    pub payload: Value,
}

/// What the queue asks the caller to do with its store.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreOp {
    Persist(StoredMessage),
    Remove { seq: u64 },
}

/// What became of a message after its CALL was answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Failed, will be retried at the given monotonic time.
    Retry { at_mono_ms: u64 },
    /// Failed for the last allowed time: dropped (count and log it).
    Discarded(StoredMessage),
}

/// The queue, bounded by `capacity` for MeterValues (Start and Stop always get in: there
/// are at most two per session and losing one breaks billing).
#[derive(Debug)]
pub struct TxQueue {
    messages: VecDeque<StoredMessage>,
    next_seq: u64,
    capacity: usize,
    /// The head may not be sent before this monotonic time (retry back-off).
    not_before_mono_ms: u64,
    /// Local -> backend ids learned this run, for messages queued later.
    known_ids: Vec<(LocalTxId, i32)>,
    store_ops: VecDeque<StoreOp>,
}

impl TxQueue {
    /// The queue as the caller loaded it back (any order; sorted by `seq` here).
    #[must_use]
    pub fn restore(mut saved: Vec<StoredMessage>, capacity: usize) -> Self {
        saved.sort_by_key(|message| message.seq);
        saved.dedup_by_key(|message| message.seq);
        let next_seq = saved.last().map_or(1, |last| last.seq + 1);
        Self {
            messages: saved.into(),
            next_seq,
            capacity: capacity.max(1),
            not_before_mono_ms: 0,
            known_ids: Vec::new(),
            store_ops: VecDeque::new(),
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The `seq` the next pushed message gets (messages below it were queued earlier).
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The next operation for the caller's store.
    pub fn poll_store_op(&mut self) -> Option<StoreOp> {
        self.store_ops.pop_front()
    }

    /// The backend id of a local transaction, if this queue learned it.
    #[must_use]
    pub fn backend_id(&self, local_tx: LocalTxId) -> Option<i32> {
        self.known_ids
            .iter()
            .find(|(local, _)| *local == local_tx)
            .map(|(_, id)| *id)
    }

    /// Queues a message (persist first). Returns `false` if a MeterValues was refused because
    /// the queue is full.
    pub fn push(
        &mut self,
        action: &str,
        local_tx: LocalTxId,
        transaction_id: Option<i32>,
        payload: Value,
    ) -> bool {
        if action == "MeterValues" && self.messages.len() >= self.capacity {
            return false;
        }
        let message = StoredMessage {
            seq: self.next_seq,
            action: action.to_owned(),
            local_tx,
            transaction_id: transaction_id.or_else(|| self.backend_id(local_tx)),
            attempts: 0,
            payload,
        };
        self.next_seq += 1;
        self.store_ops.push_back(StoreOp::Persist(message.clone()));
        self.messages.push_back(message);
        true
    }

    /// The head, ready to send at `now_mono_ms`, with the transaction id patched in. A
    /// message after a StartTransaction that was discarded, or from before a restart that
    /// lost the id, goes with -1.
    #[must_use]
    pub fn ready(&self, now_mono_ms: u64) -> Option<(u64, &'static str, Value)> {
        if now_mono_ms < self.not_before_mono_ms {
            return None;
        }
        let head = self.messages.front()?;
        let action = match head.action.as_str() {
            "StartTransaction" => "StartTransaction",
            "StopTransaction" => "StopTransaction",
            _ => "MeterValues",
        };
        let mut payload = head.payload.clone();
        if action != "StartTransaction" {
            if let Value::Object(map) = &mut payload {
                let id = head.transaction_id.unwrap_or(UNKNOWN_TRANSACTION_ID);
                map.insert("transactionId".to_owned(), Value::from(id));
            }
        }
        Some((head.seq, action, payload))
    }

    /// The local transaction of the head.
    #[must_use]
    pub fn head_local_tx(&self) -> Option<LocalTxId> {
        self.messages.front().map(|head| head.local_tx)
    }

    /// When the head may go, if it is waiting for its retry.
    #[must_use]
    pub fn retry_at(&self) -> Option<u64> {
        (!self.messages.is_empty() && self.not_before_mono_ms > 0)
            .then_some(self.not_before_mono_ms)
    }

    /// The head's CALL got a CALLRESULT. For a StartTransaction, `transaction_id` is the
    /// backend's id: the local id maps to it in every queued message.
    pub fn delivered(&mut self, seq: u64, transaction_id: Option<i32>) -> Option<StoredMessage> {
        if self.messages.front().is_none_or(|head| head.seq != seq) {
            return None;
        }
        let done = self.messages.pop_front()?;
        self.not_before_mono_ms = 0;
        self.store_ops.push_back(StoreOp::Remove { seq });
        if let (Some(id), "StartTransaction") = (transaction_id, done.action.as_str()) {
            self.learn(done.local_tx, id);
        }
        Some(done)
    }

    /// Records the backend's id for a local transaction and rewrites what waits for it.
    pub fn learn(&mut self, local_tx: LocalTxId, transaction_id: i32) {
        self.known_ids.retain(|(local, _)| *local != local_tx);
        self.known_ids.push((local_tx, transaction_id));
        // Bounded: only the ids of transactions that may still have messages matter.
        if self.known_ids.len() > 64 {
            self.known_ids.remove(0);
        }
        for message in &mut self.messages {
            if message.local_tx == local_tx && message.transaction_id != Some(transaction_id) {
                message.transaction_id = Some(transaction_id);
                self.store_ops.push_back(StoreOp::Persist(message.clone()));
            }
        }
    }

    /// The head's CALL got no answer in time (or the connection dropped): not an attempt
    /// (it may never have arrived), but wait `retry_interval_ms` before sending it again.
    pub fn defer(&mut self, seq: u64, now_mono_ms: u64, retry_interval_ms: u64) {
        if self.messages.front().is_some_and(|head| head.seq == seq) {
            self.not_before_mono_ms = now_mono_ms.saturating_add(retry_interval_ms).max(1);
        }
    }

    /// The head's CALL got a CALLERROR (or an unreadable result): one attempt used.
    pub fn failed(
        &mut self,
        seq: u64,
        now_mono_ms: u64,
        max_attempts: u32,
        retry_interval_ms: u64,
    ) -> Option<Outcome> {
        let head = self.messages.front_mut().filter(|head| head.seq == seq)?;
        head.attempts += 1;
        if head.attempts >= max_attempts.max(1) {
            let dropped = self.messages.pop_front()?;
            self.store_ops.push_back(StoreOp::Remove { seq });
            self.not_before_mono_ms = 0;
            if dropped.action == "StartTransaction" {
                self.learn(dropped.local_tx, UNKNOWN_TRANSACTION_ID);
            }
            return Some(Outcome::Discarded(dropped));
        }
        let wait = retry_interval_ms.saturating_mul(u64::from(head.attempts));
        self.store_ops.push_back(StoreOp::Persist(head.clone()));
        self.not_before_mono_ms = now_mono_ms.saturating_add(wait).max(1);
        Some(Outcome::Retry {
            at_mono_ms: self.not_before_mono_ms,
        })
    }
}
