//! Solar: where PV, grid and battery power, and external limits, come from. Each device kind
//! gets a file with a pure parser (bytes -> [`validate::RawReading`] or one [`value::Value`]);
//! [`validate`] is the one gate to a [`crate::site::PowerReading`]; [`poller`] does the IO
//! (interval, timeout, counters, rate-limited logs) and sends
//! [`SiteRequest::Power`](crate::handle::SiteRequest::Power) or
//! [`SiteRequest::ExternalLimit`](crate::handle::SiteRequest::ExternalLimit) to the site
//! core. A source that fails sends `Err(why)`: the core drops what it contributed, so a
//! broken source can only lower what bays get.
//!
//! Sign conventions of the core (every adapter converts to these, each file says how its
//! device reports): grid + import, PV >= 0, battery + discharge, SoC 0..=100 %.
//!
//! | kind | device API | file |
//! |---|---|---|
//! | `fronius` | Solar API v1 `GetPowerFlowRealtimeData.fcgi` | [`fronius`] |
//! | `fronius-meter` | Solar API v1 `GetMeterRealtimeData.cgi` (grid per phase) | [`fronius`] |
//! | `solaredge` | monitoring API `currentPowerFlow` | [`solaredge`] |
//! | `envoy` | Enphase IQ Gateway `/production.json` | [`enphase`] |
//! | `sunspec` | SunSpec Modbus TCP (models 1, 101-103, 201-204) | [`sunspec`] |
//! | `sma-modbus` | SMA Modbus profile | [`sma`] |
//! | `sma-speedwire` | SMA Energy Meter / Home Manager multicast | [`speedwire`] |
//! | `shelly` | Gen1 `/status`, Gen2+ `EM.GetStatus`/`EM1.GetStatus` | [`shelly`] |
//! | `tasmota` | `Status 10`, energy plugs and SML | [`tasmota`] |
//! | `homeassistant` | REST `GET /api/states/<entity>` | [`homeassistant`] |
//! | `mqtt` | a topic with a number or JSON | [`mqtt`] |
//! | `http` | any JSON URL + pointer, scale, sign | [`http_json`] |
//!
//! Also the simulated PV day of `demo` ([`simulated`]).

pub mod enphase;
pub mod error;
pub mod fetch;
pub mod fronius;
pub mod health;
pub mod homeassistant;
pub mod http_json;
pub mod json;
pub mod mqtt;
pub mod poller;
pub mod shelly;
pub mod simulated;
pub mod sma;
pub mod solaredge;
pub mod speedwire;
pub mod sunspec;
pub mod tasmota;
pub mod validate;
pub mod value;

use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

pub use error::SourceError;
pub use health::{Health, SourceHealth};

use crate::config::{Config, SolarKind, SolarSourceConfig};
use crate::handle::SiteHandle;
use crate::site::SourceId;
use fetch::{Auth, Get};
use poller::Delivery;
use value::Sample;

/// How an HTTP device's answer is read.
#[derive(Clone, Debug)]
pub enum Parser {
    Fronius,
    FroniusMeter,
    Solaredge,
    Enphase,
    Shelly,
    Tasmota {
        pointer: Option<String>,
        channel: usize,
    },
    HomeAssistant,
    Json {
        pointer: String,
    },
}

impl Parser {
    /// The pure step from an answer's bytes to what it means for the core (fuzzing target).
    ///
    /// # Errors
    /// Whatever the kind's parser or [`validate`] refuses.
    pub fn sample(&self, body: &[u8], source: &SolarSourceConfig) -> Result<Sample, SourceError> {
        let raw = match self {
            Self::Fronius => fronius::parse(body)?,
            Self::FroniusMeter => fronius::parse_meter(body)?,
            Self::Solaredge => solaredge::parse(body)?,
            Self::Enphase => enphase::parse(body)?,
            Self::Shelly => shelly::parse(body)?,
            Self::Tasmota { pointer, channel } => {
                tasmota::parse(body, pointer.as_deref(), *channel)?
            }
            Self::HomeAssistant => return value::sample(homeassistant::parse(body)?, source),
            Self::Json { pointer } => {
                return value::sample(http_json::parse(body, pointer)?, source)
            }
        };
        validate::reading(&raw.keep(&source.measures)).map(Sample::Power)
    }
}

/// Starts a poller per `[[solar.sources]]` entry; the returned [`Health`] has their counters.
///
/// # Errors
/// An HTTP client or broker connection that cannot be set up (the configuration was
/// validated before).
pub fn spawn(config: &Config, handle: &SiteHandle) -> anyhow::Result<Health> {
    let sources = &config.solar.sources;
    let health = Health::new(sources.iter().map(|s| s.kind.name()).collect());
    for (i, source) in sources.iter().enumerate() {
        let id = SourceId(u16::try_from(i).context("more than 65535 solar sources")?);
        let stats = health.stats(id).context("a source without counters")?;
        let delivery = Delivery::new(id, source.clone(), handle.clone(), stats);
        spawn_one(id, source, config, delivery).with_context(|| format!("solar.sources[{i}]"))?;
    }
    Ok(health)
}

