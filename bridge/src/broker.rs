//! The embedded MQTT broker (rumqttd) for sites without one: `demo` always uses it, and
//! `[mqtt] embedded = "ADDR:PORT"` lets a mesh root connect straight to the bridge, as it did
//! to the original Raspberry Pi.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// A running embedded broker. It lives as long as the process: rumqttd has no stop.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
}

impl EmbeddedBroker {
    /// The URL clients in this process use to reach it.
    #[must_use]
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            self.addr.ip().to_string()
        };
        format!("mqtt://{host}:{}", self.addr.port())
    }
}

/// Starts rumqttd on `listen`; port 0 picks a free port (1883 may be taken on a dev machine).
///
/// # Errors
/// When the port cannot be bound or the broker does not accept connections within 5 s.
pub fn start(listen: SocketAddr) -> anyhow::Result<EmbeddedBroker> {
    let addr = if listen.port() == 0 {
        let probe = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        probe.local_addr()?
    } else {
        // Fail here with a clear message rather than in rumqttd's thread.
        drop(TcpListener::bind(listen).with_context(|| format!("MQTT port {listen} is taken"))?);
        listen
    };
    let server = ServerSettings {
        name: "ctrl22-embedded".to_owned(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 2 * 1024 * 1024,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 20_010,
            max_outgoing_packet_count: 10_000,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: rumqttd::Strategy::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    };
    std::thread::Builder::new()
        .name("mqtt-broker".to_owned())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(error) = broker.start() {
                tracing::error!(%error, "embedded MQTT broker stopped");
            }
        })
        .context("spawning the broker thread")?;
    let reach = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&reach, Duration::from_millis(200)).is_ok() {
            return Ok(EmbeddedBroker { addr });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("embedded MQTT broker did not listen on {addr} within 5 s")
}
