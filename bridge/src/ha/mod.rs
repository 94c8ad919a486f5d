//! Home Assistant: MQTT discovery, live state and control.
//!
//! A device per bay and one for the site appear in Home Assistant without any YAML: the
//! [`publisher`] decides what to announce and publish and when, [`state`] builds the state
//! payloads, [`command`] turns Home Assistant's commands into setting changes, which go
//! through the site core like every other setting. This module only carries messages to
//! and from the broker.
//!
//! Two tasks, neither ever waiting on the other: the broker task only polls the client's
//! event loop (so pings, acks and queued publishes always move) and offers what arrives to
//! the adapter task with `try_send`; a message that finds the bounded queue full (a flood of
//! commands while the site core is busy) is dropped and counted (`ha_overload`). The
//! adapter task never awaits the broker: it offers messages with `try_publish` and keeps
//! what does not fit in its [`outbox`] (one message per topic), so it always goes back to
//! reading commands.

pub mod command;
pub mod firmware;
pub mod outbox;
pub mod publisher;
pub mod sample;
pub mod state;

use std::time::Duration;

use anyhow::Context;
use ctrl22_ha::ctrl22::{BayCommand, CommandTarget};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, Packet, QoS};
use tokio::sync::{mpsc, watch};

use crate::clock::SystemClock;
use crate::config::Config;
use crate::handle::{SiteHandle, SiteRequest};
use outbox::Outbox;
use publisher::{HaSettings, Out, Publish, Publisher};

/// Requests the MQTT client queues for its event loop: enough to keep it busy, few enough
/// that a state answering a command does not wait long behind a burst of ~10 kB configs.
/// What does not fit waits in the outbox, where a newer message of a topic replaces the
/// older one and states take turns with configs.
const REQUEST_QUEUE: usize = 256;
/// Messages from the broker waiting for the adapter task.
const INCOMING_QUEUE: usize = 1_024;
/// How soon to offer the outbox again while the request queue is full.
const RETRY: Duration = Duration::from_millis(5);

/// A message from the broker.
struct Incoming {
    topic: String,
    payload: Vec<u8>,
    retained: bool,
}

