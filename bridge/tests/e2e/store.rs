//! The SQLite store against real files: migrations, reopening, refusal of files it must not
//! touch, every table's contract, and crash safety under `kill -9`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ctrl22_bridge::allocate::{ChargeMode, Strategy};
use ctrl22_bridge::bay::{BayId, Deciamps};
use ctrl22_bridge::site::record::ButtonRequest;
use ctrl22_bridge::site::{BayEvent, BayEventKind, Output, SettingChange};
use ctrl22_bridge::store::{
    write_sessions_csv, Session, SessionFilter, SessionRow, Store, StoreError, SCHEMA_VERSION,
};

fn bay(id: &str) -> BayId {
    BayId(id.to_owned())
}

fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.sqlite");
    (dir, path)
}

fn session(bay_id: &str, started_ms: u64, energy_wh: f64) -> Session {
    Session {
        bay: bay(bay_id),
        started_ms,
        ended_ms: started_ms + 3_600_000,
        energy_wh,
        id_tag: None,
        max_current: None,
        solar_wh: None,
        uncounted_ms: 0,
    }
}

/// The runtime moves the store into `spawn_blocking` or its own thread.
const _: () = {
    const fn send<T: Send>() {}
    send::<Store>();
};

#[test]
fn migrates_from_empty_and_reopening_keeps_everything() {
    let (_dir, path) = temp_store();
    {
        let mut store = Store::open(&path).unwrap();
        store.save_energy_batch(&[(bay("a"), 1234)]).unwrap();
        store
            .save_setting(&SettingChange::Strategy(Strategy::Fcfs))
            .unwrap();
        store.record_session(&session("a", 1_000, 500.0)).unwrap();
        store.append_event(7, Some(&bay("a")), "online").unwrap();
        store.enqueue("cp1", "[2,\"1\",\"Heartbeat\",{}]").unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let journal: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    drop(conn);

    let store = Store::open(&path).unwrap();
    store.integrity_check().unwrap();
    assert_eq!(
        store
            .energy_totals()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(bay("a"), 1234)]
    );
    assert_eq!(
        store.settings().unwrap(),
        vec![SettingChange::Strategy(Strategy::Fcfs)]
    );
    assert_eq!(
        store.sessions(&SessionFilter::default()).unwrap()[0].session,
        session("a", 1_000, 500.0)
    );
    let events = store.recent_events(10).unwrap();
    assert_eq!(
        (
            events[0].at_ms,
            events[0].bay.clone(),
            events[0].text.as_str()
        ),
        (7, Some(bay("a")), "online")
    );
    assert_eq!(store.pending("cp1", 10).unwrap().len(), 1);
}

#[test]
fn a_file_from_a_newer_bridge_is_refused() {
    let (_dir, path) = temp_store();
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match Store::open(&path) {
        Err(StoreError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[test]
fn a_garbage_file_is_corrupt_and_the_error_names_it() {
    let (_dir, path) = temp_store();
    std::fs::write(&path, "this is a text file, not a database\n".repeat(200)).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { path: p, .. } if p == &path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // Nothing was written over it.
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("this is a text file"));
}

#[test]
fn damaged_pages_are_reported_as_corrupt() {
    let (_dir, path) = temp_store();
    {
        let mut store = Store::open(&path).unwrap();
        for i in 0..200 {
            store
                .record_session(&session(&format!("bay{i:03}"), i * 1000, 1.0))
                .unwrap();
        }
    } // the last close checkpoints the WAL into the main file
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 3 * 4096, "{}", bytes.len());
    for b in &mut bytes[4096..3 * 4096] {
        *b = 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let err = match Store::open(&path) {
        Ok(store) => store.integrity_check().unwrap_err(),
        Err(err) => err,
    };
    assert!(
        matches!(&err, StoreError::Corrupt { path: p, .. } if p == &path),
        "{err:?}"
    );
}

#[test]
fn another_programs_database_is_left_alone() {
    let (_dir, path) = temp_store();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::ForeignDatabase { .. }), "{err:?}");
}

