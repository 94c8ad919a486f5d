//! The bridge's configuration: one TOML file, every key overridable by an environment variable
//! `CTRL22_<SECTION>__<KEY>` (e.g. `CTRL22_SITE__MAX_CURRENT="[25,25,25]"`).
//!
//! Loading happens in two steps: serde (through figment) checks shapes and rejects unknown keys,
//! then [`Config::validate`] checks what serde cannot (limits, phase rotations, MAC addresses,
//! the circuit tree, URL schemes). Every error names the key it is about, because an operator
//! reading `exit 2` needs to know which line of the file to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use ctrl22_node::mesh::MacAddr;

use crate::bay::{BayId, Deciamps, Phase};

/// What [`Config::redacted`] puts in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// The prefix of environment overrides; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "CTRL22_";

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub mqtt: MqttConfig,
    pub mesh: MeshConfig,
    pub site: SiteConfig,
    /// Per-bay settings, keyed by the node's MAC in topic form (`d8a01d55a710`); the colon form
    /// is accepted in the file and normalised by [`Config::load`].
    pub nodes: BTreeMap<String, NodeConfig>,
    pub solar: SolarConfig,
    pub homeassistant: HomeAssistantConfig,
    pub ocpp: OcppConfig,
    pub http: HttpConfig,
    pub storage: StorageConfig,
}

/// `[mqtt]`: the broker the bridge (and, with `mesh.transport = "mqtt"`, the mesh root) uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` or `mqtts://host[:port]` (TLS with the platform's root certificates).
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub client_id: String,
    /// PEM file with extra CA certificates to trust for `mqtts://` (self-signed brokers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Run an embedded broker listening here (standalone sites without Home Assistant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedded: Option<SocketAddr>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password: None,
            client_id: "ctrl22-bridge".into(),
            ca_file: None,
            embedded: None,
        }
    }
}

/// How the bridge reaches the mesh root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MeshTransport {
    /// The root publishes to the `[mqtt]` broker under `/<mesh_id>/...`.
    #[default]
    Mqtt,
    /// The root connects to `tcp_listen` and streams JSON lines.
    Tcp,
}

/// `[mesh]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeshConfig {
    pub transport: MeshTransport,
    /// The first topic level of the mesh (`/DEMESH/<dev>/heartbeat`).
    pub mesh_id: String,
    pub tcp_listen: SocketAddr,
    /// A bay not heard from for this long is offline.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Node watchdog: a bay falls back to its fail-safe current when no setpoint came for this
    /// many seconds.
    pub wdtsec: u16,
    /// Setpoints are re-sent this often even when unchanged, to feed the node watchdog.
    #[serde(with = "humantime_serde")]
    pub setpoint_refresh: Duration,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            transport: MeshTransport::Mqtt,
            mesh_id: "DEMESH".into(),
            tcp_listen: SocketAddr::from(([0, 0, 0, 0], 8070)),
            heartbeat_timeout: Duration::from_secs(30),
            wdtsec: 60,
            setpoint_refresh: Duration::from_secs(20),
        }
    }
}

// The config speaks the allocator's words: `strategy = "fair"`, `mode = "minpv"`.
pub use crate::allocate::{ChargeMode, Strategy};

/// `[site]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    pub name: String,
    /// Nominal phase voltage, for power estimates.
    pub voltage: u16,
    /// The grid connection's fuse limit per phase; written in amps (`[32, 32, 32]`, decimals
    /// allowed to 0.1 A).
    #[serde(with = "amps3")]
    pub max_current: [Deciamps; 3],
    pub strategy: Strategy,
    /// Mode of bays without their own `nodes.<dev>.mode`.
    pub default_mode: ChargeMode,
    /// With `fair` and too little current for everyone: how long a bay charges before it yields.
    #[serde(with = "humantime_serde")]
    pub rotation_period: Duration,
    /// A bay that started charging keeps its allocation at least this long.
    #[serde(with = "humantime_serde")]
    pub min_on: Duration,
    /// A bay that was paused stays paused at least this long.
    #[serde(with = "humantime_serde")]
    pub min_off: Duration,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub circuits: Vec<CircuitConfig>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            name: "site".into(),
            voltage: 230,
            max_current: [Deciamps::from_amps(32); 3],
            strategy: Strategy::Fair,
            default_mode: ChargeMode::Now,
            rotation_period: Duration::from_secs(15 * 60),
            min_on: Duration::from_secs(120),
            min_off: Duration::from_secs(120),
            circuits: Vec::new(),
        }
    }
}

