//! An MQTT source against the real Mosquitto: numbers and JSON become readings, garbage and
//! silence become errors, a relay topic switches an external limit.

use std::time::Duration;

use ctrl22_bridge::handle::SiteRequest;
use ctrl22_bridge::site::ExternalLimit;
use ctrl22_testkit::{Mosquitto, Recorder};

use super::solar_common::{site, source, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_values_errors_silence_and_a_relay() {
    let broker = Mosquitto::start().expect("mosquitto");
    let mut site = site();
    let health = start(
        &site,
        vec![
            source("kind = \"mqtt\"\ntopic = \"meter/grid\"\ninterval = \"100ms\"\ntimeout = \"1500ms\""),
            source("kind = \"mqtt\"\ntopic = \"victron/pv\"\npointer = \"/value\"\nmeasures = [\"pv\"]\ninterval = \"100ms\""),
            source("kind = \"mqtt\"\ntopic = \"dso/relay\"\nmeasures = [\"limit\"]\napplies_to = \"site\"\nunit = \"W\"\nwhen_on = 4200\ninterval = \"100ms\""),
        ],
        Some(broker.url()),
    );
    let publisher = Recorder::connect(broker.port(), "solar-test", &[])
        .await
        .expect("client");
    // Until the sources have subscribed, messages are lost: publish until they arrive.
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut step = 0u32;
        loop {
            match step {
                0 => publisher.publish("meter/grid", "1234.5").await,
                1 => publisher.publish("victron/pv", r#"{"value": 260.6}"#).await,
                2 => publisher.publish("meter/grid", "NaN").await,
                3 => publisher.publish("dso/relay", "ON").await,
                _ => publisher.publish("dso/relay", "OFF").await,
            }
            .expect("publish");
            let deadline = tokio::time::sleep(Duration::from_millis(200));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    () = &mut deadline => break,
                    Some(r) = site.requests.recv() => {
                        let progressed = match (&r, step) {
                            (SiteRequest::Power { reading: Ok(p), .. }, 0) => p.grid_w == Some(1235),
                            (SiteRequest::Power { reading: Ok(p), .. }, 1) => p.pv_w == Some(261),
                            (SiteRequest::Power { reading: Err(e), .. }, 2) => e.contains("not plausible"),
                            (SiteRequest::ExternalLimit { limit: Some(ExternalLimit::Watts(4200)), .. }, 3)
                            | (SiteRequest::ExternalLimit { limit: None, .. }, 4) => true,
                            _ => false,
                        };
                        if progressed {
                            got.push(format!("{r:?}"));
                            step += 1;
                            break;
                        }
                    }
                }
            }
            if step == 5 {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("got only {got:?}"));
    // Silence on meter/grid for longer than its timeout: stale, an error for the core.
    let stale = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(SiteRequest::Power {
                source,
                reading: Err(e),
            }) = site.requests.recv().await
            {
                if source.0 == 0 && e.contains("no message") {
                    return e;
                }
            }
        }
    })
    .await
    .expect("a stale error");
    assert!(stale.contains("1.5s"), "{stale}");
    let grid = &health.snapshot()[0];
    assert_eq!(grid.errors_total.get("absurd"), Some(&1));
    assert!(grid.errors_total.get("stale").is_some_and(|n| *n >= 1));
    assert!(!grid.healthy());
}
