//! Every HTTP adapter against answers shaped like its device's, served by a local axum
//! server: readings arrive at the site with the core's signs; HTML pages, 401s, timeouts,
//! missing fields, wrong signs and absurd values arrive as errors, counted per kind.

use std::time::Duration;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use ctrl22_bridge::handle::SiteRequest;
use ctrl22_bridge::site::{ExternalLimit, LimitScope};

use super::solar_common::{first_power_of_each, fixture, serve, site, source, start};

type Params = Query<std::collections::HashMap<String, String>>;

fn bearer(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {token}"))
}

fn json(body: String) -> impl IntoResponse {
    ([("content-type", "application/json")], body)
}

fn devices() -> Router {
    Router::new()
        .route(
            "/solar_api/v1/GetPowerFlowRealtimeData.fcgi",
            get(|| async { json(fixture("fronius_powerflow_gen24_storage.json")) }),
        )
        .route(
            "/rpc/EM.GetStatus",
            get(|Query(q): Params| async move {
                match q.get("id").map(String::as_str) {
                    Some("0") => json(fixture("shelly_pro3em_em_getstatus.json")).into_response(),
                    _ => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .route(
            "/status",
            get(|| async { json(fixture("shelly_3em_gen1_status.json")) }),
        )
        .route(
            "/cm",
            get(|Query(q): Params| async move {
                match q.get("cmnd").map(String::as_str) {
                    Some("Status 10") => json(fixture("tasmota_status10_sml.json")).into_response(),
                    _ => StatusCode::BAD_REQUEST.into_response(),
                }
            }),
        )
        .route(
            "/production.json",
            get(|headers: HeaderMap| async move {
                if bearer(&headers, "envoy-jwt") {
                    json(fixture("enphase_production_details.json")).into_response()
                } else {
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }),
        )
        .route(
            "/ivp/meters",
            get(|headers: HeaderMap| async move {
                if bearer(&headers, "envoy-jwt") {
                    json(fixture("enphase_ivp_meters.json")).into_response()
                } else {
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }),
        )
        .route(
            "/ivp/meters/readings",
            get(|| async { json(fixture("enphase_ivp_meters_readings.json")) }),
        )
        .route(
            "/site/4711/currentPowerFlow",
            get(|Query(q): Params| async move {
                match q.get("api_key").map(String::as_str) {
                    Some("se-key") => {
                        json(fixture("solaredge_currentpowerflow_kw_export.json")).into_response()
                    }
                    _ => StatusCode::FORBIDDEN.into_response(),
                }
            }),
        )
        .route(
            "/api/states/sensor.house_grid_power",
            get(|headers: HeaderMap| async move {
                if bearer(&headers, "ha-token") {
                    json(fixture("homeassistant_state_sensor_power.json")).into_response()
                } else {
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }),
        )
        .route(
            "/meter.json",
            get(|| async { json(r#"{"data":{"grid_kw":"-2.5","pv":3100}}"#.into()) }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_http_adapter_reads_its_device_shape() {
    let addr = serve(devices()).await;
    let url = format!("http://{addr}");
    let mut site = site();
    let sources = vec![
        source(&format!(
            "kind = \"fronius\"\nurl = \"{url}\"\nmeasures = [\"grid\", \"pv\", \"battery\", \"soc\"]\ninterval = \"100ms\""
        )),
        source(&format!("kind = \"shelly\"\nurl = \"{url}\"\ninterval = \"100ms\"")),
        source(&format!("kind = \"shelly\"\nurl = \"{url}/status\"\ninterval = \"100ms\"")),
        source(&format!("kind = \"tasmota\"\nurl = \"{url}\"\ninterval = \"100ms\"")),
        source(&format!(
            "kind = \"envoy\"\nurl = \"{url}\"\ntoken = \"envoy-jwt\"\nmeasures = [\"grid\", \"pv\"]\ninterval = \"100ms\""
        )),
        source(&format!(
            "kind = \"solaredge\"\nurl = \"{url}\"\nsite_id = \"4711\"\ntoken = \"se-key\"\nmeasures = [\"grid\", \"pv\", \"battery\", \"soc\"]\ninterval = \"100ms\""
        )),
        source(&format!(
            "kind = \"homeassistant\"\nurl = \"{url}\"\nentity = \"sensor.house_grid_power\"\ntoken = \"ha-token\"\ninterval = \"100ms\""
        )),
        source(&format!(
            "kind = \"http\"\nurl = \"{url}/meter.json\"\npointer = \"/data/grid_kw\"\nscale = 1000\ninterval = \"100ms\""
        )),
        source(&format!(
            "kind = \"enphase\"\nurl = \"{url}/ivp/meters/readings\"\ntoken = \"envoy-jwt\"\nmeasures = [\"grid\", \"pv\"]\ninterval = \"100ms\""
        )),
    ];
    let health = start(&site, sources, None);
    let readings = first_power_of_each(&mut site, 9).await;
    let ok = |i: u16| {
        readings[&i]
            .clone()
            .unwrap_or_else(|e| panic!("source {i}: {e}"))
    };

    let fronius = ok(0);
    assert_eq!(
        (
            fronius.grid_w,
            fronius.pv_w,
            fronius.battery_w,
            fronius.battery_soc_pct
        ),
        (Some(-650), Some(3687), Some(-1500), Some(4.6))
    );
    let pro3em = ok(1);
    assert_eq!(pro3em.grid_w, Some(104));
    assert_eq!(pro3em.grid_phase_w, Some([4, 45, 54]));
    assert_eq!(ok(2).grid_w, Some(213));
    let sml = ok(3);
    assert_eq!(
        (sml.grid_w, sml.grid_phase_w),
        (Some(-36), Some([60, -111, 14]))
    );
    let envoy = ok(4);
    assert_eq!((envoy.grid_w, envoy.pv_w), (Some(-4980), Some(5305)));
    assert_eq!(envoy.grid_phase_a, Some([-12.263, -4.015, -5.11]));
    let solaredge = ok(5);
    assert_eq!(
        (
            solaredge.grid_w,
            solaredge.pv_w,
            solaredge.battery_w,
            solaredge.battery_soc_pct
        ),
        (Some(-1090), Some(6340), Some(-5000), Some(93.0))
    );
    assert_eq!(ok(6).grid_w, Some(77));
    assert_eq!(ok(7).grid_w, Some(-2500));
    let meters = ok(8);
    assert_eq!((meters.grid_w, meters.pv_w), (Some(-4912), Some(5236)));
    // Kept only what each is configured for: the Shelly measures the grid alone.
    assert_eq!(pro3em.pv_w, None);

    let healthy: Vec<bool> = health
        .snapshot()
        .iter()
        .map(ctrl22_bridge::solar::SourceHealth::healthy)
        .collect();
    assert_eq!(healthy, vec![true; 9]);
}

fn broken_devices() -> Router {
    Router::new()
        .route(
            "/html",
            get(|| async { Html("<!DOCTYPE html><html><body>Login</body></html>") }),
        )
        .route(
            "/login",
            get(|| async { (StatusCode::UNAUTHORIZED, "unauthorized") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                json(r#"{"p":1}"#.into())
            }),
        )
        .route("/nan", get(|| async { json(r#"{"p":"NaN"}"#.into()) }))
        .route("/huge", get(|| async { json(r#"{"p":1e12}"#.into()) }))
        .route("/empty", get(|| async { json("{}".into()) }))
        .route(
            "/solar_api/v1/GetPowerFlowRealtimeData.fcgi",
            // PV of -5 kW: a device whose sign is not what the adapter expects.
            get(|| async {
                json(r#"{"Body":{"Data":{"Site":{"P_Grid":100,"P_PV":-5000,"P_Akku":null}}},"Head":{"Status":{"Code":0}}}"#.into())
            }),
        )
        .route(
            "/gone/api/states/sensor.grid",
            get(|| async {
                json(r#"{"entity_id":"sensor.grid","state":"unavailable","attributes":{}}"#.into())
            }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_answers_are_typed_errors_and_the_source_is_unhealthy() {
    let addr = serve(broken_devices()).await;
    let url = format!("http://{addr}");
    let http = |path: &str| {
        source(&format!(
            "kind = \"http\"\nurl = \"{url}{path}\"\npointer = \"/p\"\ninterval = \"100ms\"\ntimeout = \"300ms\""
        ))
    };
    let sources = vec![
        http("/html"),
        http("/login"),
        http("/slow"),
        http("/nan"),
        http("/huge"),
        http("/empty"),
        source(&format!(
            "kind = \"fronius\"\nurl = \"{url}\"\nmeasures = [\"pv\"]\ninterval = \"100ms\""
        )),
        source(&format!(
            "kind = \"homeassistant\"\nurl = \"{url}/gone\"\nentity = \"sensor.grid\"\ntoken = \"t\"\ninterval = \"100ms\""
        )),
        // Nobody listens on port 1.
        source("kind = \"http\"\nurl = \"http://127.0.0.1:1/p\"\npointer = \"/p\"\ninterval = \"100ms\""),
    ];
    let count = sources.len();
    let mut site = site();
    let health = start(&site, sources, None);
    let results = first_power_of_each(&mut site, count).await;
    for (i, result) in &results {
        assert!(result.is_err(), "source {i}: {result:?}");
    }
    let kinds: Vec<Vec<&str>> = health
        .snapshot()
        .iter()
        .map(|h| {
            assert!(!h.healthy(), "{h:?}");
            h.errors_total.keys().copied().collect()
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            vec!["not_json"],
            vec!["unauthorized"],
            vec!["timeout"],
            vec!["absurd"],
            vec!["absurd"],
            vec!["missing"],
            vec!["absurd"],
            vec!["unavailable"],
            vec!["connect"],
        ]
    );
    assert!(
        results[&0].as_ref().unwrap_err().contains("HTML"),
        "{results:?}"
    );
    assert!(
        results[&1].as_ref().unwrap_err().contains("401"),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_limits_from_http_and_a_home_assistant_relay() {
    let relay_on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let relay = relay_on.clone();
    let app = Router::new()
        .route("/ems", get(|| async { json(r#"{"limit_w":4200}"#.into()) }))
        .route(
            "/api/states/binary_sensor.dimming",
            get(move || {
                let on = relay.load(std::sync::atomic::Ordering::SeqCst);
                async move {
                    let state = if on { "on" } else { "off" };
                    json(format!(r#"{{"entity_id":"binary_sensor.dimming","state":"{state}","attributes":{{}}}}"#))
                }
            }),
        )
        .route("/down", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    let addr = serve(app).await;
    let url = format!("http://{addr}");
    let mut config = ctrl22_bridge::config::Config::default();
    config.site.circuits =
        vec![toml::from_str("id = \"garage\"\nmax_current = [32, 32, 32]").expect("circuit")];
    config.solar.sources = vec![
        source(&format!(
            "kind = \"http\"\nurl = \"{url}/ems\"\npointer = \"/limit_w\"\nmeasures = [\"limit\"]\napplies_to = \"site\"\nunit = \"W\"\ninterval = \"100ms\""
        )),
        source(&format!(
            "kind = \"homeassistant\"\nurl = \"{url}\"\nentity = \"binary_sensor.dimming\"\ntoken = \"t\"\nmeasures = [\"limit\"]\napplies_to = \"garage\"\nunit = \"A\"\nwhen_on = 6\ninterval = \"100ms\""
        )),
        source(&format!(
            "kind = \"http\"\nurl = \"{url}/down\"\npointer = \"/x\"\nmeasures = [\"limit\"]\napplies_to = \"site\"\nunit = \"W\"\non_stale = 1000\ninterval = \"100ms\""
        )),
    ];
    config.validate().expect("valid");
    let site = super::solar_common::site();
    let _health = ctrl22_bridge::solar::spawn(&config, &site.handle).expect("start");
    let mut site = site;
    let mut seen = std::collections::BTreeMap::new();
    let mut lifted = false;
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(request) = site.requests.recv().await {
            if let SiteRequest::ExternalLimit {
                source,
                scope,
                limit,
            } = request
            {
                if source.0 == 1 && limit.is_none() {
                    lifted = true;
                }
                seen.entry(source.0).or_insert((scope, limit));
                if seen.len() == 3 {
                    relay_on.store(false, std::sync::atomic::Ordering::SeqCst);
                }
                if seen.len() == 3 && lifted {
                    break;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("limits seen: {seen:?}, lifted: {lifted}"));
    assert_eq!(
        seen[&0],
        (LimitScope::Site, Some(ExternalLimit::Watts(4200)))
    );
    let six = ctrl22_bridge::bay::Deciamps::from_amps(6);
    assert_eq!(
        seen[&1],
        (
            LimitScope::Circuit("garage".into()),
            Some(ExternalLimit::Amps([six; 3]))
        )
    );
    // The failing source falls to its safe value.
    assert_eq!(
        seen[&2],
        (LimitScope::Site, Some(ExternalLimit::Watts(1000)))
    );
}

#[test]
fn solar_source_mistakes_name_their_key() {
    let problems = |toml_text: &str| {
        let mut config = ctrl22_bridge::config::Config::default();
        config.solar.sources = vec![source(toml_text)];
        config
            .validate()
            .map_err(|e| e.to_string())
            .expect_err("invalid")
    };
    let e = problems("kind = \"http\"\nurl = \"http://m\"");
    assert!(
        e.contains("solar.sources[0].pointer: is required for kind \"http\""),
        "{e}"
    );
    let e = problems("kind = \"solaredge\"");
    assert!(
        !e.contains("solar.sources[0].url") && e.contains("site_id") && e.contains("token"),
        "{e}"
    );
    let e = problems("kind = \"fronius\"");
    assert!(e.contains("solar.sources[0].url: is required"), "{e}");
    let e = problems("kind = \"http\"\nurl = \"http://m\"\npointer = \"p\"\nscale = 0");
    assert!(
        e.contains("not a JSON pointer") && e.contains("solar.sources[0].scale"),
        "{e}"
    );
    let e =
        problems("kind = \"mqtt\"\ntopic = \"t\"\nmeasures = [\"limit\"]\napplies_to = \"barn\"");
    assert!(
        e.contains("\"barn\" is neither") && e.contains("solar.sources[0].unit"),
        "{e}"
    );
    let e = problems("kind = \"mqtt\"\ntopic = \"t\"\nmeasures = [\"limit\"]\napplies_to = \"site\"\nunit = \"W\"\non_stale = -5");
    assert!(
        e.contains("solar.sources[0].on_stale: -5 is outside"),
        "{e}"
    );
    let e = problems("kind = \"fronius\"\nurl = \"http://f\"\nmeasures = [\"limit\"]");
    assert!(e.contains("\"limit\" comes from kind"), "{e}");
    let e = problems("kind = \"shelly\"\nurl = \"http://s\"\non_stale = \"keep\"");
    assert!(e.contains("solar.sources[0].on_stale: only applies"), "{e}");
    let e = problems("kind = \"mqtt\"\ntopic = \"t\"\nmeasures = [\"grid\", \"pv\"]");
    assert!(e.contains("carries one value"), "{e}");
}

/// `kind = "fronius-meter"`: the Smart Meter behind a Fronius inverter's Solar API, asked
/// for one device, per phase with the exporting phase's current signed negative.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fronius_smart_meter_per_phase() {
    let meter = serve(Router::new().route(
        "/solar_api/v1/GetMeterRealtimeData.cgi",
        get(|Query(q): Params| async move {
            if q.get("Scope").map(String::as_str) == Some("Device")
                && q.get("DeviceId").map(String::as_str) == Some("2")
            {
                json(fixture("fronius_meter_device.json")).into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        }),
    ))
    .await;
    let mut site = site();
    let _health = start(
        &site,
        vec![source(&format!(
            "kind = \"fronius-meter\"\nurl = \"http://{meter}\"\nunit_id = 2\ninterval = \"100ms\""
        ))],
        None,
    );
    let readings = first_power_of_each(&mut site, 1).await;
    let r = readings[&0].clone().expect("a reading");
    assert_eq!(r.grid_w, Some(3901));
    assert_eq!(r.grid_phase_w, Some([1841, -520, 2580]));
    assert_eq!(r.grid_phase_a, Some([8.1, -2.4, 11.3]));
}