/// `[[site.circuits]]`: a sub-distribution with its own fuse; circuits form a tree below the
/// site. Bays join a circuit with `nodes.<dev>.circuit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitConfig {
    pub id: String,
    /// The circuit this one hangs from; none = directly below the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(with = "amps3")]
    pub max_current: [Deciamps; 3],
}

/// `[nodes.<dev>]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which site phase each of the bay's phases is wired to.
    pub phase_rotation: PhaseRotation,
    /// The bay's own limit (its supply cable or breaker).
    #[serde(with = "amps_opt", skip_serializing_if = "Option::is_none")]
    pub max_current: Option<Deciamps>,
    /// For `strategy = "priority"`: higher goes first.
    pub priority: i32,
    /// None = `site.default_mode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ChargeMode>,
    /// The `[[site.circuits]]` id this bay is fed from; none = directly from the site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit: Option<String>,
}

/// Wiring of a bay: `"231"` means the bay's L1 is on the site's L2, its L2 on L3, its L3 on L1.
/// Serialised as that three-digit string; `"123"` (straight through) by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhaseRotation(pub [Phase; 3]);

impl PhaseRotation {
    pub const STRAIGHT: Self = Self(Phase::ALL);

    /// The site phase that the bay's phase `bay_phase` is wired to.
    #[must_use]
    pub fn site_phase(self, bay_phase: Phase) -> Phase {
        let [l1, l2, l3] = self.0;
        match bay_phase {
            Phase::L1 => l1,
            Phase::L2 => l2,
            Phase::L3 => l3,
        }
    }
}

impl Default for PhaseRotation {
    fn default() -> Self {
        Self::STRAIGHT
    }
}

impl fmt::Display for PhaseRotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for phase in self.0 {
            write!(f, "{}", phase.digit())?;
        }
        Ok(())
    }
}

impl FromStr for PhaseRotation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let problem = || format!("{s:?} is not a permutation of \"123\" (e.g. \"231\")");
        let mut phases = [Phase::L1; 3];
        let mut seen = BTreeSet::new();
        let mut chars = s.trim().chars();
        for slot in &mut phases {
            let phase = chars
                .next()
                .and_then(|c| c.to_digit(10))
                .and_then(|d| usize::try_from(d).ok())
                .and_then(|d| d.checked_sub(1))
                .and_then(Phase::from_index)
                .ok_or_else(problem)?;
            if !seen.insert(phase) {
                return Err(problem());
            }
            *slot = phase;
        }
        if chars.next().is_some() {
            return Err(problem());
        }
        Ok(Self(phases))
    }
}

impl TryFrom<String> for PhaseRotation {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PhaseRotation> for String {
    fn from(r: PhaseRotation) -> Self {
        r.to_string()
    }
}

/// `[solar]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SolarConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SolarSourceConfig>,
}

/// The kinds of inverter and meter APIs the bridge can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SolarKind {
    Fronius,
    Solaredge,
    Envoy,
    SmaModbus,
    SmaSpeedwire,
    Shelly,
    Tasmota,
    Homeassistant,
    Mqtt,
    Http,
}

/// What a source reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Power at the grid connection (positive = import).
    Grid,
    /// PV production.
    Pv,
    /// Battery power (positive = discharge).
    Battery,
}

/// `[[solar.sources]]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolarSourceConfig {
    pub kind: SolarKind,
    /// Address of the device API (`http://...`, `modbus://host:502`, `udp://...`); for `mqtt`
    /// and `homeassistant` sources the broker of `[mqtt]` is used and this may be omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `kind = "mqtt"`: the topic carrying the power value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// `kind = "homeassistant"`: the sensor entity id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(default = "default_solar_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// What this source measures; at least one of `grid`, `pv`, `battery`.
    #[serde(default = "default_measures")]
    pub measures: Vec<Measure>,
}

