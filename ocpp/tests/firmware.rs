//! Firmware Management: UpdateFirmware validated and handed over, the caller's progress as
//! FirmwareStatusNotification in order, TriggerMessage answered with the current status,
//! GetDiagnostics declined without a file name.

mod common;

use common::Sim;
use ctrl22_ocpp::rust_ocpp::v1_6::types::FirmwareStatus;
use ctrl22_ocpp::session::{DEFAULT_RETRY_INTERVAL_S, MAX_DOWNLOAD_ATTEMPTS, MAX_RETRY_INTERVAL_S};
use ctrl22_ocpp::{Event, FirmwareUpdate};
use ctrl22_ocpp::{FirmwareProgress, Restored};
use serde_json::json;

const LOCATION: &str = "https://user:secret@fw.example/ctrl22_agccs12_15.hex";

fn requested(sim: &mut Sim) -> Vec<FirmwareUpdate> {
    sim.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::FirmwareUpdateRequested(update) => Some(update),
            _ => None,
        })
        .collect()
}

/// Reports `status` and returns the status the one CALL it caused carried (answered).
fn report(sim: &mut Sim, status: FirmwareStatus) -> String {
    sim.cp
        .report_firmware_status(sim.now, status)
        .expect("a step that follows");
    sim.pump();
    let sent = sim.answer("FirmwareStatusNotification", json!({}));
    sent["status"].as_str().unwrap_or_default().to_owned()
}

/// Reports each of `statuses` in turn: the statuses the CALLs carried.
fn report_all(sim: &mut Sim, statuses: &[FirmwareStatus]) -> Vec<String> {
    statuses
        .iter()
        .map(|status| report(sim, status.clone()))
        .collect()
}

