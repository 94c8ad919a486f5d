//! A central system from `testkit/ocpp-peers/` as a child process speaking the protocol of
//! its README: arguments, one JSON line per thing on stdout, commands on stdin. A [`Peer`]
//! says how to start one implementation; the scenarios take any of them.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

/// How to start one central system implementation.
#[derive(Clone, Debug)]
pub struct Peer {
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// Tests start in parallel: one of them installs a missing peer, the others wait for it.
static SETUP: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testkit/ocpp-peers")
}

impl Peer {
    /// The PyPI `ocpp` central system (its venv made by `setup.sh` when missing).
    pub fn python() -> anyhow::Result<Self> {
        let dir = peers_dir().join("python");
        let python = dir.join(".venv/bin/python");
        let _setup = SETUP
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !python.exists() {
            let status = Command::new(dir.join("setup.sh"))
                .status()
                .context("running testkit/ocpp-peers/python/setup.sh")?;
            anyhow::ensure!(status.success(), "python/setup.sh failed (PyPI reachable?)");
        }
        Ok(Self {
            name: "python ocpp",
            program: python,
            args: vec![dir.join("central_system.py").display().to_string()],
        })
    }
}

impl Peer {
    /// The npm `ocpp-rpc` central system in strict mode (its packages installed by
    /// `setup.sh` when missing).
    pub fn npm() -> anyhow::Result<Self> {
        let dir = peers_dir().join("npm");
        let _setup = SETUP
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !dir.join("node_modules/ocpp-rpc/package.json").exists() {
            let status = Command::new(dir.join("setup.sh"))
                .status()
                .context("running testkit/ocpp-peers/npm/setup.sh")?;
            anyhow::ensure!(
                status.success(),
                "npm/setup.sh failed (npm registry reachable?)"
            );
        }
        Ok(Self {
            name: "npm ocpp-rpc",
            program: PathBuf::from("node"),
            args: vec![dir.join("central_system.mjs").display().to_string()],
        })
    }
}

/// A running central system; killed when dropped.
pub struct PeerProcess {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<Vec<Value>>>,
    pub port: u16,
    pub scheme: &'static str,
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl PeerProcess {
    /// Starts `peer` with `extra` arguments (`--heartbeat 2`, TLS files) and waits for its
    /// `listening` line.
    pub async fn start(peer: &Peer, extra: &[String]) -> anyhow::Result<Self> {
        Self::start_on(peer, 0, extra).await
    }

    pub async fn start_on(peer: &Peer, port: u16, extra: &[String]) -> anyhow::Result<Self> {
        let mut child = Command::new(&peer.program)
            .args(&peer.args)
            .arg("--port")
            .arg(port.to_string())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the {} central system", peer.name))?;
        let stdout = child.stdout.take().context("stdout")?;
        let stdin = child.stdin.take().context("stdin")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if let Ok(mut lines) = sink.lock() {
                    lines.push(value);
                }
            }
        });
        let scheme = if extra.iter().any(|a| a == "--tls-cert") {
            "wss"
        } else {
            "ws"
        };
        let mut process = Self {
            child,
            stdin,
            lines,
            port: 0,
            scheme,
        };
        let listening = process
            .wait_for(Duration::from_secs(30), "the listening line", |l| {
                l["kind"] == "listening"
            })
            .await?;
        process.port = listening["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .context("listening port")?;
        Ok(process)
    }

    /// Kills the central system at once (SIGKILL); what it logged stays readable.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The base URL charge points connect under.
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The payloads of every `action` CALL charge point `cp` made, in order.
    pub fn received(&self, cp: &str, action: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["kind"] == "recv" && l["cp"] == cp && l["action"] == action)
            .map(|l| l["payload"].clone())
            .collect()
    }

    /// Waits for the first line (from `from` on) that `wanted` accepts.
    pub async fn wait_from(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines().iter().skip(from).find(|l| wanted(l)) {
                return Ok(line.clone());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "no {what} within {timeout:?}; central system log:\n{:#?}",
                    self.lines()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        self.wait_from(0, timeout, what, wanted).await
    }

    /// The backend's id of `cp`'s running transaction, from its first transaction
    /// MeterValues.
    pub async fn transaction_id(&self, cp: &str, timeout: Duration) -> anyhow::Result<Value> {
        let line = self
            .wait_for(
                timeout,
                &format!("a transaction MeterValues of {cp}"),
                |l| {
                    l["kind"] == "recv"
                        && l["cp"] == cp
                        && l["action"] == "MeterValues"
                        && l["payload"]["transactionId"].is_number()
                },
            )
            .await?;
        Ok(line["payload"]["transactionId"].clone())
    }

    /// What the peer's schema validation refused (the strict npm peer logs `invalid`).
    pub fn schema_violations(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["kind"] == "invalid")
            .collect()
    }

    /// Sends CALL `action` to `cp` and waits for its answer (`result` or `error` line).
    pub async fn call(&mut self, cp: &str, action: &str, payload: Value) -> anyhow::Result<Value> {
        let from = self.lines().len();
        self.command(&json!({"cp": cp, "action": action, "payload": payload}))?;
        self.wait_from(
            from,
            Duration::from_secs(15),
            &format!("answer to {action}"),
            |l| {
                (l["kind"] == "result" || l["kind"] == "error")
                    && l["cp"] == cp
                    && l["action"] == action
            },
        )
        .await
    }

    /// Sends a raw frame to `cp` and waits for the charge point's reply to it.
    pub async fn raw(&mut self, cp: &str, text: &str) -> anyhow::Result<Value> {
        let from = self.lines().len();
        self.command(&json!({"cp": cp, "raw": text}))?;
        let reply = self
            .wait_from(from, Duration::from_secs(10), "raw reply", |l| {
                l["kind"] == "raw_reply" && l["cp"] == cp
            })
            .await?;
        let text = reply["text"].as_str().unwrap_or_default();
        Ok(serde_json::from_str(text).unwrap_or(Value::Null))
    }

    fn command(&mut self, command: &Value) -> anyhow::Result<()> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        Ok(())
    }
}