#[test]
fn the_latest_setting_of_each_field_wins_and_forget_drops_the_bay() {
    let mut store = Store::open_in_memory().unwrap();
    let changes = [
        SettingChange::BayName {
            bay: bay("a"),
            name: "north".into(),
        },
        SettingChange::BayMaxCurrent {
            bay: bay("a"),
            amps: 16.0,
        },
        SettingChange::SiteLimit {
            phase: 1,
            amps: 40.0,
        },
        SettingChange::SiteLimit {
            phase: 2,
            amps: 35.0,
        },
        SettingChange::BayMode {
            bay: bay("b"),
            mode: ChargeMode::MinPv,
        },
        SettingChange::BayName {
            bay: bay("a"),
            name: "north 2".into(),
        },
        SettingChange::BayName {
            bay: bay("b"),
            name: "south".into(),
        },
        SettingChange::SiteLimit {
            phase: 1,
            amps: 45.0,
        },
        SettingChange::BayButton {
            bay: bay("b"),
            press: ButtonRequest::Start,
        },
        SettingChange::BayRelease { bay: bay("b") },
    ];
    for change in &changes {
        store.save_setting(change).unwrap();
    }
    assert_eq!(
        store.settings().unwrap(),
        vec![
            SettingChange::BayMaxCurrent {
                bay: bay("a"),
                amps: 16.0
            },
            SettingChange::SiteLimit {
                phase: 2,
                amps: 35.0
            },
            SettingChange::BayMode {
                bay: bay("b"),
                mode: ChargeMode::MinPv
            },
            SettingChange::BayName {
                bay: bay("a"),
                name: "north 2".into()
            },
            SettingChange::BayName {
                bay: bay("b"),
                name: "south".into()
            },
            SettingChange::SiteLimit {
                phase: 1,
                amps: 45.0
            },
        ]
    );
    store
        .save_setting(&SettingChange::BayForget { bay: bay("a") })
        .unwrap();
    let remaining = store.settings().unwrap();
    assert_eq!(remaining.len(), 4);
    assert!(remaining.iter().all(|c| c.bay() != Some(&bay("a"))));
}

#[test]
fn energy_totals_never_go_backwards() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .save_energy_batch(&[(bay("a"), 100), (bay("b"), 10)])
        .unwrap();
    store
        .save_energy_batch(&[(bay("a"), 50), (bay("b"), 20)])
        .unwrap();
    let totals = store.energy_totals().unwrap();
    assert_eq!((totals[&bay("a")], totals[&bay("b")]), (100, 20));
}

#[test]
fn sessions_filter_by_bay_and_start_time_and_export_as_csv() {
    let mut store = Store::open_in_memory().unwrap();
    let day_ms = 86_400_000;
    // 2024-01-01T00:00:00Z
    let jan1_ms = 1_704_067_200_000;
    let mut billed = session("a", jan1_ms + 8 * 3_600_000, 12_345.6);
    billed.id_tag = Some("=HYPERLINK(\"x\")".into());
    billed.max_current = Some(Deciamps(160));
    billed.solar_wh = Some(6_172.8);
    let billed_id = store.record_session(&billed).unwrap();
    store
        .record_session(&session("b", jan1_ms + 9 * 3_600_000, 1.0))
        .unwrap();
    store
        .record_session(&session("a", jan1_ms + day_ms, 2.0))
        .unwrap();
    store
        .record_session(&session("a", jan1_ms - 1, 3.0))
        .unwrap();

    let starts = |filter: SessionFilter| -> Vec<u64> {
        store
            .sessions(&filter)
            .unwrap()
            .iter()
            .map(|r| r.session.started_ms)
            .collect()
    };
    assert_eq!(starts(SessionFilter::default()).len(), 4);
    assert_eq!(
        starts(SessionFilter {
            from_ms: Some(jan1_ms),
            to_ms: Some(jan1_ms + day_ms),
            ..SessionFilter::default()
        }),
        vec![jan1_ms + 8 * 3_600_000, jan1_ms + 9 * 3_600_000]
    );
    assert_eq!(
        starts(SessionFilter {
            bay: Some(bay("a")),
            from_ms: Some(jan1_ms),
            ..SessionFilter::default()
        }),
        vec![jan1_ms + 8 * 3_600_000, jan1_ms + day_ms]
    );
    assert_eq!(
        starts(SessionFilter {
            limit: Some(1),
            ..SessionFilter::default()
        }),
        vec![jan1_ms - 1]
    );

    let rows: Vec<SessionRow> = store
        .sessions(&SessionFilter {
            bay: Some(bay("a")),
            from_ms: Some(jan1_ms),
            to_ms: Some(jan1_ms + day_ms),
            limit: None,
        })
        .unwrap();
    assert_eq!(rows[0].id, billed_id);
    assert_eq!(rows[0].session.solar_share(), Some(0.5));
    let mut csv = Vec::new();
    write_sessions_csv(&mut csv, &rows).unwrap();
    assert_eq!(
        String::from_utf8(csv).unwrap(),
        format!(
            "id,bay,started,ended,duration_s,energy_kwh,id_tag,max_current_a,solar_kwh,solar_share,uncounted_s\r\n\
             {billed_id},a,2024-01-01T08:00:00Z,2024-01-01T09:00:00Z,3600,12.346,\"'=HYPERLINK(\"\"x\"\")\",16.0,6.173,0.500,0\r\n"
        )
    );
    let json = serde_json::to_value(&rows[0]).unwrap();
    assert_eq!(json["max_current_deciamps"], 160);
    assert_eq!(json["bay"], "a");
}