/// Answers every CALL: the statuses of the FirmwareStatusNotifications among them.
fn answered_statuses(sim: &mut Sim) -> Vec<String> {
    sim.answer_all()
        .into_iter()
        .filter(|(action, _)| action == "FirmwareStatusNotification")
        .filter_map(|(_, p)| p["status"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn an_update_is_handed_over_and_its_steps_reported_in_order() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    let answer = sim.call(
        "UpdateFirmware",
        json!({"location": LOCATION, "retrieveDate": "2026-12-01T01:00:00Z",
               "retries": 2, "retryInterval": 30}),
    );
    assert_eq!(answer[0], 3, "{answer}");
    assert_eq!(answer[2], json!({}));
    assert_eq!(
        requested(&mut sim),
        [FirmwareUpdate {
            location: LOCATION.into(),
            retrieve_wall_ms: common::START_WALL_MS + 3_600_000,
            attempts: 2,
            retry_interval_s: 30,
        }]
    );
    sim.expect_silence();
    // A retry is Downloading again; then the whole way to Installed.
    let mut sent = report_all(
        &mut sim,
        &[
            FirmwareStatus::Downloading,
            FirmwareStatus::Downloading,
            FirmwareStatus::Downloaded,
            FirmwareStatus::Installing,
        ],
    );
    // While installing, a trigger answers Installing (the .conf first).
    let trigger = sim.call(
        "TriggerMessage",
        json!({"requestedMessage": "FirmwareStatusNotification"}),
    );
    assert_eq!(trigger[2]["status"], "Accepted");
    assert_eq!(
        sim.answer("FirmwareStatusNotification", json!({}))["status"],
        "Installing"
    );
    sent.push(report(&mut sim, FirmwareStatus::Installed));
    assert_eq!(
        sent,
        [
            "Downloading",
            "Downloading",
            "Downloaded",
            "Installing",
            "Installed"
        ]
    );
    assert_eq!(sim.cp.firmware_status(), &FirmwareStatus::Installed);
    // Done: a trigger says Idle (OCPP 1.6 §4.5), and a new step needs a new request.
    sim.call(
        "TriggerMessage",
        json!({"requestedMessage": "FirmwareStatusNotification"}),
    );
    assert_eq!(
        sim.answer("FirmwareStatusNotification", json!({}))["status"],
        "Idle"
    );
    let refused = sim
        .cp
        .report_firmware_status(sim.now, FirmwareStatus::Downloading)
        .expect_err("no update asked for");
    assert_eq!(refused.from, FirmwareStatus::Installed);
    sim.pump();
    sim.expect_silence();
}

#[test]
fn steps_out_of_order_are_refused_and_nothing_is_sent() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    for status in [
        FirmwareStatus::Downloaded,
        FirmwareStatus::Installing,
        FirmwareStatus::Installed,
        FirmwareStatus::Idle,
    ] {
        assert!(sim.cp.report_firmware_status(sim.now, status).is_err());
    }
    sim.call(
        "UpdateFirmware",
        json!({"location": LOCATION, "retrieveDate": "2026-12-01T00:00:00Z"}),
    );
    report(&mut sim, FirmwareStatus::Downloading);
    assert!(sim
        .cp
        .report_firmware_status(sim.now, FirmwareStatus::Installed)
        .is_err());
    assert_eq!(
        report(&mut sim, FirmwareStatus::DownloadFailed),
        "DownloadFailed"
    );
    sim.expect_silence();
}

#[test]
fn bad_requests_are_refused_and_bounds_only_lower() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    let long = format!("http://h/{}", "a".repeat(3_000));
    for (payload, code) in [
        (
            json!({"location": "not a uri", "retrieveDate": "2026-12-01T00:00:00Z"}),
            "PropertyConstraintViolation",
        ),
        (
            json!({"location": long, "retrieveDate": "2026-12-01T00:00:00Z"}),
            "PropertyConstraintViolation",
        ),
        (
            json!({"location": LOCATION, "retrieveDate": "yesterday"}),
            "PropertyConstraintViolation",
        ),
        (
            json!({"location": LOCATION}),
            "OccurenceConstraintViolation",
        ),
        (
            json!({"location": LOCATION, "retrieveDate": "2026-12-01T00:00:00Z", "retries": -1}),
            "PropertyConstraintViolation",
        ),
        (
            json!({"location": LOCATION, "retrieveDate": "2026-12-01T00:00:00Z", "retryInterval": -5}),
            "PropertyConstraintViolation",
        ),
        (
            json!({"location": 5, "retrieveDate": "2026-12-01T00:00:00Z"}),
            "TypeConstraintViolation",
        ),
    ] {
        let answer = sim.call("UpdateFirmware", payload.clone());
        assert_eq!(answer[0], 4, "{payload}: {answer}");
        assert_eq!(answer[2], code, "{payload}: {answer}");
    }
    assert!(requested(&mut sim).is_empty());
    // Huge numbers are cut to the bounds; absent ones take the defaults; a zone-less date is UTC.
    sim.call(
        "UpdateFirmware",
        json!({"location": LOCATION, "retrieveDate": "2026-12-01T00:00:00",
               "retries": 1_000_000, "retryInterval": 86_400}),
    );
    sim.call(
        "UpdateFirmware",
        json!({"location": LOCATION, "retrieveDate": "2026-12-01T00:00:00Z", "retries": 0}),
    );
    let updates = requested(&mut sim);
    assert_eq!(updates[0].attempts, MAX_DOWNLOAD_ATTEMPTS);
    assert_eq!(updates[0].retry_interval_s, MAX_RETRY_INTERVAL_S);
    assert_eq!(updates[0].retrieve_wall_ms, common::START_WALL_MS);
    assert_eq!(updates[1].attempts, 1, "at least one attempt");
    assert_eq!(updates[1].retry_interval_s, DEFAULT_RETRY_INTERVAL_S);
}

#[test]
fn diagnostics_are_declined_and_triggers_answered() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    let answer = sim.call(
        "GetDiagnostics",
        json!({"location": "ftp://logs.example/", "retries": 3}),
    );
    assert_eq!(answer[0], 3, "{answer}");
    assert_eq!(answer[2], json!({}), "no fileName: nothing to upload");
    let trigger = sim.call(
        "TriggerMessage",
        json!({"requestedMessage": "DiagnosticsStatusNotification"}),
    );
    assert_eq!(trigger[2]["status"], "Accepted");
    assert_eq!(
        sim.answer("DiagnosticsStatusNotification", json!({}))["status"],
        "Idle"
    );
    let keys = sim.call(
        "GetConfiguration",
        json!({"key": ["SupportedFeatureProfiles"]}),
    );
    let profiles = keys[2]["configurationKey"][0]["value"]
        .as_str()
        .unwrap_or("");
    assert!(profiles.contains("FirmwareManagement"), "{profiles}");
}

#[test]
fn firmware_steps_wait_for_registration_and_survive_a_reconnect() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.call(
        "UpdateFirmware",
        json!({"location": LOCATION, "retrieveDate": "2026-12-01T00:00:00Z"}),
    );
    sim.disconnect();
    for status in [FirmwareStatus::Downloading, FirmwareStatus::Downloaded] {
        sim.cp
            .report_firmware_status(sim.now, status)
            .expect("in order");
    }
    sim.pump();
    sim.expect_silence();
    sim.advance(1_000);
    sim.connect();
    // Reconnected without a reboot: no BootNotification, the steps go out in order.
    let statuses = answered_statuses(&mut sim);
    assert_eq!(statuses, ["Downloading", "Downloaded"]);
}

