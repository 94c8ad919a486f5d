//! End to end, the bridge as OCPP charge points at a real central system: simulated bays on
//! a real Mosquitto, the bridge binary with `[ocpp] enabled`, and a backend from
//! `testkit/ocpp-peers/` (the scenario is generic over [`Peer`]). Boot, statuses through a
//! whole session, transactions with monotonic meter values, the backend's requests
//! (SetChargingProfile lowering the bay on the mesh, GetCompositeSchedule, TriggerMessage,
//! RemoteStop/Start, ChangeAvailability, Reset), an unsupported action and bad frames.

use std::time::Duration;

use ctrl22_node::mesh::{Address, Command};
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::wire::{WireMessage, WireRecord};
use serde_json::{json, Value};

use crate::mqtt_site::MqttSite;
use crate::ocpp_peer::{Peer, PeerProcess};

/// Long enough for a loaded machine; the steps themselves take a cycle or two.
const STEP: Duration = Duration::from_secs(20);

/// Appends `[ocpp]` (a charge point per bay, `{dev}`) for the backend at `url` to the
/// site's configuration, with `extra` lines.
pub fn enable_ocpp(site: &MqttSite, url: &str, extra: &str) -> anyhow::Result<()> {
    append_config(
        site,
        &format!(
            "[ocpp]\nidentity = \"{{dev}}\"\n{}{extra}\n",
            ocpp_common(url)
        ),
    )
}

/// The `[ocpp]` lines every test shares (no section header).
pub fn ocpp_common(url: &str) -> String {
    format!(
        "enabled = true\nurl = \"{url}\"\nmeter_value_sample_interval = \"1s\"\nreconnect_max = \"2s\"\n"
    )
}

/// Appends `text` to the site's configuration file.
pub fn append_config(site: &MqttSite, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&site.config)?;
    writeln!(file, "\n{text}")?;
    Ok(())
}

/// The statuses `cp` reported for connector 1, in order.
fn statuses(peer: &PeerProcess, cp: &str) -> Vec<String> {
    peer.received(cp, "StatusNotification")
        .iter()
        .filter(|p| p["connectorId"] == 1)
        .filter_map(|p| p["status"].as_str().map(str::to_owned))
        .collect()
}

async fn wait_status(peer: &PeerProcess, cp: &str, status: &str) -> anyhow::Result<Value> {
    wait_status_from(peer, 0, cp, &[status]).await
}

/// The next Charging of `cp`: a bay's restart after a pause or stop waits for the core's
/// minimum off time and phase switch, so this allows twice a step.
async fn wait_charging(peer: &PeerProcess, cp: &str) -> anyhow::Result<Value> {
    let from = peer.lines().len();
    peer.wait_from(from, 2 * STEP, &format!("{cp} Charging"), |l| {
        l["kind"] == "recv"
            && l["cp"] == cp
            && l["action"] == "StatusNotification"
            && l["payload"]["status"] == "Charging"
    })
    .await
}

/// The first StatusNotification of `cp` from line `from` on with one of `statuses`.
async fn wait_status_from(
    peer: &PeerProcess,
    from: usize,
    cp: &str,
    statuses: &[&str],
) -> anyhow::Result<Value> {
    peer.wait_from(from, STEP, &format!("{cp} {statuses:?}"), |l| {
        l["kind"] == "recv"
            && l["cp"] == cp
            && l["action"] == "StatusNotification"
            && statuses.iter().any(|s| l["payload"]["status"] == *s)
    })
    .await
}

/// Energy.Active.Import.Register values of `cp`'s transaction MeterValues.
fn energies(peer: &PeerProcess, cp: &str, transaction_id: &Value) -> Vec<f64> {
    peer.received(cp, "MeterValues")
        .iter()
        .filter(|p| &p["transactionId"] == transaction_id)
        .flat_map(|p| p["meterValue"].as_array().cloned().unwrap_or_default())
        .flat_map(|mv| mv["sampledValue"].as_array().cloned().unwrap_or_default())
        .filter(|sv| sv["measurand"] == "Energy.Active.Import.Register")
        .filter_map(|sv| sv["value"].as_str().and_then(|v| v.parse().ok()))
        .collect()
}

/// The last `smaxcur` the bridge wrote to bay `dev` (0.1 A).
pub fn last_setpoint(site: &MqttSite, dev: &str) -> Option<i16> {
    site.watcher
        .messages()
        .iter()
        .rev()
        .find_map(|r| match r.decode(&site.mesh) {
            Some(WireMessage::Command {
                dst: Address::Node(mac),
                cmd: Command::AvrSetPar { par, val },
            }) if mac.topic_form().to_string() == dev && par.as_str() == "smaxcur" => Some(val),
            _ => None,
        })
}