fn spawn_one(
    id: SourceId,
    source: &SolarSourceConfig,
    config: &Config,
    delivery: Delivery,
) -> anyhow::Result<()> {
    match source.kind {
        SolarKind::Mqtt => {
            let (tx, rx) = mpsc::channel(16);
            mqtt::spawn(id, source, &config.mqtt, tx)?;
            tokio::spawn(poller::run_pushed(delivery, rx));
        }
        SolarKind::Sunspec => {
            let target = modbus_target(source)?;
            let unit = source.unit_id.unwrap_or(1);
            let source = source.clone();
            tokio::spawn(poller::run_polled(delivery, move || {
                let (target, source) = (target.clone(), source.clone());
                async move {
                    let regs = sunspec::read(resolve(&target).await?, unit).await?;
                    let raw = sunspec::parse(&regs)?;
                    let raw = if source.invert {
                        raw.invert_grid()
                    } else {
                        raw
                    };
                    validate::reading(&raw.keep(&source.measures)).map(Sample::Power)
                }
            }));
        }
        SolarKind::SmaModbus => {
            let target = modbus_target(source)?;
            let unit = source.unit_id.unwrap_or(sma::UNIT);
            let registers = sma::registers_for(&source.measures);
            let source = source.clone();
            tokio::spawn(poller::run_polled(delivery, move || {
                let (target, registers, source) =
                    (target.clone(), registers.clone(), source.clone());
                async move {
                    let values = sma::read(resolve(&target).await?, unit, &registers).await?;
                    let raw = sma::parse(&values)?;
                    validate::reading(&raw.keep(&source.measures)).map(Sample::Power)
                }
            }));
        }
        SolarKind::SmaSpeedwire => {
            let (tx, rx) = mpsc::channel(16);
            speedwire::spawn(source, tx)?;
            tokio::spawn(poller::run_pushed(delivery, rx));
        }
        SolarKind::Envoy
            if source
                .url
                .as_deref()
                .is_some_and(|u| u.trim_end_matches('/').ends_with(enphase::READINGS_PATH)) =>
        {
            let (readings, _) = http_request(source)?;
            let meters = Get {
                url: readings
                    .url
                    .replace(enphase::READINGS_PATH, enphase::METERS_PATH),
                ..readings.clone()
            };
            let client = http_client(source)?;
            let source = source.clone();
            tokio::spawn(poller::run_polled(delivery, move || {
                let (meters, readings, client, source) = (
                    meters.clone(),
                    readings.clone(),
                    client.clone(),
                    source.clone(),
                );
                async move {
                    let raw = enphase::parse_meters(
                        &meters.send(&client).await?,
                        &readings.send(&client).await?,
                    )?;
                    validate::reading(&raw.keep(&source.measures)).map(Sample::Power)
                }
            }));
        }
        _ => {
            let (get, parser) = http_request(source)?;
            let client = http_client(source)?;
            let source = source.clone();
            tokio::spawn(poller::run_polled(delivery, move || {
                let (get, parser, client, source) =
                    (get.clone(), parser.clone(), client.clone(), source.clone());
                async move { parser.sample(&get.send(&client).await?, &source) }
            }));
        }
    }
    Ok(())
}

/// The GET and parser of an HTTP kind.
///
/// # Errors
/// A kind that is not HTTP.
pub fn http_request(source: &SolarSourceConfig) -> anyhow::Result<(Get, Parser)> {
    let base = source.url.clone().unwrap_or_default();
    let basic = || match &source.username {
        Some(username) => Auth::Basic {
            username: username.clone(),
            password: source.password.clone(),
        },
        None => Auth::None,
    };
    let bearer = || source.token.clone().map_or(Auth::None, Auth::Bearer);
    let plain = |url: String, auth: Auth| Get {
        url,
        query: Vec::new(),
        auth,
        timeout: source.timeout(),
    };
    Ok(match source.kind {
        SolarKind::Fronius => (
            plain(fetch::device_url(&base, fronius::PATH), basic()),
            Parser::Fronius,
        ),
        SolarKind::FroniusMeter => {
            let mut get = plain(fetch::device_url(&base, fronius::METER_PATH), basic());
            get.query.push(("Scope", "Device".to_owned()));
            get.query
                .push(("DeviceId", source.unit_id.unwrap_or(0).to_string()));
            (get, Parser::FroniusMeter)
        }
        SolarKind::Shelly => (
            plain(fetch::device_url(&base, shelly::PATH), basic()),
            Parser::Shelly,
        ),
        SolarKind::Tasmota => {
            let mut get = plain(fetch::device_url(&base, tasmota::PATH), Auth::None);
            // Tasmota takes its web password in the query, not in a header.
            if let Some(user) = &source.username {
                get.query.push(("user", user.clone()));
                get.query
                    .push(("password", source.password.clone().unwrap_or_default()));
            }
            let channel = usize::from(source.unit_id.unwrap_or(0));
            (
                get,
                Parser::Tasmota {
                    pointer: source.pointer.clone(),
                    channel,
                },
            )
        }
        SolarKind::Envoy => (
            plain(fetch::device_url(&base, enphase::PATH), bearer()),
            Parser::Enphase,
        ),
        SolarKind::Solaredge => {
            let site = source.site_id.clone().unwrap_or_default();
            let base = if base.is_empty() {
                solaredge::API.to_owned()
            } else {
                base
            };
            let mut get = plain(
                format!("{}{}", base.trim_end_matches('/'), solaredge::path(&site)),
                Auth::None,
            );
            get.query
                .push(("api_key", source.token.clone().unwrap_or_default()));
            (get, Parser::Solaredge)
        }
        SolarKind::Homeassistant => {
            let entity = source.entity.clone().unwrap_or_default();
            let url = format!(
                "{}{}",
                base.trim_end_matches('/'),
                homeassistant::path(&entity)
            );
            (plain(url, bearer()), Parser::HomeAssistant)
        }
        SolarKind::Http => (
            plain(
                base,
                if source.token.is_some() {
                    bearer()
                } else {
                    basic()
                },
            ),
            Parser::Json {
                pointer: source.pointer.clone().unwrap_or_default(),
            },
        ),
        other => anyhow::bail!("kind {:?} is not an HTTP API", other.name()),
    })
}

