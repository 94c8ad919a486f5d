//! The bodies of the fuzz targets in the repository's `fuzz/` crate and of their corpus
//! replay (`tests/core/fuzz_corpus.rs`): one function per target, so the fuzzer and
//! `cargo test` check the same things. Each takes the fuzzer's bytes and panics only on a
//! finding. Not part of the API.

use ctrl22_ha::ctrl22::Topics;

use crate::clock::Now;
use crate::config::Config;
use crate::ha::command;
use crate::ha::publisher::site_id;
use crate::mesh::{Frame, ObjectSplitter};
use crate::runtime::site_settings;
use crate::site::{Input, Site, Stored};

/// The site every target that drives the core runs against: the example configuration
/// (circuits, two configured bays).
const EXAMPLE_CONFIG: &str = include_str!("../examples/ctrl22.toml");

/// 2026-12-01T00:00:00Z.
const START: Now = Now {
    mono_ms: 1_000,
    wall_ms: 1_796_083_200_000,
};

fn example() -> (Config, Site) {
    let config = Config::from_toml(EXAMPLE_CONFIG).expect("the example configuration is valid");
    let site = Site::new(site_settings(&config), Stored::default(), START)
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
/// node message and fed to the site core, with a control cycle after each read.
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
            assert!(
                object.len() <= MAX && object.first() == Some(&b'{') && object.last() == Some(&b'}'),
                "not an object within the cap: {object:?}"
            );
            if let Ok((src, msg)) = ctrl22_node::mesh::decode_uplink_tcp(object) {
                site.handle(now, Input::Mesh { src, msg });
            }
        }
        now.mono_ms += 100;
        now.wall_ms += 100;
        site.handle(now, Input::Tick);
    }
    assert_eq!(frames, whole, "frames depend on how the bytes were read");
}