fn default_solar_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_measures() -> Vec<Measure> {
    vec![Measure::Grid]
}

/// Home Assistant discovery layout: `device` (one `device/<id>/config` per bay and one for the
/// site, Home Assistant 2024.11+) or `entity` (one config topic per entity, older versions).
pub use ctrl22_ha::DiscoveryMode;

/// `[homeassistant]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeAssistantConfig {
    pub enabled: bool,
    pub discovery_prefix: String,
    pub discovery: DiscoveryMode,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            discovery_prefix: "homeassistant".into(),
            discovery: DiscoveryMode::Device,
        }
    }
}

/// How bays map onto OCPP charge points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OcppLayout {
    /// One charge point (one WebSocket) per bay, one connector each.
    #[default]
    PerBay,
    /// One charge point for the site with one connector per bay.
    Single,
}

/// `[ocpp]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcppConfig {
    pub enabled: bool,
    /// The backend's `ws://` or `wss://` URL; the identity is appended as the last path segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Charge point identity; `{dev}` is replaced by the bay's MAC in topic form and `{site}`
    /// by `site.name`.
    pub identity: String,
    pub layout: OcppLayout,
    /// OCPP security profile: 0 none, 1 basic auth, 2 basic auth over TLS, 3 client certificate.
    pub security_profile: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl Default for OcppConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: None,
            identity: "{dev}".into(),
            layout: OcppLayout::PerBay,
            security_profile: 0,
            password: None,
        }
    }
}

/// `[http]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Bearer token required for `PUT`; none = read-only API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
        }
    }
}

/// `[storage]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The SQLite file.
    pub path: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("ctrl22.db"),
        }
    }
}

/// The flags of `ctrl22-bridge demo`.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoArgs {
    /// Number of simulated bays.
    pub nodes: u32,
    /// Where the HTTP API and dashboard listen.
    pub http: SocketAddr,
    /// Simulation time factor (2.0 = twice as fast as real time).
    pub speed: f64,
    /// Where the embedded broker listens; none = a free port.
    pub mqtt_listen: Option<SocketAddr>,
}

/// One problem found by [`Config::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The key, as written in the file: `site.circuits[1].parent`, `nodes.d8a01d55a710.mode`.
    pub key: String,
    pub problem: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

/// Why the configuration could not be loaded. Every variant names the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Syntax, type or unknown-key errors.
    #[error("{}", display_parse(.0))]
    Parse(Box<figment::Error>),
    #[error("{}", display_list(.0))]
    Invalid(Vec<Invalid>),
}