/// Boot, a whole session and the backend's requests, against `peer`.
pub async fn whole_session(peer: Peer) -> anyhow::Result<()> {
    let mut cs = PeerProcess::start(&peer, &["--heartbeat".into(), "2".into()]).await?;
    let site = MqttSite::start().await?;
    enable_ocpp(&site, &cs.url(), "")?;
    let mut bridge = site.bridge()?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 2, 11);
    let (a, b) = (simulator.devs[0].clone(), simulator.devs[1].clone());

    // Boot: every bay a charge point.
    for cp in [&a, &b] {
        let boot = cs
            .wait_for(STEP, "BootNotification", |l| {
                l["kind"] == "recv" && l["cp"] == cp.as_str() && l["action"] == "BootNotification"
            })
            .await?;
        assert_eq!(boot["payload"]["chargePointVendor"], "CTRL22");
    }
    // The plugged cars start charging (free charging with the configured tag).
    wait_status(&cs, &a, "Charging").await?;
    let start = cs
        .wait_for(STEP, "StartTransaction", |l| {
            l["kind"] == "recv" && l["cp"] == a.as_str() && l["action"] == "StartTransaction"
        })
        .await?["payload"]
        .clone();
    assert_eq!(start["idTag"], "CTRL22");
    let tx = cs.transaction_id(&a, STEP).await?;

    // SetChargingProfile: 8 A reaches the bay on the mesh within a cycle or two.
    let profile = |limit: f64| {
        json!({"connectorId": 1, "csChargingProfiles": {
            "chargingProfileId": 7, "stackLevel": 1,
            "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}})
    };
    let answer = cs.call(&a, "SetChargingProfile", profile(8.0)).await?;
    assert_eq!(answer["payload"]["status"], "Accepted", "{answer}");
    let lowered_at = tokio::time::Instant::now();
    loop {
        if last_setpoint(&site, &a).is_some_and(|v| v <= 80) {
            break;
        }
        anyhow::ensure!(
            lowered_at.elapsed() < Duration::from_secs(5),
            "the bay was not lowered to 8 A: last smaxcur {:?}",
            last_setpoint(&site, &a)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "SetChargingProfile -> smaxcur <= 8 A in {:?}",
        lowered_at.elapsed()
    );
    let composite = cs
        .call(
            &a,
            "GetCompositeSchedule",
            json!({"connectorId": 1, "duration": 600, "chargingRateUnit": "A"}),
        )
        .await?;
    assert_eq!(composite["payload"]["status"], "Accepted", "{composite}");
    // A cap of 0 A holds the car back (SuspendedEVSE); lifted, it charges again.
    let paused_from = cs.lines().len();
    let answer = cs.call(&a, "SetChargingProfile", profile(0.0)).await?;
    assert_eq!(answer["payload"]["status"], "Accepted", "{answer}");
    wait_status_from(&cs, paused_from, &a, &["SuspendedEVSE"]).await?;
    let answer = cs
        .call(&a, "ClearChargingProfile", json!({"id": 7}))
        .await?;
    assert_eq!(answer["payload"]["status"], "Accepted", "{answer}");
    wait_charging(&cs, &a).await?;

    // TriggerMessage, an unsupported action, bad frames: answered, and the session survives.
    let trigger = cs
        .call(
            &a,
            "TriggerMessage",
            json!({"requestedMessage": "Heartbeat"}),
        )
        .await?;
    assert_eq!(trigger["payload"]["status"], "Accepted", "{trigger}");
    // Reservation is a profile we do not offer (UpdateFirmware: ocpp_firmware.rs).
    let reserve = cs
        .call(
            &a,
            "ReserveNow",
            json!({"connectorId": 1, "expiryDate": "2026-01-01T00:00:00Z", "idTag": "X", "reservationId": 1}),
        )
        .await?;
    assert_eq!(reserve["kind"], "error", "{reserve}");
    assert_eq!(reserve["code"], "NotSupported", "{reserve}");
    let unknown = cs.raw(&a, r#"[2,"raw-1","MakeCoffee",{}]"#).await?;
    assert_eq!(unknown[0], 4, "{unknown}");
    assert_eq!(unknown[1], "raw-1");
    assert_eq!(unknown[2], "NotImplemented", "{unknown}");
    let wrong_type = cs.raw(&a, r#"[2,"raw-2","Reset",{"type":5}]"#).await?;
    assert_eq!(wrong_type[0], 4, "{wrong_type}");
    assert!(
        [
            "TypeConstraintViolation",
            "FormationViolation",
            "PropertyConstraintViolation"
        ]
        .contains(&wrong_type[2].as_str().unwrap_or_default()),
        "{wrong_type}"
    );
    let malformed = cs.raw(&a, r#"[2,"raw-3","Heartbeat""#).await;
    eprintln!("malformed frame answered: {malformed:?}");

    // RemoteStop ends the session: Finishing, StopTransaction with the meter.
    let stop_from = cs.lines().len();
    let stop = cs
        .call(&a, "RemoteStopTransaction", json!({"transactionId": tx}))
        .await?;
    assert_eq!(stop["payload"]["status"], "Accepted", "{stop}");
    // The simulator's stop leaves the bay in OFF with the cable in (Preparing); a node
    // reporting OFF9 shows Finishing.
    wait_status_from(&cs, stop_from, &a, &["Finishing", "Preparing"]).await?;
    let stopped = cs
        .wait_for(STEP, "StopTransaction", |l| {
            l["cp"] == a.as_str() && l["action"] == "StopTransaction"
        })
        .await?["payload"]
        .clone();
    assert_eq!(stopped["transactionId"], tx);
    assert_eq!(stopped["reason"], "Remote");
    let meter_start = start["meterStart"].as_f64().unwrap_or(f64::NAN);
    let meter_stop = stopped["meterStop"].as_f64().unwrap_or(f64::NAN);
    assert!(
        meter_stop >= meter_start,
        "meterStop {meter_stop} < meterStart {meter_start}"
    );
    let energy = energies(&cs, &a, &tx);
    assert!(!energy.is_empty());
    assert!(
        energy.windows(2).all(|w| w[0] <= w[1]),
        "monotonic: {energy:?}"
    );
    assert!(
        energy
            .iter()
            .all(|e| (meter_start..=meter_stop).contains(e)),
        "{energy:?}"
    );

    // RemoteStart on the stopped bay starts a session with the backend's tag.
    let remote = cs
        .call(
            &a,
            "RemoteStartTransaction",
            json!({"connectorId": 1, "idTag": "REMOTE1"}),
        )
        .await?;
    assert_eq!(remote["payload"]["status"], "Accepted", "{remote}");
    cs.wait_for(STEP, "the remote StartTransaction", |l| {
        l["cp"] == a.as_str()
            && l["action"] == "StartTransaction"
            && l["payload"]["idTag"] == "REMOTE1"
    })
    .await?;

    wait_charging(&cs, &a).await?;

    // The car leaves: the transaction stops, Finishing. The whole session in order.
    let from = cs.lines().len();
    site.watcher
        .publish(&format!("/{}/{a}/simctl", site.mesh), r#"{"car":"leave"}"#)
        .await?;
    wait_status_from(&cs, from, &a, &["Finishing", "Available"]).await?;
    cs.wait_from(from, STEP, "the second StopTransaction", |l| {
        l["cp"] == a.as_str()
            && l["action"] == "StopTransaction"
            && l["payload"]["transactionId"] != tx
    })
    .await?;
    let seen = statuses(&cs, &a);
    let mut rest = seen.iter();
    for status in [
        "Preparing",
        "Charging",
        "SuspendedEVSE",
        "Charging",
        "Finishing",
    ] {
        assert!(
            rest.any(|s| s == status),
            "{status} missing in order from {seen:?}"
        );
    }

    // ChangeAvailability Inoperative on a bay without a session disables it.
    let tx_b = cs
        .wait_for(STEP, "b's StartTransaction answer", |l| {
            l["cp"] == b.as_str()
                && l["action"] == "MeterValues"
                && l["payload"]["transactionId"].is_number()
        })
        .await?["payload"]["transactionId"]
        .clone();
    let stop_from = cs.lines().len();
    cs.call(&b, "RemoteStopTransaction", json!({"transactionId": tx_b}))
        .await?;
    wait_status_from(&cs, stop_from, &b, &["Finishing", "Preparing"]).await?;
    let inoperative = cs
        .call(
            &b,
            "ChangeAvailability",
            json!({"connectorId": 0, "type": "Inoperative"}),
        )
        .await?;
    assert_eq!(
        inoperative["payload"]["status"], "Accepted",
        "{inoperative}"
    );
    wait_status(&cs, &b, "Unavailable").await?;

    // Reset: accepted, the charge point reconnects and boots again.
    let from = cs.lines().len();
    let reset = cs.call(&a, "Reset", json!({"type": "Soft"})).await?;
    assert_eq!(reset["payload"]["status"], "Accepted", "{reset}");
    cs.wait_from(from, STEP, "the BootNotification after Reset", |l| {
        l["kind"] == "recv" && l["cp"] == a.as_str() && l["action"] == "BootNotification"
    })
    .await?;
    // The rebooted charge point reports the bay's status again.
    wait_status_from(&cs, from, &a, &["Finishing", "Available", "Preparing"]).await?;

    assert!(
        !cs.received(&a, "Heartbeat").is_empty(),
        "heartbeats when idle"
    );
    // Nothing we sent failed the backend's schema validation (the strict peer logs it).
    let invalid = cs.schema_violations();
    assert!(invalid.is_empty(), "{invalid:#?}");
    let stats = site.wire().check("through the OCPP session")?;
    eprintln!("wire stats: {stats:?}");
    bridge.kill();
    simulator.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ocpp_backend_sees_a_whole_session() -> anyhow::Result<()> {
    whole_session(Peer::python()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_ocpp_rpc_backend_sees_a_whole_session() -> anyhow::Result<()> {
    whole_session(Peer::npm()?).await
}
