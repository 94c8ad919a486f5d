//! Test harness shared by the workspace's end-to-end tests: a real Mosquitto broker on a free
//! loopback port, an MQTT recorder that keeps every message it sees, a recording proxy for
//! the TCP uplink ([`tcp`]), the bridge as a process ([`bridge`]) and the independent wire
//! checks ([`safety`]) over either recording ([`wire`]).
//!
//! Tests use real parts: this crate never imitates a broker, it starts one.

pub mod bridge;
pub mod safety;
pub mod scenario;
#[cfg(feature = "sim")]
pub mod sim;
pub mod tcp;
pub mod wire;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// A free TCP port on the loopback interface (the OS picks it; the listener is closed again).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding port 0")?;
    Ok(listener.local_addr()?.port())
}

/// Where the `mosquitto` binary is: `$MOSQUITTO`, else `/usr/sbin/mosquitto`, else `PATH`.
#[must_use]
pub fn mosquitto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOSQUITTO") {
        return PathBuf::from(path);
    }
    let debian = PathBuf::from("/usr/sbin/mosquitto");
    if debian.exists() {
        return debian;
    }
    PathBuf::from("mosquitto")
}

/// A Mosquitto broker listening on `127.0.0.1:<port>`, killed when dropped.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts a broker on a free port and waits until it accepts connections.
    ///
    /// # Errors
    /// When mosquitto is not installed or does not come up within 10 s.
    pub fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        Self::start_on(port)
    }

    /// Starts a broker on the given port (used to restart one on the same port).
    ///
    /// # Errors
    /// When mosquitto is not installed or does not come up within 10 s.
    pub fn start_on(port: u16) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 100000\nmax_inflight_messages 0\nlog_dest none\n"
            ),
        )?;
        let binary = mosquitto_binary();
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (install the Debian package `mosquitto`)",
                    binary.display()
                )
            })?;
        let mut broker = Self {
            child,
            port,
            _dir: dir,
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("mosquitto exited early: {status}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("mosquitto did not listen on port {} within 10 s", self.port)
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the broker, waits `down`, and starts a fresh one (nothing persisted: clients
    /// must connect and subscribe anew) on the same port.
    ///
    /// # Errors
    /// When the new broker does not come up.
    pub fn restart_after(&mut self, down: Duration) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        *self = Self::start_on(self.port)?;
        Ok(())
    }

    /// `mqtt://127.0.0.1:<port>`
    #[must_use]
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as the recorder saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub at: Instant,
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Recorded {
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// An MQTT client that subscribes to some filters and keeps every message, so a test can
/// wait for what it expects and check invariants over the whole run afterwards.
#[derive(Debug, Clone)]
pub struct Recorder {
    client: AsyncClient,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    /// Connects to the broker on `127.0.0.1:port` and subscribes to `filters`; returns once
    /// the subscriptions are acknowledged (or, with no filters, once connected).
    ///
    /// # Errors
    /// When the broker cannot be reached within 10 s.
    pub async fn connect(port: u16, client_id: &str, filters: &[&str]) -> anyhow::Result<Self> {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(2 * 1024 * 1024, 2 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(options, 10_000);
        for filter in filters {
            client.subscribe(*filter, QoS::AtMostOnce).await?;
        }
        // A restarted broker forgets subscriptions: they are made again on every reconnect.
        let resubscribe: Vec<String> = filters.iter().map(|f| (*f).to_owned()).collect();
        let resubscriber = client.clone();
        let mut connects = 0_u32;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let expected = filters.len();
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            let mut acked = 0;
            let mut ready_tx = Some(ready_tx);
            loop {
                let polled = eventloop.poll().await;
                if let Ok(Event::Incoming(Packet::ConnAck(_))) = &polled {
                    connects += 1;
                    if connects > 1 {
                        for filter in &resubscribe {
                            let _ = resubscriber.try_subscribe(filter.as_str(), QoS::AtMostOnce);
                        }
                    }
                }
                match polled {
                    // Ready once connected and every subscription is acknowledged.
                    Ok(Event::Incoming(Packet::ConnAck(_))) if expected == 0 => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        acked += 1;
                        if acked >= expected {
                            if let Some(tx) = ready_tx.take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(mut log) = sink.lock() {
                            log.push(Recorded {
                                at: Instant::now(),
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .context("MQTT subscriptions not acknowledged within 10 s")??;
        Ok(Self { client, log })
    }

    /// The client, to publish test input.
    #[must_use]
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }

    /// Publishes at QoS 0, not retained.
    ///
    /// # Errors
    /// When the client's queue is closed.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) -> anyhow::Result<()> {
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload.into())
            .await?;
        Ok(())
    }

    /// A copy of everything recorded so far.
    #[must_use]
    pub fn messages(&self) -> Vec<Recorded> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until some recorded message satisfies `pred`, and returns it.
    ///
    /// # Errors
    /// When none does within `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut pred: impl FnMut(&Recorded) -> bool,
    ) -> anyhow::Result<Recorded> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            let found = {
                let log = self.log.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                let hit = log.iter().skip(seen).find(|m| pred(m)).cloned();
                seen = log.len();
                hit
            };
            if let Some(hit) = found {
                return Ok(hit);
            }
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