/// `key: problem (source)` per error, like [`Invalid`], with the key as the file spells it
/// (figment would print environment keys upper-case).
fn display_parse(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let key = e.path.join(".").to_ascii_lowercase();
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(source) => format!(" (in {source})"),
                    None => format!(" (in {})", m.name),
                })
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{key}: {}{source}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn display_list(problems: &[Invalid]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Loads defaults, then the TOML file at `path` (which must exist when given), then
    /// `CTRL22_*` environment overrides, and validates the result.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or key at fault.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(path) = path {
            // figment silently skips a missing file; a mistyped --config must not run defaults.
            std::fs::metadata(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        // `CTRL22_CONFIG` names the file (the command line's `--config`); it is no key.
        figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(&["CONFIG"]).split("__"));
        Self::from_figment(&figment)
    }

    /// Parses and validates a configuration given as TOML text (no environment overrides).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let figment =
            Figment::from(Serialized::defaults(Self::default())).merge(Toml::string(text));
        Self::from_figment(&figment)
    }

    fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let mut config: Self = figment
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot and normalises node keys to topic form.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with every problem found.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: String, problem: String| problems.push(Invalid { key, problem });

        check_url(&self.mqtt.url, "mqtt.url", &["mqtt", "mqtts"], &mut bad);
        if self.mqtt.client_id.is_empty() {
            bad("mqtt.client_id".into(), "must not be empty".into());
        }
        // The codec's own rule, so a mesh id the config accepts is one the link can use.
        if let Err(e) = ctrl22_node::mesh::check_mesh_id(&self.mesh.mesh_id) {
            bad(
                "mesh.mesh_id".into(),
                format!("{:?}: {e}", self.mesh.mesh_id),
            );
        }
        if self.mesh.heartbeat_timeout.is_zero() {
            bad(
                "mesh.heartbeat_timeout".into(),
                "must be more than 0s".into(),
            );
        }
        if self.mesh.wdtsec == 0 {
            bad("mesh.wdtsec".into(), "must be at least 1".into());
        }
        if self.mesh.setpoint_refresh.is_zero()
            || self.mesh.setpoint_refresh >= Duration::from_secs(u64::from(self.mesh.wdtsec))
        {
            bad(
                "mesh.setpoint_refresh".into(),
                format!(
                    "must be more than 0s and less than mesh.wdtsec ({} s), or the node watchdog trips",
                    self.mesh.wdtsec
                ),
            );
        }

        if self.site.voltage == 0 {
            bad("site.voltage".into(), "must be more than 0".into());
        }
        check_limits(&self.site.max_current, "site.max_current", &mut bad);
        check_circuits(&self.site.circuits, &mut bad);

        let circuit_ids: BTreeSet<&str> =
            self.site.circuits.iter().map(|c| c.id.as_str()).collect();
        let mut nodes = BTreeMap::new();
        for (key, node) in &self.nodes {
            let Some(dev) = normalise_mac(key) else {
                bad(
                    format!("nodes.{key}"),
                    "is not a MAC address (12 hex digits, with or without colons)".into(),
                );
                continue;
            };
            if let Some(limit) = node.max_current {
                check_limit(limit, &format!("nodes.{key}.max_current"), &mut bad);
            }
            if let Some(circuit) = &node.circuit {
                if !circuit_ids.contains(circuit.as_str()) {
                    bad(
                        format!("nodes.{key}.circuit"),
                        format!("no circuit {circuit:?} in site.circuits"),
                    );
                }
            }
            if nodes.insert(dev.clone(), node.clone()).is_some() {
                bad(
                    format!("nodes.{key}"),
                    format!("the same node as another entry ({dev})"),
                );
            }
        }

        for (i, source) in self.solar.sources.iter().enumerate() {
            check_solar_source(source, &format!("solar.sources[{i}]"), &mut bad);
        }

        if self.homeassistant.discovery_prefix.is_empty()
            || self.homeassistant.discovery_prefix.contains(['+', '#'])
        {
            bad(
                "homeassistant.discovery_prefix".into(),
                "must be a non-empty topic without '+' or '#'".into(),
            );
        }

        check_ocpp(&self.ocpp, &mut bad);

        if problems.is_empty() {
            self.nodes = nodes;
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The settings of one bay, if the file has any.
    #[must_use]
    pub fn node(&self, bay: &BayId) -> Option<&NodeConfig> {
        self.nodes.get(&bay.0)
    }

    /// A copy with passwords, tokens and URL credentials replaced by [`REDACTED`], for printing.
    #[must_use]
    pub fn redacted(&self) -> Self {
        let mut c = self.clone();
        redact(&mut c.mqtt.password);
        c.mqtt.url = redact_url(&c.mqtt.url);
        for source in &mut c.solar.sources {
            redact(&mut source.password);
            redact(&mut source.token);
            source.url = source.url.as_deref().map(redact_url);
        }
        redact(&mut c.ocpp.password);
        c.ocpp.url = c.ocpp.url.as_deref().map(redact_url);
        redact(&mut c.http.token);
        c
    }

    /// The effective configuration as TOML.
    ///
    /// # Errors
    /// Only if a value cannot be expressed in TOML (does not happen for validated configs).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

fn redact(secret: &mut Option<String>) {
    if secret.is_some() {
        *secret = Some(REDACTED.into());
    }
}

/// Hides `user:password@` in a URL.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest.get(..authority_end).and_then(|a| a.rfind('@')) {
        Some(at) => format!("{scheme}://{REDACTED}@{}", rest.get(at + 1..).unwrap_or("")),
        None => url.to_owned(),
    }
}

/// `d8:a0:1d:55:a7:10` or `D8A01D55A710` -> `d8a01d55a710`.
fn normalise_mac(s: &str) -> Option<String> {
    s.parse::<MacAddr>()
        .ok()
        .map(|mac| mac.topic_form().to_string())
}