/// `host:port` of a `modbus://` or `tcp://` URL (port 502 when none is given).
fn modbus_target(source: &SolarSourceConfig) -> anyhow::Result<String> {
    let url = source.url.as_deref().unwrap_or_default();
    let rest = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/');
    anyhow::ensure!(!rest.is_empty(), "url: no host");
    let has_port = rest
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    Ok(if has_port {
        rest.to_owned()
    } else {
        format!("{rest}:502")
    })
}

/// The first address of `host:port`, looked up at each poll (a device's DHCP name may move).
async fn resolve(target: &str) -> Result<std::net::SocketAddr, SourceError> {
    tokio::net::lookup_host(target)
        .await
        .map_err(|e| SourceError::Connect(format!("{target}: {e}")))?
        .next()
        .ok_or_else(|| SourceError::Connect(format!("{target}: no address")))
}

fn http_client(source: &SolarSourceConfig) -> anyhow::Result<reqwest::Client> {
    let timeout = source.timeout();
    let builder = reqwest::Client::builder()
        // The whole request is bounded by the poller; this only ends hopeless connects.
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("ctrl22-bridge/", env!("CARGO_PKG_VERSION")))
        // A device never redirects a reading elsewhere; following one could leak the token.
        .redirect(reqwest::redirect::Policy::none());
    // The IQ Gateway serves its local API with a self-signed certificate (firmware 7+);
    // the bearer token, not the certificate, is what authenticates it there.
    let builder = if source.kind == SolarKind::Envoy {
        builder.danger_accept_invalid_certs(true)
    } else {
        builder
    };
    builder.build().context("HTTP client")
}

#[cfg(test)]
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inverters")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever a device or the network sends, the parsers answer with a reading or an
        /// error, never a panic; and whatever passes validation is bounded.
        #[test]
        fn parsers_never_panic_and_pass_only_bounded_readings(body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let source: SolarSourceConfig =
                toml::from_str("kind = \"http\"\npointer = \"/p\"").expect("source");
            for parser in [
                Parser::Fronius,
                Parser::FroniusMeter,
                Parser::Solaredge,
                Parser::Enphase,
                Parser::Shelly,
                Parser::Tasmota { pointer: None, channel: 1 },
                Parser::HomeAssistant,
                Parser::Json { pointer: "/p".into() },
            ] {
                if let Ok(Sample::Power(r)) = parser.sample(&body, &source) {
                    prop_assert!(r.grid_w.is_none_or(|w| w.abs() <= 1_000_000));
                }
            }
            let _ = speedwire::parse(&body, None);
            let _ = mqtt::parse(&body, Some("/p"));
            let words: Vec<u16> = body.chunks(2).map(|c| u16::from(c[0]) << 8 | u16::from(*c.get(1).unwrap_or(&0))).collect();
            let _ = sunspec::parse(&words);
            let _ = enphase::parse_meters(&body, &body);
        }

        /// JSON with absurd numbers where the power goes is refused, not passed on.
        #[test]
        fn absurd_json_numbers_are_refused(w in prop_oneof![1.0e6f64..1.0e300, -1.0e300f64..-1.0e6]) {
            let body = format!(r#"{{"total_act_power": {w}}}"#);
            let source: SolarSourceConfig =
                toml::from_str("kind = \"shelly\"\nurl = \"http://s\"").expect("source");
            let refused = Parser::Shelly.sample(body.as_bytes(), &source).is_err() || w.abs() <= 1e6;
            prop_assert!(refused);
        }
    }
}
