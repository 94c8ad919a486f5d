//! The bodies of the fuzz targets in the repository's `fuzz/` crate and of their corpus
//! replay (`tests/core/fuzz_corpus.rs`): one function per target, so the fuzzer and
//! `cargo test` check the same things. Each takes the fuzzer's bytes and panics only on a
//! finding. Not part of the API.

use std::sync::OnceLock;

use ctrl22_ha::ctrl22::Topics;

use crate::clock::Now;
use crate::config::Config;
use crate::ha::command;
use crate::ha::publisher::site_id;
use crate::mesh::{Frame, ObjectSplitter};
use crate::runtime::site_settings;
use crate::site::{ExternalLimit, Input, PowerReading, Site, Stored};
use crate::solar::validate::{self, MAX_CURRENT_A, MAX_POWER_W};
use crate::solar::value::{self, Sample};
use crate::solar::{enphase, mqtt, sma, speedwire, sunspec, Parser};

/// The site every target that drives the core runs against: the example configuration
/// (circuits, two configured bays).
const EXAMPLE_CONFIG: &str = include_str!("../examples/ctrl22.toml");

/// 2026-12-01T00:00:00Z.
const START: Now = Now {
    mono_ms: 1_000,
    wall_ms: 1_796_083_200_000,
};

/// A fresh site core of the example configuration (parsed once: most of a run's time
/// would otherwise go to reading the same file).
fn example() -> (&'static Config, Site) {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        Config::from_toml(EXAMPLE_CONFIG).expect("the example configuration is valid")
    });
    let site = Site::new(site_settings(config), Stored::default(), START)
        .expect("the example site is valid");
    (config, site)
}

/// `ha_command`: `<topic>\n<payload>` as it arrives from the broker: the topic parsed as one
/// of the site's command topics, the payload into a setting change, the change applied to the
/// site core, then a control cycle.
pub fn ha_command(data: &[u8]) {
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let (config, mut site) = example();
    let topics = Topics::new(&site_id(&config.site.name)).expect("the example site id is valid");
    let Some(target) = topics.parse_command(&String::from_utf8_lossy(topic)) else {
        return;
    };
    if let Ok(change) = command::parse(&target, payload) {
        let _ = site.apply(START, change);
        site.handle(START, Input::Tick);
    }
}

/// `api_body`: a `PUT /api/v1/site` (first byte even) or `PUT /api/v1/nodes/{dev}` body
/// (odd), through the handler's parse step and into the site core, then a control cycle.
pub fn api_body(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (_, mut site) = example();
    let bay = (selector % 2 == 1).then(|| crate::bay::BayId("d8a01d55a710".to_owned()));
    if let Ok(changes) = crate::http::body_changes(bay.as_ref(), body) {
        let _ = site.apply_all(START, changes);
        site.handle(START, Input::Tick);
    }
}

/// `config_toml`: configuration text as `check-config` reads it (defaults, the file, then
/// validation). What is accepted must print back as TOML that is accepted again, and must
/// make a site core (or refuse with an error).
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    let printed = config
        .to_toml()
        .unwrap_or_else(|e| panic!("an accepted configuration does not print: {e}"));
    if let Err(e) = Config::from_toml(&printed) {
        panic!("an accepted configuration printed as\n{printed}\nis refused: {e}");
    }
    let _ = Site::new(site_settings(&config), Stored::default(), START);
}

/// `tcp_split`: the root's TCP uplink. The first byte picks the size of the reads the bytes
/// arrive in. The splitter must keep its memory at one object's cap, find the same frames
/// whatever the reads, and hand out only objects within the cap; each object is decoded as a
/// node message and fed to the site core, with a control cycle after each read that
/// completed frames.
pub fn tcp_split(data: &[u8]) {
    const MAX: usize = ctrl22_node::mesh::MAX_MESSAGE_LEN;
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let read_len = usize::from(selector).max(1);

    let mut whole = Vec::new();
    ObjectSplitter::new(MAX).push(stream, &mut whole);

    let (_, mut site) = example();
    site.handle(
        START,
        Input::MeshLink {
            up: true,
            reply_deadline_ms: 5_000,
        },
    );
    let mut splitter = ObjectSplitter::new(MAX);
    let mut frames = Vec::new();
    let mut now = START;
    for read in stream.chunks(read_len) {
        let before = frames.len();
        splitter.push(read, &mut frames);
        assert!(splitter.buffered() <= MAX + 1, "the splitter grew");
        for frame in &frames[before..] {
            let Frame::Object(object) = frame else {
                continue;
            };
            // The scanner counts nesting, not bracket kinds: `{]` ends an object too (the
            // decoder refuses it), so the last byte is either closer.
            assert!(
                object.len() <= MAX
                    && object.first() == Some(&b'{')
                    && matches!(object.last(), Some(b'}' | b']')),
                "not an object within the cap: {object:?}"
            );
            if let Ok((src, msg)) = ctrl22_node::mesh::decode_uplink_tcp(object) {
                site.handle(now, Input::Mesh { src, msg });
            }
        }
        if frames.len() > before {
            now.mono_ms += 100;
            now.wall_ms += 100;
            site.handle(now, Input::Tick);
        }
    }
    assert_eq!(frames, whole, "frames depend on how the bytes were read");
}

