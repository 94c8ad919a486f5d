//! A value from an MQTT topic: a bare number (`1234.5`), a word (`ON`/`OFF`,
//! `true`/`false`, for a relay), or JSON with the value at `pointer` (Victron's
//! `{"value": 260.6}` with `pointer = "/value"`). Its own client to the broker of `url`
//! (default: `[mqtt]`); the latest message counts, silence for `timeout` is stale.

use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::mpsc;

use super::error::SourceError;
use super::value::{self, Sample, Value};
use crate::config::{MqttConfig, SolarSourceConfig};
use crate::site::SourceId;

/// Parses one payload.
///
/// # Errors
/// Not UTF-8, not a number or word, or JSON without a number at `pointer`.
pub fn parse(payload: &[u8], pointer: Option<&str>) -> Result<Value, SourceError> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| SourceError::Malformed("the payload is not UTF-8".into()))?
        .trim();
    if let Some(word) = value::from_word(text) {
        return Ok(word);
    }
    if pointer.is_none() {
        if let Ok(number) = text.parse::<f64>() {
            return Ok(Value::Number(number));
        }
    }
    let doc = super::json::parse(text.as_bytes())?;
    value::from_json(&doc, pointer.unwrap_or(""))
}

/// Subscribes to the source's topic and forwards every parsed message into `out` (bounded:
/// when the poller lags, the newest message is dropped, the next one is as good).
///
/// # Errors
/// A bad broker URL.
pub fn spawn(
    id: SourceId,
    source: &SolarSourceConfig,
    broker: &MqttConfig,
    out: mpsc::Sender<Result<Sample, SourceError>>,
) -> anyhow::Result<()> {
    let mut cfg = broker.clone();
    if let Some(url) = &source.url {
        cfg.url.clone_from(url);
        cfg.username.clone_from(&source.username);
        cfg.password.clone_from(&source.password);
    }
    let options = crate::broker_client::options(&cfg, &format!("solar{}", id.0))?;
    let (client, mut events) = AsyncClient::new(options, 16);
    let topic = source.topic.clone().unwrap_or_default();
    let source = source.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Err(e) = client.subscribe(&topic, QoS::AtMostOnce).await {
                        tracing::warn!("solar.sources[{}]: subscribing to {topic}: {e}", id.0);
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == topic => {
                    let sample = parse(&p.payload, source.pointer.as_deref())
                        .and_then(|v| value::sample(v, &source));
                    if let Err(mpsc::error::TrySendError::Closed(_)) = out.try_send(sample) {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    // The poller reports the silence; retry the broker without spinning.
                    tracing::debug!("solar.sources[{}]: broker: {e}", id.0);
                    if out.is_closed() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_words_and_json() {
        assert_eq!(parse(b" 1234.5\n", None), Ok(Value::Number(1234.5)));
        assert_eq!(parse(b"ON", None), Ok(Value::On(true)));
        assert_eq!(
            parse(br#"{"value": 260.6}"#, Some("/value")),
            Ok(Value::Number(260.6))
        );
        assert_eq!(
            parse(b"42", Some("/value")).map_err(|e| e.kind()),
            Err("missing")
        );
        assert!(parse(&[0xff, 0xfe], None).is_err());
        // `NaN` parses as a number and is refused by validation, not here.
        assert!(matches!(parse(b"NaN", None), Ok(Value::Number(n)) if n.is_nan()));
    }
}