#[test]
fn a_restart_in_the_middle_of_an_update_keeps_its_step() {
    let restored = Restored {
        firmware: FirmwareProgress {
            status: FirmwareStatus::Downloaded,
            requested: false,
        },
        ..Restored::default()
    };
    let mut sim = Sim::with(common::config(1), restored, sim_start());
    sim.boot_accepted(3_600);
    assert_eq!(report(&mut sim, FirmwareStatus::Installing), "Installing");
    assert_eq!(report(&mut sim, FirmwareStatus::Installed), "Installed");
}

#[test]
fn a_reset_before_the_download_starts_keeps_the_request() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    // The download is for an hour from now; a Reset comes first.
    sim.call(
        "UpdateFirmware",
        json!({"location": LOCATION, "retrieveDate": "2026-12-01T01:00:00Z"}),
    );
    assert_eq!(requested(&mut sim).len(), 1);
    let progress = sim.cp.firmware_progress().clone();
    assert!(progress.requested, "{progress:?}");
    let restored = Restored {
        firmware: progress,
        ..sim.restored()
    };
    let mut sim = Sim::with(common::config(1), restored, sim.now.plus_ms(5_000));
    sim.reboot_accepted();
    // The update's task ran on: all its steps follow on the new charge point.
    let sent = report_all(
        &mut sim,
        &[
            FirmwareStatus::Downloading,
            FirmwareStatus::Downloaded,
            FirmwareStatus::Installing,
            FirmwareStatus::Installed,
        ],
    );
    assert_eq!(
        sent,
        ["Downloading", "Downloaded", "Installing", "Installed"]
    );
}

/// The firmware statuses sent (not answered) until the line is quiet.
fn firmware_calls(sim: &mut Sim) -> Vec<(String, String)> {
    sim.take()
        .into_iter()
        .filter(|frame| frame[2] == "FirmwareStatusNotification")
        .map(|frame| {
            (
                frame[1].as_str().unwrap_or_default().to_owned(),
                frame[3]["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_status_whose_answer_was_lost_goes_again() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.call(
        "UpdateFirmware",
        json!({"location": LOCATION, "retrieveDate": "2026-12-01T00:00:00Z"}),
    );
    report_all(
        &mut sim,
        &[
            FirmwareStatus::Downloading,
            FirmwareStatus::Downloaded,
            FirmwareStatus::Installing,
        ],
    );
    // Installed goes out and the backend never answers: it goes again after the timeout.
    sim.cp
        .report_firmware_status(sim.now, FirmwareStatus::Installed)
        .expect("in order");
    sim.pump();
    let first = firmware_calls(&mut sim);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].1, "Installed");
    sim.advance(common::config(1).response_timeout_ms + 1);
    let again = firmware_calls(&mut sim);
    assert_eq!(again.len(), 1, "one status again, not more: {again:?}");
    assert_eq!(again[0].1, "Installed");
    assert_ne!(again[0].0, first[0].0, "a new message id");
    // This one is lost to a disconnect: it goes again on the next connection, once.
    sim.disconnect();
    sim.advance(1_000);
    sim.connect();
    let statuses = answered_statuses(&mut sim);
    assert_eq!(statuses, ["Installed"]);
    // Answered: nothing more.
    sim.advance(common::config(1).response_timeout_ms * 3);
    assert!(firmware_calls(&mut sim).is_empty());
}

#[test]
fn a_lost_status_is_not_sent_again_when_a_later_one_waits() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.call(
        "UpdateFirmware",
        json!({"location": LOCATION, "retrieveDate": "2026-12-01T00:00:00Z"}),
    );
    for status in [FirmwareStatus::Downloading, FirmwareStatus::Downloaded] {
        sim.cp
            .report_firmware_status(sim.now, status)
            .expect("in order");
    }
    sim.pump();
    assert_eq!(firmware_calls(&mut sim).len(), 1, "Downloading in flight");
    sim.disconnect();
    sim.advance(1_000);
    sim.connect();
    let statuses = answered_statuses(&mut sim);
    assert_eq!(
        statuses,
        ["Downloaded"],
        "the later step tells the backend more"
    );
}

fn sim_start() -> ctrl22_ocpp::Now {
    ctrl22_ocpp::Now {
        mono_ms: 1_000,
        wall_ms: common::START_WALL_MS,
    }
}