/// Starts the Home Assistant adapter on the `[mqtt]` broker.
///
/// # Errors
/// A bad broker URL or a site name that makes no topic level.
pub fn spawn(config: &Config, site: SiteHandle) -> anyhow::Result<()> {
    let settings = HaSettings {
        prefix: config.homeassistant.discovery_prefix.clone(),
        mode: config.homeassistant.discovery,
        bridge_version: env!("CARGO_PKG_VERSION").to_owned(),
        configuration_url: Some(format!("http://{}/", config.http.listen)),
    };
    let publisher = Publisher::new(settings, &config.site.name).context("site.name")?;
    let status = publisher.topics().bridge_status();
    let mut options = crate::broker_client::options(&config.mqtt, "ha").context("mqtt.url")?;
    options.set_last_will(LastWill::new(&status, "offline", QoS::AtLeastOnce, true));
    let (client, eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
    let (incoming_tx, incoming) = mpsc::channel(INCOMING_QUEUE);
    // Connections counted, not queued: a (re)connect is never lost to a full queue.
    let (connected_tx, connected) = watch::channel(0_u64);
    let overload = site.clone();
    let adapter = Adapter {
        publisher,
        client,
        site,
        ha_status: format!("{}/status", config.homeassistant.discovery_prefix),
        outbox: Outbox::default(),
        subscribe_pending: false,
        clock: SystemClock::new(),
        firmware: config.firmware.clone(),
    };
    tokio::spawn(poll_broker(eventloop, incoming_tx, connected_tx, overload));
    tokio::spawn(adapter.run(incoming, connected));
    Ok(())
}

/// Keeps the event loop turning (it also sends what the client queued); never waits for
/// the adapter task.
async fn poll_broker(
    mut eventloop: EventLoop,
    incoming: mpsc::Sender<Incoming>,
    connected: watch::Sender<u64>,
    site: SiteHandle,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connected.send_modify(|n| *n += 1);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let message = Incoming {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                    retained: p.retain,
                };
                match incoming.try_send(message) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(dropped)) => {
                        // Counted if the site's queue has room; it is as busy as ours.
                        let _ = site.try_send(SiteRequest::Rejected("ha_overload"));
                        tracing::debug!(topic = dropped.topic, "Home Assistant queue full");
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("Home Assistant MQTT: {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

struct Adapter {
    publisher: Publisher,
    client: AsyncClient,
    site: SiteHandle,
    ha_status: String,
    outbox: Outbox,
    /// Connected, the command subscriptions not yet queued.
    subscribe_pending: bool,
    clock: SystemClock,
    /// `[firmware]`: where installs find the controller images.
    firmware: crate::config::FirmwareConfig,
}

impl Adapter {
    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut connected: watch::Receiver<u64>,
    ) {
        let mut snapshots = self.site.subscribe();
        loop {
            let now_ms = self.now_ms();
            let wake_in = self
                .publisher
                .poll_timeout()
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms)));
            let backlog = self.subscribe_pending || !self.outbox.is_empty();
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let out = self.publisher.update(self.now_ms(), &self.site.snapshot());
                    self.outbox.extend(out);
                }
                () = sleep(wake_in) => {
                    let out = self.publisher.handle_timeout(self.now_ms(), &self.site.snapshot());
                    self.outbox.extend(out);
                }
                () = tokio::time::sleep(RETRY), if backlog => {}
                changed = connected.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.subscribe_pending = true;
                    let out = self
                        .publisher
                        .announce_all(self.now_ms(), &self.site.snapshot());
                    self.outbox.extend(out);
                }
                message = incoming.recv() => match message {
                    None => break,
                    Some(message) => self.handle(message).await,
                },
            }
            self.flush();
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.now().mono_ms
    }

    async fn handle(&mut self, message: Incoming) {
        let Incoming {
            topic,
            payload,
            retained,
        } = message;
        if topic == self.ha_status {
            if payload == b"online" {
                tracing::info!("Home Assistant is online: announcing again");
                self.publisher.handle_birth(self.now_ms());
            }
        } else if retained {
            // Left on the broker by someone, and replayed on every reconnect. Home Assistant
            // never retains a command.
            self.site
                .send(SiteRequest::Rejected("ha_command_retained"))
                .await;
            tracing::info!(topic, "retained Home Assistant command ignored");
        } else {
            self.handle_command(&topic, &payload).await;
        }
    }

    /// Applies one command; a refused one is logged, counted and answered with the state in
    /// force, so Home Assistant's control snaps back.
    async fn handle_command(&mut self, topic: &str, payload: &[u8]) {
        let Some(target) = self.publisher.topics().parse_command(topic) else {
            self.site
                .send(SiteRequest::Rejected("ha_command_topic"))
                .await;
            tracing::debug!(topic, "not a command topic of this site");
            return;
        };
        let dev = match &target {
            CommandTarget::Bay { dev, .. } => dev.clone(),
            CommandTarget::Site(_) => String::new(),
        };
        if let CommandTarget::Bay {
            dev,
            command: command @ (BayCommand::InstallAvr | BayCommand::InstallEsp32),
        } = &target
        {
            let result = if *command == BayCommand::InstallEsp32 {
                firmware::install_esp32(&self.site, &self.firmware, dev, payload).await
            } else {
                firmware::install(&self.site, &self.firmware, dev, payload).await
            };
            self.refused_if(topic, dev, result).await;
            return;
        }
        let result = match command::parse(&target, payload) {
            Ok(change) => self.site.apply(change).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        self.refused_if(topic, &dev, result).await;
    }

    /// A refused command is logged, counted and answered with the state in force.
    async fn refused_if(&mut self, topic: &str, dev: &str, result: Result<(), String>) {
        if let Err(problem) = result {
            tracing::info!(topic, "Home Assistant command refused: {problem}");
            self.site.send(SiteRequest::Rejected("ha_command")).await;
            let out = self
                .publisher
                .republish_bay(self.now_ms(), &self.site.snapshot(), dev);
            self.outbox.extend(out);
        }
    }

    /// Queues subscriptions and waiting messages with the client until its queue is full.
    fn flush(&mut self) {
        if self.subscribe_pending {
            let filters = self.publisher.topics().command_filters();
            let all = filters
                .iter()
                .chain(std::iter::once(&self.ha_status))
                .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
            match self.client.try_subscribe_many(all) {
                Ok(()) => self.subscribe_pending = false,
                Err(_) => return, // the queue is full: subscriptions go first next time
            }
        }
        while let Some(item) = self.outbox.pop() {
            let messages = match item {
                Out::Message(message) => vec![message],
                Out::Announce(device) => self.publisher.render(&device),
            };
            let mut messages = messages.into_iter();
            while let Some(message) = messages.next() {
                let Publish {
                    topic,
                    payload,
                    retain,
                    ..
                } = &message;
                let offered = self.client.try_publish(
                    topic.clone(),
                    QoS::AtLeastOnce,
                    *retain,
                    payload.clone(),
                );
                if offered.is_err() {
                    // Full (or the event loop is gone, and the process with it): try again
                    // later, this one and the rest of its device in order, in front.
                    let rest: Vec<Publish> = std::iter::once(message).chain(messages).collect();
                    for message in rest.into_iter().rev() {
                        self.outbox.unpop(Out::Message(message));
                    }
                    return;
                }
            }
        }
    }
}

/// Sleeps `duration`, or forever when there is nothing to wait for.
async fn sleep(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
