//! The bridge binary steering real (simulated) cars by a grid meter that sees them: a Shelly
//! Pro 3EM served by the test answers `EM.GetStatus` with, per phase, what the cars really
//! draw (from their heartbeats on the broker) plus a house load the test sets. When the house
//! load jumps the cars come down so that the grid current stays under the fuse; when the
//! meter answers 500 the cars fall back to the fuse minus `site.house_reserve`, and the
//! API's `power` object says so. A SunSpec inverter and meter over Modbus TCP, closed the
//! same way, makes `pv` bays follow the sun.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use ctrl22_testkit::bridge::http_get;
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::wire;
use ctrl22_testkit::{free_port, Recorder};

use crate::mqtt_site::MqttSite;

/// What the meter answers: the house's own load per phase (A) and whether it fails.
#[derive(Clone, Default)]
struct House {
    load_a: Arc<Mutex<(f64, bool)>>,
}

impl House {
    fn set(&self, amps: f64, failing: bool) {
        *self.load_a.lock().expect("house") = (amps, failing);
    }
}

/// The cars' measured current per site phase (A), from their last heartbeats (bays wired
/// straight, as the simulator's are).
fn cars_draw_a(mesh: &str, watcher: &Recorder) -> [f64; 3] {
    let mut sum = [0.0; 3];
    for hb in wire::latest_heartbeats(mesh, &watcher.messages()).values() {
        for (s, c) in sum.iter_mut().zip(hb.cur) {
            *s += f64::from(c.get()) / 10.0;
        }
    }
    sum
}

/// `EM.GetStatus` of a Shelly Pro 3EM (shape of
/// <https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM#emgetstatus>):
/// unsigned currents, signed active powers (import positive).
fn em_status(phase_a: [f64; 3]) -> serde_json::Value {
    let w = phase_a.map(|a| a * 230.0);
    serde_json::json!({
        "id": 0,
        "a_current": phase_a[0], "a_voltage": 230.0, "a_act_power": w[0], "a_aprt_power": w[0], "a_pf": 1.0, "a_freq": 50.0,
        "b_current": phase_a[1], "b_voltage": 230.0, "b_act_power": w[1], "b_aprt_power": w[1], "b_pf": 1.0, "b_freq": 50.0,
        "c_current": phase_a[2], "c_voltage": 230.0, "c_act_power": w[2], "c_aprt_power": w[2], "c_pf": 1.0, "c_freq": 50.0,
        "n_current": null,
        "total_current": phase_a.iter().sum::<f64>(),
        "total_act_power": w.iter().sum::<f64>(),
        "total_aprt_power": w.iter().sum::<f64>(),
        "user_calibrated_phase": []
    })
}

/// Serves the meter on `listener` (bound before the bridge's configuration was written).
fn start_meter(listener: tokio::net::TcpListener, mesh: String, watcher: Recorder, house: House) {
    let app = axum::Router::new()
        .route(
            "/rpc/EM.GetStatus",
            get(
                |State((mesh, watcher, house)): State<(String, Recorder, House)>| async move {
                    let (load, failing) = *house.load_a.lock().expect("house");
                    if failing {
                        return (StatusCode::INTERNAL_SERVER_ERROR, "<html>500</html>")
                            .into_response();
                    }
                    let cars = cars_draw_a(&mesh, &watcher);
                    axum::Json(em_status(cars.map(|c| c + load))).into_response()
                },
            ),
        )
        .with_state((mesh, watcher, house));
    tokio::spawn(async move { axum::serve(listener, app).await });
}

async fn site_power(http: SocketAddr) -> serde_json::Value {
    let text = http_get(http, "/api/v1/site").await.unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("power").cloned())
        .unwrap_or_default()
}

