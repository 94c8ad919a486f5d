//! One control cycle's outputs of the site core, persisted in one commit.
//!
//! Every commit waits for an fsync (a few milliseconds, more on an SD card). Committing each
//! event on its own would let 10,000 bays coming online at startup block the store for a
//! minute; handing over the whole cycle costs one fsync however much it holds.

use super::energy::save_energy;
use super::events::{append_bay_event, append_event};
use super::reservations::{check_reservation, save_reservation};
use super::sessions::{check_session, record_session};
use super::settings::{save_setting, setting_write, SettingWrite};
use super::{Session, Store, StoreError};
use crate::bay::BayId;
use crate::site::{BayEvent, BayEventKind, Output};

/// One write of a cycle, checked before the transaction starts.
enum Row<'a> {
    Reservation(&'a BayId, [i32; 3]),
    BayEvent(&'a BayEvent, String),
    Energy(&'a BayId, u64),
    Session(Session),
    Setting(SettingWrite<'a>),
    Event(u64, Option<&'a BayId>, &'a str),
}

/// What `output` stores, if anything. An output that cannot be stored is logged and dropped,
/// so it cannot cost the rest of the cycle (its energy above all).
fn row(at_ms: u64, output: &Output) -> Vec<Row<'_>> {
    let kept = match output {
        Output::Send { .. } => return Vec::new(),
        Output::SaveEnergy { bay, total_wh } => Ok(Row::Energy(bay, *total_wh)),
        Output::SaveReservation { bay, load, .. } => {
            check_reservation(*load).map(|()| Row::Reservation(bay, *load))
        }
        Output::Bay(event) => {
            return bay_event_rows(event);
        }
        Output::SaveSetting(change) => setting_write(change).map(Row::Setting),
        Output::Event { bay, text } => Ok(Row::Event(at_ms, bay.as_ref(), text)),
    };
    kept.map_err(|e| tracing::warn!(error = %e, ?output, "not stored"))
        .ok()
        .into_iter()
        .collect()
}

/// A bay event is logged as it is; a stopped session also becomes a row of `sessions`.
fn bay_event_rows(event: &BayEvent) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    match serde_json::to_string(event) {
        Ok(json) => rows.push(Row::BayEvent(event, json)),
        Err(e) => tracing::warn!(error = %e, ?event, "bay event not stored"),
    }
    if let BayEventKind::SessionStopped {
        started_ms,
        energy_wh,
        uncounted_ms,
        ..
    } = event.kind
    {
        let session = Session {
            bay: event.bay.clone(),
            started_ms,
            ended_ms: event.at_ms,
            energy_wh,
            id_tag: None,
            max_current: None,
            solar_wh: None,
            uncounted_ms,
        };
        match check_session(&session) {
            Ok(()) => rows.push(Row::Session(session)),
            Err(e) => tracing::warn!(error = %e, ?event, "session not stored"),
        }
    }
    rows
}

impl Store {
    /// Persists what is to be kept of one control cycle's outputs in a single commit:
    /// `SaveReservation`, `Bay` events (a stopped session also as a session row),
    /// `SaveEnergy` (never lowering a total), `SaveSetting` (as
    /// [`Store::save_setting`]) and `Event` stamped `at_ms`. `Send` is not the store's business.
    ///
    /// # Errors
    /// SQLite failures; nothing of the cycle is stored then.
    pub fn persist_outputs(&mut self, at_ms: u64, outputs: &[Output]) -> Result<(), StoreError> {
        self.persist_batches(&[(at_ms, outputs)])
    }

    /// [`Store::persist_outputs`] for several inputs' outputs (each `Event` stamped with its
    /// own time) in one commit, in order: what queued up while the disk was busy costs one
    /// fsync, not one each.
    ///
    /// # Errors
    /// SQLite failures; nothing of any batch is stored then.
    pub fn persist_batches(&mut self, batches: &[(u64, &[Output])]) -> Result<(), StoreError> {
        let rows: Vec<Row<'_>> = batches
            .iter()
            .flat_map(|&(at_ms, outputs)| outputs.iter().flat_map(move |o| row(at_ms, o)))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for row in &rows {
                match row {
                    Row::Reservation(bay, load) => save_reservation(tx, bay, *load)?,
                    Row::BayEvent(event, json) => {
                        append_bay_event(tx, event.at_ms, &event.bay, event.kind.name(), json)?;
                    }
                    Row::Energy(bay, total_wh) => save_energy(tx, bay, *total_wh)?,
                    Row::Session(session) => {
                        record_session(tx, session)?;
                    }
                    Row::Setting(write) => save_setting(tx, write)?,
                    Row::Event(at_ms, bay, text) => {
                        append_event(tx, *at_ms, *bay, text)?;
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::bay::BayId;
    use crate::site::Output;
    use crate::store::Store;

    #[test]
    fn batches_committed_together_keep_their_own_times_and_order() {
        let mut store = Store::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        let event = |text: &str| Output::Event {
            bay: Some(BayId("a".into())),
            text: text.into(),
        };
        let first = [event("online")];
        let second = [
            Output::SaveEnergy {
                bay: BayId("a".into()),
                total_wh: 7,
            },
            event("offline"),
        ];
        store
            .persist_batches(&[(10, &first), (20, &second)])
            .unwrap_or_else(|e| panic!("{e}"));
        let events = store.recent_events(10).unwrap_or_else(|e| panic!("{e}"));
        let mut seen: Vec<(u64, &str)> =
            events.iter().map(|e| (e.at_ms, e.text.as_str())).collect();
        seen.sort_unstable();
        assert_eq!(seen, [(10, "online"), (20, "offline")]);
        let totals = store.energy_totals().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(totals.get(&BayId("a".into())), Some(&7));
    }
}