#[test]
fn a_session_energy_that_is_not_a_number_is_refused() {
    let mut store = Store::open_in_memory().unwrap();
    let err = store
        .record_session(&session("a", 0, f64::NAN))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                field: "energy_wh",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn the_ocpp_queue_delivers_in_order_once_across_restarts() {
    let (_dir, path) = temp_store();
    let ids: Vec<i64> = {
        let mut store = Store::open(&path).unwrap();
        let ids = (0..5)
            .map(|i| store.enqueue("cp1", &format!("m{i}")).unwrap())
            .collect();
        store.enqueue("cp2", "other").unwrap();
        ids
    };
    let mut store = Store::open(&path).unwrap();
    let first = store.pending("cp1", 2).unwrap();
    assert_eq!(
        first,
        vec![(ids[0], "m0".to_owned()), (ids[1], "m1".to_owned())]
    );
    assert!(store.ack(ids[0]).unwrap());
    assert!(!store.ack(ids[0]).unwrap(), "a repeated ack is a no-op");
    drop(store);

    let mut store = Store::open(&path).unwrap();
    let rest: Vec<String> = store
        .pending("cp1", 100)
        .unwrap()
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(rest, ["m1", "m2", "m3", "m4"]);
    for id in &ids[1..] {
        store.ack(*id).unwrap();
    }
    assert!(store.pending("cp1", 100).unwrap().is_empty());
    assert_eq!(store.pending("cp2", 100).unwrap().len(), 1);
    // Ids are never reused, so a stale ack cannot hit a newer message.
    let next = store.enqueue("cp1", "m5").unwrap();
    assert!(next > ids[4]);
}

#[test]
fn recent_events_come_newest_first() {
    let mut store = Store::open_in_memory().unwrap();
    for (at_ms, text) in [(1, "online"), (2, "limit changed"), (3, "offline")] {
        store.append_event(at_ms, None, text).unwrap();
    }
    let texts: Vec<String> = store
        .recent_events(2)
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(texts, ["offline", "limit changed"]);
}

#[test]
fn a_control_cycle_is_persisted_in_one_go_and_a_bad_item_costs_only_itself() {
    let mut store = Store::open_in_memory().unwrap();
    let outputs = [
        Output::SaveEnergy {
            bay: bay("a"),
            total_wh: 500,
        },
        stopped(bay("a"), 10, 20, f64::NAN),
        stopped(bay("b"), 30, 40, 7.5),
        Output::SaveReservation {
            bay: bay("a"),
            load: [160, 0, 0],
            raised: true,
        },
        Output::SaveReservation {
            bay: bay("b"),
            load: [-1, 0, 0],
            raised: false,
        },
        Output::SaveSetting(SettingChange::BayPriority {
            bay: bay("a"),
            priority: 3,
        }),
        Output::Event {
            bay: Some(bay("a")),
            text: "online".into(),
        },
    ];
    store.persist_outputs(99, &outputs).unwrap();
    assert_eq!(store.energy_totals().unwrap()[&bay("a")], 500);
    let sessions = store.sessions(&SessionFilter::default()).unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].session.bay, bay("b"));
    assert_eq!(store.settings().unwrap().len(), 1);
    let events = store.recent_events(10).unwrap();
    assert_eq!((events[0].at_ms, events[0].text.as_str()), (99, "online"));
    let reservations = store.reservations().unwrap();
    assert_eq!(reservations.len(), 1, "a negative load is refused alone");
    assert_eq!(reservations[&bay("a")], [160, 0, 0]);
    // Both stops are in the bay event log, in order; the bad one is not a session.
    let logged = store.bay_events_after(0, 10).unwrap();
    assert_eq!(logged.len(), 2);
    assert_eq!(
        (logged[0].bay.clone(), logged[1].bay.clone()),
        (bay("a"), bay("b"))
    );
    assert!(logged[1].event_json.contains("session_stopped"));
}

