//! The embedded MQTT broker (rumqttd) for sites without one: `demo` always uses it, and
//! `[mqtt] embedded = "ADDR:PORT"` lets a mesh root connect straight to the bridge, as it did
//! to the original Raspberry Pi.
//!
//! Whoever may publish on the broker commands the bays, so with `mqtt.username` and
//! `mqtt.password` set the broker accepts exactly that login (the bridge's own clients, the
//! mesh root and Home Assistant all use it); without them it is open to anyone who reaches
//! the port, and says so in the log when that is more than this host.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::config::MqttConfig;

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

/// The one login an embedded broker accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BrokerLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerLogin")
            .field("username", &self.username)
            .field("password", &crate::config::REDACTED)
            .finish()
    }
}

impl BrokerLogin {
    /// `mqtt.username` and `mqtt.password`, when both are set.
    #[must_use]
    pub fn from_config(mqtt: &MqttConfig) -> Option<Self> {
        Some(Self {
            username: mqtt.username.clone()?,
            password: mqtt.password.clone()?,
        })
    }
}

/// Starts an open rumqttd on `listen` (the demo, tests); see [`start_with_login`].
///
/// # Errors
/// As [`start_with_login`].
pub fn start(listen: SocketAddr) -> anyhow::Result<EmbeddedBroker> {
    start_with_login(listen, None)
}

/// Starts rumqttd on `listen`; port 0 picks a free port (1883 may be taken on a dev machine).
/// With `login` every client must present it; without, anyone may connect.
///
/// # Errors
/// When the port cannot be bound or the broker does not accept connections within 5 s.
pub fn start_with_login(
    listen: SocketAddr,
    login: Option<&BrokerLogin>,
) -> anyhow::Result<EmbeddedBroker> {
    if login.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(
            "the embedded MQTT broker on {listen} takes anyone who can reach it, and they can \
             command every bay; set mqtt.username and mqtt.password"
        );
    }
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
            auth: login.map(|l| HashMap::from([(l.username.clone(), l.password.clone())])),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet};

    /// Whether a client with `login` gets a successful CONNACK from the broker at `addr`.
    async fn connects(addr: SocketAddr, login: Option<(&str, &str)>) -> bool {
        let mut options = MqttOptions::new("probe", addr.ip().to_string(), addr.port());
        if let Some((user, pass)) = login {
            options.set_credentials(user, pass);
        }
        let (_client, mut events) = AsyncClient::new(options, 4);
        let answer = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        return ack.code == ConnectReturnCode::Success;
                    }
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        })
        .await;
        answer.unwrap_or(false)
    }

    #[tokio::test]
    async fn with_a_login_only_that_login_connects() {
        let login = BrokerLogin {
            username: "ctrl22".into(),
            password: "s3cret".into(),
        };
        let broker = start_with_login(SocketAddr::from(([127, 0, 0, 1], 0)), Some(&login)).unwrap();
        assert!(!connects(broker.addr, None).await, "no login refused");
        assert!(
            !connects(broker.addr, Some(("ctrl22", "wrong"))).await,
            "wrong password refused"
        );
        assert!(
            !connects(broker.addr, Some(("intruder", "s3cret"))).await,
            "wrong user refused"
        );
        assert!(connects(broker.addr, Some(("ctrl22", "s3cret"))).await);
        assert!(!format!("{login:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn without_a_login_the_broker_is_open() {
        let broker = start(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        assert!(connects(broker.addr, None).await);
    }

    #[test]
    fn the_login_needs_both_keys() {
        let mut mqtt = MqttConfig {
            username: Some("u".into()),
            ..MqttConfig::default()
        };
        assert_eq!(BrokerLogin::from_config(&mqtt), None);
        mqtt.password = Some("p".into());
        assert!(BrokerLogin::from_config(&mqtt).is_some());
    }
}