fn check_url(url: &str, key: &str, schemes: &[&str], bad: &mut impl FnMut(String, String)) {
    let scheme_ok = url
        .split_once("://")
        .is_some_and(|(scheme, rest)| schemes.contains(&scheme) && !rest.is_empty());
    if !scheme_ok {
        let allowed: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        bad(
            key.into(),
            format!("{url:?} must start with {}", allowed.join(" or ")),
        );
    }
}

fn check_limit(limit: Deciamps, key: &str, bad: &mut impl FnMut(String, String)) {
    if !limit.is_valid_offer() {
        bad(
            key.into(),
            format!("{limit} must be 0 or at least 6 A (IEC 61851-1 minimum)"),
        );
    }
}

fn check_limits(limits: &[Deciamps; 3], key: &str, bad: &mut impl FnMut(String, String)) {
    for (i, limit) in limits.iter().enumerate() {
        check_limit(*limit, &format!("{key}[{i}]"), bad);
    }
}

fn check_circuits(circuits: &[CircuitConfig], bad: &mut impl FnMut(String, String)) {
    let mut index = BTreeMap::new();
    for (i, circuit) in circuits.iter().enumerate() {
        if circuit.id.is_empty() {
            bad(format!("site.circuits[{i}].id"), "must not be empty".into());
        } else if index.insert(circuit.id.as_str(), i).is_some() {
            bad(
                format!("site.circuits[{i}].id"),
                format!("duplicate circuit {:?}", circuit.id),
            );
        }
        check_limits(
            &circuit.max_current,
            &format!("site.circuits[{i}].max_current"),
            bad,
        );
    }
    for (i, circuit) in circuits.iter().enumerate() {
        let Some(parent) = &circuit.parent else {
            continue;
        };
        if !index.contains_key(parent.as_str()) {
            bad(
                format!("site.circuits[{i}].parent"),
                format!("no circuit {parent:?}"),
            );
            continue;
        }
        // Walk up; more steps than circuits means we are going round in a cycle.
        let mut at = Some(parent.as_str());
        let mut steps = 0;
        while let Some(id) = at {
            if id == circuit.id || steps > circuits.len() {
                bad(
                    format!("site.circuits[{i}].parent"),
                    format!("circuit {:?} is its own ancestor (cycle)", circuit.id),
                );
                break;
            }
            steps += 1;
            at = index
                .get(id)
                .and_then(|&j| circuits.get(j))
                .and_then(|c| c.parent.as_deref());
        }
    }
}

fn check_solar_source(source: &SolarSourceConfig, key: &str, bad: &mut impl FnMut(String, String)) {
    let needs_url = !matches!(source.kind, SolarKind::Mqtt | SolarKind::Homeassistant);
    match (&source.url, needs_url) {
        (None, true) => bad(format!("{key}.url"), "is required for this kind".into()),
        (Some(url), _) => {
            let schemes: &[&str] = match source.kind {
                SolarKind::SmaModbus => &["modbus", "tcp"],
                SolarKind::SmaSpeedwire => &["udp"],
                SolarKind::Mqtt => &["mqtt", "mqtts"],
                _ => &["http", "https"],
            };
            check_url(url, &format!("{key}.url"), schemes, bad);
        }
        (None, false) => {}
    }
    if source.kind == SolarKind::Mqtt && source.topic.is_none() {
        bad(
            format!("{key}.topic"),
            "is required for kind \"mqtt\"".into(),
        );
    }
    if source.kind == SolarKind::Homeassistant && source.entity.is_none() {
        bad(
            format!("{key}.entity"),
            "is required for kind \"homeassistant\"".into(),
        );
    }
    if source.interval.is_zero() {
        bad(format!("{key}.interval"), "must be more than 0s".into());
    }
    if source.measures.is_empty() {
        bad(
            format!("{key}.measures"),
            "must list at least one of \"grid\", \"pv\", \"battery\"".into(),
        );
    }
}

