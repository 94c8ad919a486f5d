//! The bridge as a separate process for end-to-end tests: a configuration file written for
//! the test's broker or TCP port, and a guard that kills the process however the test ends.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::Context;

/// How the bridge reaches the mesh root.
#[derive(Clone, Debug)]
pub enum Uplink {
    /// Over the broker (`[mesh] transport = "mqtt"`).
    Mqtt,
    /// The root connects to this address (`[mesh] transport = "tcp"`).
    Tcp(SocketAddr),
}

/// `[homeassistant]` with the integration on.
#[derive(Clone, Debug)]
pub struct HomeAssistant {
    /// `discovery_prefix`, e.g. `homeassistant`.
    pub discovery_prefix: String,
    /// `discovery`: `device` or `component`.
    pub discovery: String,
}

/// What the tests vary in the bridge's configuration. The timings are short so that a run
/// sees start-up grace, rotation and the node watchdog within seconds.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    pub mesh_id: String,
    /// `mqtt://127.0.0.1:<port>` (used by the MQTT uplink; written in any case).
    pub broker_url: String,
    pub uplink: Uplink,
    /// Where `/metrics` and the API listen (port 0: anywhere).
    pub http_listen: SocketAddr,
    /// The site's fuse per phase, amps.
    pub max_current_amps: [u16; 3],
    /// `[site] name`; the bridge's MQTT client id is `<site_name>-bridge`, so bridges of
    /// different sites can share a broker.
    pub site_name: String,
    /// `[site] min_on` and `min_off`, seconds.
    pub min_on_off_s: u32,
    /// `[mesh] heartbeat_timeout`, seconds (also the start-up grace).
    pub heartbeat_timeout_s: u32,
    /// `None`: `[homeassistant] enabled = false`.
    pub homeassistant: Option<HomeAssistant>,
    /// `[http] token`; `None`: a read-only API.
    pub http_token: Option<String>,
    /// More TOML appended to the file: whole sections the fields above do not write
    /// (`[firmware]`, ...).
    pub extra_toml: String,
}

impl BridgeConfig {
    /// An MQTT-uplink bridge of mesh `DEMESH` on a 3x32 A site.
    #[must_use]
    pub fn new(broker_url: String) -> Self {
        Self {
            mesh_id: "DEMESH".to_owned(),
            broker_url,
            uplink: Uplink::Mqtt,
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_current_amps: [32; 3],
            site_name: "e2e".to_owned(),
            min_on_off_s: 5,
            heartbeat_timeout_s: 3,
            homeassistant: None,
            http_token: None,
            extra_toml: String::new(),
        }
    }

    /// The site limit per phase in 0.1 A, as the wire checks take it.
    #[must_use]
    pub fn limit_deciamps(&self) -> [i32; 3] {
        self.max_current_amps.map(|a| i32::from(a) * 10)
    }

    /// Writes `ctrl22.toml` (and places the database) in `dir`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("ctrl22.toml");
        let (transport, tcp_listen) = match &self.uplink {
            Uplink::Mqtt => ("mqtt", String::new()),
            Uplink::Tcp(addr) => ("tcp", format!("tcp_listen = \"{addr}\"\n")),
        };
        let [l1, l2, l3] = self.max_current_amps;
        let homeassistant = match &self.homeassistant {
            None => "enabled = false".to_owned(),
            Some(ha) => format!(
                "enabled = true\ndiscovery_prefix = \"{}\"\ndiscovery = \"{}\"",
                ha.discovery_prefix, ha.discovery
            ),
        };
        let text = format!(
            r#"
[mqtt]
url = "{url}"
client_id = "{site}-bridge"

[mesh]
transport = "{transport}"
{tcp_listen}mesh_id = "{mesh}"
heartbeat_timeout = "{heartbeat_timeout}s"
wdtsec = 6
setpoint_refresh = "2s"

[site]
name = "{site}"
max_current = [{l1}, {l2}, {l3}]
min_on = "{min_on_off}s"
min_off = "{min_on_off}s"
rotation_period = "20s"

[homeassistant]
{homeassistant}

[http]
listen = "{http}"
{token}

[storage]
path = "{db}"

{extra}
"#,
            token = self
                .http_token
                .as_ref()
                .map(|t| format!("token = \"{t}\""))
                .unwrap_or_default(),
            extra = self.extra_toml,
            url = self.broker_url,
            mesh = self.mesh_id,
            site = self.site_name,
            min_on_off = self.min_on_off_s,
            heartbeat_timeout = self.heartbeat_timeout_s,
            http = self.http_listen,
            db = dir.join("e2e.db").display(),
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// The bridge process (`<binary> run --config <config>`), killed when dropped.
#[derive(Debug)]
pub struct BridgeProcess(Child);

impl BridgeProcess {
    /// Starts the bridge binary (in a test: `env!("CARGO_BIN_EXE_ctrl22-bridge")`) with
    /// warnings on the test's stderr.
    ///
    /// # Errors
    /// When the binary cannot be started.
    pub fn start(binary: &Path, config: &Path) -> anyhow::Result<Self> {
        let child = Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self(child))
    }

    /// Like [`BridgeProcess::start`] with `env` set on top (`RUST_LOG` included, if given),
    /// and every line the bridge writes to stderr kept in the returned [`BridgeLog`] (and
    /// still shown on the test's stderr).
    ///
    /// # Errors
    /// When the binary cannot be started.
    pub fn start_logged(
        binary: &Path,
        config: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Self, BridgeLog)> {
        let mut child = Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let log = BridgeLog::default();
        if let Some(stderr) = child.stderr.take() {
            let lines = Arc::clone(&log.0);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    if let Ok(mut lines) = lines.lock() {
                        lines.push(line);
                    }
                }
            });
        }
        Ok((Self(child), log))
    }

    /// The process id (to signal it).
    #[must_use]
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Kills the process without warning (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a bridge started with [`BridgeProcess::start_logged`] wrote to stderr so far.
#[derive(Clone, Debug, Default)]
pub struct BridgeLog(Arc<Mutex<Vec<String>>>);

impl BridgeLog {
    /// A copy of the lines so far.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET http://<addr><path>`: the body of a 200 answer.
///
/// # Errors
/// When the server cannot be reached or answers anything else.
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no end of HTTP headers")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "GET {path}: {}",
        head.lines().next().unwrap_or_default()
    );
    Ok(body.to_owned())
}

/// `ctrl22_rejected_input_total{kind="..."}` from a `/metrics` page, by kind.
#[must_use]
pub fn rejected_counts(metrics: &str) -> std::collections::BTreeMap<String, f64> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("ctrl22_rejected_input_total{kind=\"")?;
            let (kind, rest) = rest.split_once("\"}")?;
            Some((kind.to_owned(), rest.trim().parse().ok()?))
        })
        .collect()
}
