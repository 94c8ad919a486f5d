//! Home Assistant: MQTT discovery, live state and control.
//!
//! A device per bay and one for the site appear in Home Assistant without any YAML: the
//! [`publisher`] decides what to announce and publish, [`state`] builds the state payloads,
//! [`command`] turns Home Assistant's commands into setting changes, which go through the
//! site core like every other setting. This module only carries messages to and from the
//! broker.

pub mod command;
pub mod publisher;
pub mod state;

use std::time::Duration;

use anyhow::Context;
use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use tokio::sync::mpsc;

use crate::clock::wall_ms as now_ms;
use crate::config::Config;
use crate::handle::{SiteHandle, SiteRequest};
use publisher::{HaSettings, Publish, Publisher};

/// Wait after Home Assistant's `online` before re-announcing: it subscribes right after.
const BIRTH_DELAY: Duration = Duration::from_secs(2);
/// How often a re-announcement due after Home Assistant's birth message is looked for.
const REFRESH_TICK: Duration = Duration::from_secs(5);

enum Incoming {
    Connected,
    Message { topic: String, payload: Vec<u8> },
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
    let mut publisher = Publisher::new(settings, &config.site.name).context("site.name")?;
    let status = publisher.topics().bridge_status();
    let mut options = crate::broker_client::options(&config.mqtt, "ha").context("mqtt.url")?;
    options.set_last_will(LastWill::new(&status, "offline", QoS::AtLeastOnce, true));
    let (client, mut eventloop) = AsyncClient::new(options, 20_000);
    let (incoming_tx, mut incoming) = mpsc::channel(1024);
    let ha_status = format!("{}/status", config.homeassistant.discovery_prefix);

    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if incoming_tx.send(Incoming::Connected).await.is_err() {
                        break;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let message = Incoming::Message {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    };
                    if incoming_tx.send(message).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("Home Assistant MQTT: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    });

    tokio::spawn(async move {
        let mut snapshots = site.subscribe();
        let mut refresh = tokio::time::interval(REFRESH_TICK);
        let mut birth: Option<tokio::time::Instant> = None;
        loop {
            let messages = tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() { break; }
                    publisher.update(now_ms(), &site.snapshot())
                }
                _ = refresh.tick() => {
                    if birth.is_some_and(|at| tokio::time::Instant::now() >= at) {
                        birth = None;
                        publisher.announce_all(now_ms(), &site.snapshot())
                    } else {
                        // State refreshes ride on the snapshots, published every cycle.
                        Vec::new()
                    }
                }
                message = incoming.recv() => match message {
                    None => break,
                    Some(Incoming::Connected) => {
                        let filters = publisher.topics().command_filters();
                        for filter in filters.iter().chain(std::iter::once(&ha_status)) {
                            if let Err(e) = client.subscribe(filter, QoS::AtLeastOnce).await {
                                tracing::warn!("subscribing {filter}: {e}");
                            }
                        }
                        publisher.announce_all(now_ms(), &site.snapshot())
                    }
                    Some(Incoming::Message { topic, payload }) if topic == ha_status => {
                        if payload == b"online" {
                            tracing::info!("Home Assistant is online: announcing again");
                            birth = Some(tokio::time::Instant::now() + BIRTH_DELAY);
                        }
                        Vec::new()
                    }
                    Some(Incoming::Message { topic, payload }) => {
                        handle_command(&mut publisher, &site, &topic, &payload).await
                    }
                },
            };
            for Publish {
                topic,
                payload,
                retain,
            } in messages
            {
                if let Err(e) = client
                    .publish(topic, QoS::AtLeastOnce, retain, payload)
                    .await
                {
                    tracing::warn!("Home Assistant publish: {e}");
                }
            }
        }
    });
    Ok(())
}

/// Applies one command; a refused one is logged, counted and answered with the state in
/// force, so Home Assistant's control snaps back.
async fn handle_command(
    publisher: &mut Publisher,
    site: &SiteHandle,
    topic: &str,
    payload: &[u8],
) -> Vec<Publish> {
    let Some(target) = publisher.topics().parse_command(topic) else {
        site.send(SiteRequest::Rejected("ha_command_topic")).await;
        tracing::debug!(topic, "not a command topic of this site");
        return Vec::new();
    };
    let dev = match &target {
        ctrl22_ha::ctrl22::CommandTarget::Bay { dev, .. } => Some(dev.clone()),
        ctrl22_ha::ctrl22::CommandTarget::Site(_) => None,
    };
    let result = match command::parse(&target, payload) {
        Ok(change) => site.apply(change).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => Vec::new(),
        Err(problem) => {
            tracing::info!(topic, "Home Assistant command refused: {problem}");
            site.send(SiteRequest::Rejected("ha_command")).await;
            publisher.republish_bay(now_ms(), &site.snapshot(), dev.as_deref().unwrap_or(""))
        }
    }
}