fn check_ocpp(ocpp: &OcppConfig, bad: &mut impl FnMut(String, String)) {
    if ocpp.security_profile > 3 {
        bad(
            "ocpp.security_profile".into(),
            format!(
                "{} is not an OCPP security profile (0-3)",
                ocpp.security_profile
            ),
        );
    }
    if !ocpp.enabled {
        return;
    }
    match &ocpp.url {
        None => bad(
            "ocpp.url".into(),
            "is required when ocpp.enabled = true".into(),
        ),
        Some(url) => {
            let schemes: &[&str] = if ocpp.security_profile >= 2 {
                &["wss"]
            } else {
                &["ws", "wss"]
            };
            check_url(url, "ocpp.url", schemes, bad);
        }
    }
    if matches!(ocpp.security_profile, 1 | 2) && ocpp.password.is_none() {
        bad(
            "ocpp.password".into(),
            format!(
                "is required for security_profile = {}",
                ocpp.security_profile
            ),
        );
    }
    if ocpp.layout == OcppLayout::PerBay && !ocpp.identity.contains("{dev}") {
        bad(
            "ocpp.identity".into(),
            "must contain \"{dev}\" with layout = \"per-bay\" (one identity per bay)".into(),
        );
    }
}

/// Amps with one decimal in the file, [`Deciamps`] in memory.
fn amps_to_deciamps(amps: f64) -> Result<Deciamps, String> {
    let deci = (amps * 10.0).round();
    if !deci.is_finite() || !(0.0..=f64::from(i16::MAX)).contains(&deci) {
        return Err(format!("{amps} A is not a current between 0 and 3276.7 A"));
    }
    // In range by the check above.
    #[allow(clippy::cast_possible_truncation)]
    Ok(Deciamps(deci as i16))
}

fn deciamps_to_amps(current: Deciamps) -> f64 {
    f64::from(current.get()) / 10.0
}

mod amps3 {
    use super::{amps_to_deciamps, deciamps_to_amps, Deciamps};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[Deciamps; 3], s: S) -> Result<S::Ok, S::Error> {
        v.map(deciamps_to_amps).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[Deciamps; 3], D::Error> {
        let [a, b, c] = <[f64; 3]>::deserialize(d)?;
        let conv = |x| amps_to_deciamps(x).map_err(serde::de::Error::custom);
        Ok([conv(a)?, conv(b)?, conv(c)?])
    }
}

mod amps_opt {
    use super::{amps_to_deciamps, deciamps_to_amps, Deciamps};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    // serde's `with` hands the field by reference.
    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(v: &Option<Deciamps>, s: S) -> Result<S::Ok, S::Error> {
        v.map(deciamps_to_amps).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Deciamps>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|x| amps_to_deciamps(x).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rotation_round_trips_and_rejects_non_permutations() {
        let r: PhaseRotation = "231".parse().unwrap();
        assert_eq!(r.site_phase(Phase::L1), Phase::L2);
        assert_eq!(r.site_phase(Phase::L3), Phase::L1);
        assert_eq!(r.to_string(), "231");
        for bad in ["", "12", "1234", "112", "124", "abc", "023"] {
            assert!(bad.parse::<PhaseRotation>().is_err(), "{bad}");
        }
    }

    #[test]
    fn macs_normalise() {
        assert_eq!(
            normalise_mac("D8:A0:1D:55:A7:10").as_deref(),
            Some("d8a01d55a710")
        );
        assert_eq!(
            normalise_mac("d8a01d55a710").as_deref(),
            Some("d8a01d55a710")
        );
        for bad in [
            "d8a01d55a7",
            "d8:a01d:55:a7:10:00",
            "g8a01d55a710",
            "d8a01d55a7100",
        ] {
            assert_eq!(normalise_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn url_credentials_are_hidden() {
        assert_eq!(
            redact_url("mqtts://u:p@broker:8883/x"),
            "mqtts://<redacted>@broker:8883/x"
        );
        assert_eq!(redact_url("mqtt://broker"), "mqtt://broker");
        assert_eq!(redact_url("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn amps_convert_with_one_decimal() {
        assert_eq!(amps_to_deciamps(16.0), Ok(Deciamps(160)));
        assert_eq!(amps_to_deciamps(6.25), Ok(Deciamps(63)));
        assert!(amps_to_deciamps(-1.0).is_err());
        assert!(amps_to_deciamps(f64::NAN).is_err());
        assert!(amps_to_deciamps(1e9).is_err());
    }
}