/// `solar`: an answer of a power source. The first byte picks the parser (every HTTP kind,
/// an MQTT payload, SunSpec registers, SMA register pairs, a Speedwire datagram, Enphase's meters and readings
/// split at the first `\n`) and, for single values, whether the source measures the grid or
/// an external limit. Each answers with a reading or a typed error, never a panic, and what
/// passes is finite and within the bounds of [`validate`].
pub fn solar(data: &[u8]) {
    static SOURCES: OnceLock<[crate::config::SolarSourceConfig; 2]> = OnceLock::new();
    let [power_source, limit_source] = SOURCES.get_or_init(|| {
        let source = |toml: &str| toml::from_str(toml).expect("a valid source");
        [
            source("kind = \"http\"\npointer = \"/p\""),
            source("kind = \"http\"\npointer = \"/p\"\nmeasures = [\"limit\"]"),
        ]
    });
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let source = if selector & 0x80 == 0 {
        power_source
    } else {
        limit_source
    };
    let raw = match selector % 13 {
        0 => Parser::Fronius.sample(body, source),
        1 => Parser::Solaredge.sample(body, source),
        2 => Parser::Enphase.sample(body, source),
        3 => Parser::Shelly.sample(body, source),
        4 => Parser::Tasmota {
            pointer: None,
            channel: 1,
        }
        .sample(body, source),
        5 => Parser::Tasmota {
            pointer: Some("/StatusSNS/MT175/P".to_owned()),
            channel: 0,
        }
        .sample(body, source),
        6 => Parser::HomeAssistant.sample(body, source),
        7 => Parser::Json {
            pointer: "/p".to_owned(),
        }
        .sample(body, source),
        8 => mqtt::parse(body, Some("/p")).and_then(|v| value::sample(v, source)),
        9 => {
            let words: Vec<u16> = body
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
                .collect();
            sunspec::parse(&words).and_then(|raw| validate::reading(&raw).map(Sample::Power))
        }
        10 => match speedwire::parse(body, None) {
            Ok(Some(raw)) => validate::reading(&raw).map(Sample::Power),
            Ok(None) | Err(_) => return,
        },
        11 => {
            // Register pairs as read: address, high word, low word.
            let values = body
                .chunks_exact(6)
                .map(|c| {
                    let word = |i: usize| u16::from_be_bytes([c[i], c[i + 1]]);
                    (word(0), [word(2), word(4)])
                })
                .collect();
            sma::parse(&values).and_then(|raw| validate::reading(&raw).map(Sample::Power))
        }
        _ => {
            let (meters, readings) = match body.iter().position(|&b| b == b'\n') {
                Some(at) => (&body[..at], &body[at + 1..]),
                None => (body, &[][..]),
            };
            enphase::parse_meters(meters, readings)
                .and_then(|raw| validate::reading(&raw).map(Sample::Power))
        }
    };
    match raw {
        Ok(Sample::Power(reading)) => check_reading(&reading),
        Ok(Sample::Limit(Some(ExternalLimit::Watts(w)))) => {
            assert!(f64::from(w) <= MAX_POWER_W, "limit {w} W");
        }
        Ok(Sample::Limit(_)) | Err(_) => {}
    }
}

/// What reaches the core is finite and bounded.
fn check_reading(r: &PowerReading) {
    #[allow(clippy::cast_precision_loss)] // bounded far below 2^52
    let watts = |w: i64| assert!((w as f64).abs() <= MAX_POWER_W, "{w} W in {r:?}");
    let amps = |a: f64| assert!(a.is_finite() && a.abs() <= MAX_CURRENT_A, "{a} A in {r:?}");
    r.grid_w
        .into_iter()
        .chain(r.pv_w)
        .chain(r.battery_w)
        .for_each(watts);
    r.grid_phase_w.into_iter().flatten().for_each(watts);
    r.grid_phase_a.into_iter().flatten().for_each(amps);
    if let Some(soc) = r.battery_soc_pct {
        assert!((0.0..=100.0).contains(&soc), "SoC {soc} % in {r:?}");
    }
    assert!(r.pv_w.is_none_or(|w| w >= 0), "negative PV in {r:?}");
}