fn stopped(bay: BayId, started_ms: u64, ended_ms: u64, energy_wh: f64) -> Output {
    Output::Bay(BayEvent {
        bay,
        at_ms: ended_ms,
        kind: BayEventKind::SessionStopped {
            started_ms,
            energy_wh,
            meter_wh: 0,
            uncounted_ms: 0,
        },
    })
}

#[test]
fn a_reservation_survives_reopen_and_zero_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let raise = |load| Output::SaveReservation {
        bay: bay("a"),
        load,
        raised: true,
    };
    {
        let mut store = Store::open(&path).unwrap();
        store.persist_outputs(1, &[raise([10, 200, 30])]).unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.reservations().unwrap()[&bay("a")], [10, 200, 30]);
    store.persist_outputs(2, &[raise([0, 0, 0])]).unwrap();
    assert!(store.reservations().unwrap().is_empty());
}

/// Set in the child process of the crash test: the path of the store to write to.
const CRASH_CHILD_ENV: &str = "CTRL22_STORE_CRASH_CHILD";
const CRASH_BAYS: [&str; 4] = ["0001", "0002", "0003", "0004"];

/// The writer of the crash test, run only as its child (a no-op in a normal test run): every
/// cycle saves the same total for every bay in one batch, then logs that total as an event's
/// `at_ms`, forever, until the parent kills it.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    let mut store = Store::open(Path::new(&path)).unwrap();
    let start = store
        .energy_totals()
        .unwrap()
        .into_values()
        .max()
        .unwrap_or(0);
    for total in start + 1.. {
        let batch: Vec<(BayId, u64)> = CRASH_BAYS.iter().map(|b| (bay(b), total)).collect();
        store.save_energy_batch(&batch).unwrap();
        store
            .append_event(total, None, &format!("saved {total}"))
            .unwrap();
        if total == start + 1 {
            println!("ready");
        }
    }
}

#[test]
fn kill_9_mid_write_keeps_the_file_sound_and_the_counters_consistent() {
    if std::env::var_os(CRASH_CHILD_ENV).is_some() {
        return;
    }
    let (_dir, path) = temp_store();
    let exe = std::env::current_exe().unwrap();
    let mut last_total = 0;
    for round in 0..8 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "store::crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = BufReader::new(stdout)
            .lines()
            .map(Result::unwrap)
            // The harness prints "test crash_child_writer ... " on the same line.
            .any(|line| line.ends_with("ready"));
        assert!(ready, "round {round}: the writer never got going");
        // A pseudo-random moment within the writer's loop, some rounds right away.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        std::thread::sleep(Duration::from_micros(u64::from(nanos % 150_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let store = Store::open(&path).unwrap();
        store.integrity_check().unwrap();
        let totals = store.energy_totals().unwrap();
        assert_eq!(totals.len(), CRASH_BAYS.len(), "round {round}");
        let total = totals[&bay(CRASH_BAYS[0])];
        assert!(
            totals.values().all(|t| *t == total),
            "round {round}: a batch was torn: {totals:?}"
        );
        assert!(
            total > last_total,
            "round {round}: {total} after {last_total}"
        );
        // The event of a cycle follows its batch: the last one is this cycle's or the one
        // before (killed between the two commits).
        let last_event = store.recent_events(1).unwrap()[0].at_ms;
        assert!(
            last_event == total || last_event + 1 == total,
            "round {round}: event {last_event}, energy {total}"
        );
        last_total = total;
    }
}
