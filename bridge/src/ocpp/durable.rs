//! What a charge point keeps across restarts, in the bridge's SQLite file: the session's
//! store events become [`OcppWrite`]s, committed on the OCPP store thread before the frames
//! after them are sent; at start the saved rows become the session's [`Restored`].

use std::path::Path;

use anyhow::Context;
use ctrl22_ocpp::queue::StoredMessage;
use ctrl22_ocpp::rust_ocpp::v1_6::types::AuthorizationData;
use ctrl22_ocpp::session::LocalList;
use ctrl22_ocpp::{Event, OpenTransaction, Restored};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::store::{OcppSaved, OcppWrite, Store};

const CONFIG: &str = "config:";
const INOPERATIVE: &str = "inoperative:";
const TRANSACTION: &str = "transaction:";
const PROFILES: &str = "profiles";
const LOCAL_LIST: &str = "local_list";

#[derive(Serialize, Deserialize)]
struct SavedLocalList {
    version: i32,
    entries: Vec<AuthorizationData>,
}

/// The writes one session event asks for (none for events that are not about storage).
#[must_use]
pub fn writes(event: &Event, connectors: u32) -> Vec<OcppWrite> {
    let state = |key: String, value: Option<String>| OcppWrite::State {
        key,
        value_json: value,
    };
    match event {
        Event::PersistTxMessage(message) => match serde_json::to_string(message) {
            Ok(message_json) => vec![OcppWrite::PutTxMessage {
                seq: message.seq,
                message_json,
            }],
            Err(_) => Vec::new(),
        },
        Event::RemoveTxMessage { seq } => vec![OcppWrite::RemoveTxMessage { seq: *seq }],
        Event::ConfigurationChanged { key, value } => {
            vec![state(
                format!("{CONFIG}{key}"),
                serde_json::to_string(value).ok(),
            )]
        }
        Event::AvailabilityChanged {
            connector_id,
            operative: false,
        } => vec![state(
            format!("{INOPERATIVE}{connector_id}"),
            Some("true".into()),
        )],
        // Operative again: connector 0 means all of them.
        Event::AvailabilityChanged {
            connector_id,
            operative: true,
        } => {
            let ids = if *connector_id == 0 {
                (0..=connectors).collect()
            } else {
                vec![*connector_id]
            };
            ids.into_iter()
                .map(|id| state(format!("{INOPERATIVE}{id}"), None))
                .collect()
        }
        Event::TransactionChanged {
            connector_id,
            transaction,
        } => vec![state(
            format!("{TRANSACTION}{connector_id}"),
            transaction
                .as_ref()
                .and_then(|t| serde_json::to_string(t).ok()),
        )],
        Event::ChargingProfilesChanged(profiles) => {
            vec![state(PROFILES.into(), serde_json::to_string(profiles).ok())]
        }
        Event::LocalListChanged { version, entries } => {
            let saved = SavedLocalList {
                version: *version,
                entries: entries.clone(),
            };
            vec![state(LOCAL_LIST.into(), serde_json::to_string(&saved).ok())]
        }
        _ => Vec::new(),
    }
}

/// The session's start from what was saved. A row that no longer parses is skipped and
/// logged: a damaged row must not keep a charge point from starting.
#[must_use]
pub fn restored(identity: &str, saved: OcppSaved) -> Restored {
    let mut restored = Restored::default();
    for json in saved.tx_messages {
        match serde_json::from_str::<StoredMessage>(&json) {
            Ok(message) => restored.tx_messages.push(message),
            Err(e) => tracing::warn!(identity, "skipping a stored OCPP message: {e}"),
        }
    }
    for (key, json) in saved.state {
        let ok = if let Some(name) = key.strip_prefix(CONFIG) {
            serde_json::from_str::<String>(&json)
                .map(|value| restored.configuration.push((name.to_owned(), value)))
                .is_ok()
        } else if let Some(id) = key.strip_prefix(INOPERATIVE) {
            id.parse()
                .map(|id| restored.inoperative_connectors.push(id))
                .is_ok()
        } else if let Some(id) = key.strip_prefix(TRANSACTION) {
            match (id.parse(), serde_json::from_str::<OpenTransaction>(&json)) {
                (Ok(id), Ok(transaction)) => {
                    restored.open_transactions.push((id, transaction));
                    true
                }
                _ => false,
            }
        } else if key == PROFILES {
            serde_json::from_str(&json)
                .map(|profiles| restored.charging_profiles = profiles)
                .is_ok()
        } else if key == LOCAL_LIST {
            serde_json::from_str::<SavedLocalList>(&json)
                .map(|list| restored.local_list = LocalList::restore(list.version, list.entries))
                .is_ok()
        } else {
            false
        };
        if !ok {
            tracing::warn!(identity, key, "skipping a stored OCPP state row");
        }
    }
    restored
}

enum Job {
    Load {
        identity: String,
        reply: oneshot::Sender<anyhow::Result<OcppSaved>>,
    },
    Write {
        identity: String,
        writes: Vec<OcppWrite>,
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
}

/// The OCPP store thread's handle: its own connection to the bridge's SQLite file (WAL lets
/// it write beside the site's store thread), one commit per batch of a session's writes.
#[derive(Clone, Debug)]
pub struct OcppStore {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// Jobs waiting for the disk; sessions wait beyond that (back-pressure, nothing dropped).
const JOBS: usize = 1024;

impl OcppStore {
    /// Opens the store at `path` on a thread of its own.
    ///
    /// # Errors
    /// The file cannot be opened or migrated.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut store =
            Store::open(path).with_context(|| format!("storage.path {}", path.display()))?;
        let (jobs, mut incoming) = mpsc::channel::<Job>(JOBS);
        std::thread::Builder::new()
            .name("ocpp-store".to_owned())
            .spawn(move || {
                while let Some(job) = incoming.blocking_recv() {
                    match job {
                        Job::Load { identity, reply } => {
                            let _ = reply.send(store.ocpp_saved(&identity).map_err(Into::into));
                        }
                        Job::Write {
                            identity,
                            writes,
                            reply,
                        } => {
                            let result = store.ocpp_write(&identity, &writes);
                            let _ = reply.send(result.map_err(Into::into));
                        }
                    }
                }
            })
            .context("starting the OCPP store thread")?;
        Ok(Self { jobs })
    }

    /// What `identity` kept.
    ///
    /// # Errors
    /// SQLite failures, or the thread is gone.
    pub async fn load(&self, identity: &str) -> anyhow::Result<OcppSaved> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Load {
                identity: identity.to_owned(),
                reply,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the OCPP store thread has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the OCPP store thread has stopped"))?
    }

    /// Commits `writes` and returns once they are on disk.
    ///
    /// # Errors
    /// SQLite failures, or the thread is gone.
    pub async fn write(&self, identity: &str, writes: Vec<OcppWrite>) -> anyhow::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Write {
                identity: identity.to_owned(),
                writes,
                reply,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the OCPP store thread has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the OCPP store thread has stopped"))?
    }
}