/// Waits until the cars draw at most `max_a` on every phase; returns what they draw.
async fn wait_cars_at_most(
    mesh: &str,
    watcher: &Recorder,
    max_a: f64,
    within: Duration,
) -> anyhow::Result<[f64; 3]> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let draw = cars_draw_a(mesh, watcher);
        if draw.iter().all(|a| *a <= max_a) {
            return Ok(draw);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the cars still draw {draw:?} A, more than {max_a} A, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Over `span`, the grid current (cars + house) never above `limit_a` on any phase.
async fn hold_for(
    mesh: &str,
    watcher: &Recorder,
    house_a: f64,
    limit_a: f64,
    span: Duration,
) -> anyhow::Result<()> {
    let end = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < end {
        let draw = cars_draw_a(mesh, watcher);
        anyhow::ensure!(
            draw.iter().all(|a| a + house_a <= limit_a),
            "grid {:?} A with a house load of {house_a} A, fuse + tolerance {limit_a} A",
            draw.map(|a| a + house_a)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cars_make_room_for_the_house_and_fall_back_to_the_reserve_when_the_meter_fails(
) -> anyhow::Result<()> {
    // The meter's port goes into the configuration; it serves once the broker's watcher
    // exists.
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let meter = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let meter_port = meter.local_addr()?.port();
    let site = MqttSite::start_configured(|c| {
        c.http_listen = http;
        c.max_current_amps = [32; 3];
        c.extra_toml = format!(
            "[[solar.sources]]\nkind = \"shelly\"\nurl = \"http://127.0.0.1:{meter_port}\"\n\
             interval = \"250ms\"\ntimeout = \"1s\"\n"
        );
    })
    .await?;
    // A grid meter needs the house's worst case per phase for when it goes silent.
    let text = std::fs::read_to_string(&site.config)?;
    std::fs::write(
        &site.config,
        text.replacen("[site]\n", "[site]\nhouse_reserve = [20, 20, 20]\n", 1),
    )?;
    let (mesh, watcher) = (site.mesh.clone(), site.watcher.clone());
    let house = House::default();
    house.set(2.0, false);
    start_meter(meter, mesh.clone(), watcher.clone(), house.clone());

    let _bridge = site.bridge()?;
    let _simulator = Simulator::start(&site.broker, &mesh, 4, 11);
    let wire = site.wire();
    wire.wait_charging(0, 2, Duration::from_secs(40)).await?;
    // The API shows the meter's house load (net of the cars: about 2 A a phase).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let power = site_power(http).await;
        let house_a = power["house_load_a"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if power["house_load_managed"] == true
            && house_a.len() == 3
            && house_a.iter().all(|a| a.as_f64().is_some_and(|a| a < 5.0))
        {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no house load in the API: {power}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The house load jumps to 22 A a phase: the cars get at most 10 A a phase together,
    // within one reading, a control cycle and the cars' own ramp.
    // First the cars take more than the house will leave them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let before = cars_draw_a(&mesh, &watcher);
        if before.iter().any(|a| *a > 14.0) {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the cars draw too little for the jump to matter: {before:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    house.set(22.0, false);
    wait_cars_at_most(&mesh, &watcher, 10.0 + 1.0, Duration::from_secs(12)).await?;
    hold_for(&mesh, &watcher, 22.0, 32.0 + 1.0, Duration::from_secs(5)).await?;
    let power = site_power(http).await;
    let house_a = power["house_load_a"][0].as_f64().unwrap_or_default();
    assert!((20.0..24.0).contains(&house_a), "{power}");

    // The house settles at 8 A, then the meter breaks (HTML 500 pages): after its timeout
    // the reserve (20 A) is assumed, so the cars get at most 12 A a phase, and the API says
    // the meter is stale.
    house.set(8.0, false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    house.set(8.0, true);
    wait_cars_at_most(&mesh, &watcher, 12.0 + 1.0, Duration::from_secs(15)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let power = site_power(http).await;
        if power["house_fallback"] == true && power["house_load_a"].is_null() {
            let source = &power["sources"][0];
            assert_eq!(source["healthy"], false, "{power}");
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no fallback in the API: {power}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    hold_for(&mesh, &watcher, 0.0, 12.0 + 1.0, Duration::from_secs(4)).await?;
    wire.check("with the house load and the meter failing")?;
    Ok(())
}

/// A SunSpec inverter with its meter (Modbus TCP, tokio-modbus server in the test) as the
/// PV and grid source of the bridge binary; the meter sees the cars minus the PV. A `pv` bay
/// charges from the sun and pauses when it sets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pv_bays_follow_a_sunspec_inverter() -> anyhow::Result<()> {
    use ctrl22_bridge::solar::sunspec;
    let regs = Arc::new(Mutex::new(sunspec::example_map(0, [100; 3], [50; 3])));
    let modbus = super::solar_modbus::serve_sunspec(Arc::clone(&regs)).await;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let site = MqttSite::start_configured(|c| {
        c.http_listen = http;
        c.extra_toml = format!(
            "[site.surplus]\nenable_delay = \"2s\"\ndisable_delay = \"3s\"\n\n\
             [[solar.sources]]\nkind = \"sunspec\"\nurl = \"modbus://{modbus}\"\n\
             measures = [\"grid\", \"pv\"]\ninterval = \"250ms\"\n"
        );
    })
    .await?;
    let text = std::fs::read_to_string(&site.config)?;
    std::fs::write(
        &site.config,
        text.replacen(
            "[site]\n",
            "[site]\nhouse_reserve = [10, 10, 10]\ndefault_mode = \"pv\"\n",
            1,
        ),
    )?;
    let (mesh, watcher) = (site.mesh.clone(), site.watcher.clone());
    let pv_w = Arc::new(Mutex::new(8_000.0_f64));
    // The closed loop: the meter sees the cars, a 100 W house and the PV spread on 3 phases.
    let feed = {
        let (regs, pv_w, mesh, watcher) = (
            Arc::clone(&regs),
            Arc::clone(&pv_w),
            mesh.clone(),
            watcher.clone(),
        );
        tokio::spawn(async move {
            loop {
                let pv = *pv_w.lock().expect("pv");
                let phase_w = cars_draw_a(&mesh, &watcher).map(|a| a * 230.0 + 100.0 - pv / 3.0);
                #[allow(clippy::cast_possible_truncation)]
                let map = sunspec::example_map(
                    pv as i16,
                    phase_w.map(|w| w as i16),
                    phase_w.map(|w| (w / 2.3) as i16),
                );
                *regs.lock().expect("regs") = map;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let _bridge = site.bridge()?;
    let _simulator = Simulator::start(&site.broker, &mesh, 2, 5);
    let wire = site.wire();
    // 8 kW of sun: about 11 A a phase for three-phase cars, so at least one bay charges and
    // the cars stay within the sun (plus the hysteresis and a meter reading's lag).
    wire.wait_charging(0, 1, Duration::from_secs(40)).await?;
    let site_json =
        serde_json::from_str::<serde_json::Value>(&http_get(http, "/api/v1/site").await?)?;
    assert_eq!(site_json["pv_power_w"], 8000, "{site_json}");
    hold_for(
        &mesh,
        &watcher,
        0.0,
        8_000.0 / 690.0 + 3.0,
        Duration::from_secs(4),
    )
    .await?;
    // Sunset: the pv bays pause after the disable delay (and min_on).
    *pv_w.lock().expect("pv") = 0.0;
    wait_cars_at_most(&mesh, &watcher, 1.0, Duration::from_secs(25)).await?;
    wire.check("pv bays following the sun")?;
    feed.abort();
    Ok(())
}
