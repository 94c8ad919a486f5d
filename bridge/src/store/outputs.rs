//! One control cycle's outputs of the site core, persisted in one commit.
//!
//! Every commit waits for an fsync (a few milliseconds, more on an SD card). Committing each
//! event on its own would let 10,000 bays coming online at startup block the store for a
//! minute; handing over the whole cycle costs one fsync however much it holds.

use super::energy::save_energy;
use super::events::append_event;
use super::sessions::{check_session, record_session};
use super::settings::{save_setting, setting_write, SettingWrite};
use super::{Session, Store, StoreError};
use crate::bay::BayId;
use crate::site::Output;

/// One write of a cycle, checked before the transaction starts.
enum Row<'a> {
    Energy(&'a BayId, u64),
    Session(Session),
    Setting(SettingWrite<'a>),
    Event(Option<&'a BayId>, &'a str),
}

/// What `output` stores, if anything. An output that cannot be stored is logged and dropped,
/// so it cannot cost the rest of the cycle (its energy above all).
fn row(output: &Output) -> Option<Row<'_>> {
    let kept = match output {
        Output::Send { .. } => return None,
        Output::SaveEnergy { bay, total_wh } => Ok(Row::Energy(bay, *total_wh)),
        Output::SessionEnded {
            bay,
            started_ms,
            ended_ms,
            energy_wh,
        } => {
            let session = Session {
                bay: bay.clone(),
                started_ms: *started_ms,
                ended_ms: *ended_ms,
                energy_wh: *energy_wh,
                id_tag: None,
                max_current: None,
                solar_wh: None,
            };
            check_session(&session).map(|()| Row::Session(session))
        }
        Output::SaveSetting(change) => setting_write(change).map(Row::Setting),
        Output::Event { bay, text } => Ok(Row::Event(bay.as_ref(), text)),
    };
    kept.map_err(|e| tracing::warn!(error = %e, ?output, "not stored"))
        .ok()
}

impl Store {
    /// Persists what is to be kept of one control cycle's outputs in a single commit:
    /// `SaveEnergy` (never lowering a total), `SessionEnded`, `SaveSetting` (as
    /// [`Store::save_setting`]) and `Event` stamped `at_ms`. `Send` is not the store's business.
    ///
    /// # Errors
    /// SQLite failures; nothing of the cycle is stored then.
    pub fn persist_outputs(&mut self, at_ms: u64, outputs: &[Output]) -> Result<(), StoreError> {
        let rows: Vec<Row<'_>> = outputs.iter().filter_map(row).collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for row in &rows {
                match row {
                    Row::Energy(bay, total_wh) => save_energy(tx, bay, *total_wh)?,
                    Row::Session(session) => {
                        record_session(tx, session)?;
                    }
                    Row::Setting(write) => save_setting(tx, write)?,
                    Row::Event(bay, text) => {
                        append_event(tx, at_ms, *bay, text)?;
                    }
                }
            }
            Ok(())
        })
    }
}
