//! How the bridge reaches its MQTT broker: URL, credentials and TLS, shared by the mesh link
//! and the Home Assistant adapter.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::tokio_rustls::rustls;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};

use crate::config::MqttConfig;
use crate::mesh::LinkError;

const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Far larger than any mesh message so that oversized garbage reaches us and is rejected as
/// `TooLong`, instead of rumqttc dropping the whole connection over it. Larger packets
/// still cost a reconnect: cap them at the broker (`max_packet_size` in Mosquitto).
const MAX_INCOMING_PACKET: usize = 16 * 1024 * 1024;
/// Discovery payloads of a bay device are the largest thing the bridge sends.
const MAX_OUTGOING_PACKET: usize = 256 * 1024;

/// A broker address taken from `mqtt.url`.
#[derive(Debug, PartialEq, Eq)]
struct BrokerUrl {
    tls: bool,
    host: String,
    port: u16,
    /// `user:password@` from the URL, used when `mqtt.username` is not set.
    credentials: Option<(String, String)>,
}

fn parse_url(url: &str) -> Result<BrokerUrl, LinkError> {
    // The URL may carry `user:password@`.
    let bad =
        |why: &str| LinkError::BadUrl(format!("{:?}: {why}", crate::config::redact::url(url)));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let tls = match scheme {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        _ => return Err(bad("scheme must be mqtt:// or mqtts://")),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (Some((user.to_owned(), pass.to_owned())), hp)
        }
        None => (None, authority),
    };
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None => default_port,
        };
        (host, port)
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad("bad port"))?),
            None => (host_port, default_port),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(BrokerUrl {
        tls,
        host: host.to_owned(),
        port,
        credentials,
    })
}

/// TLS with the platform's roots plus `ca_file`; bad platform certificates are skipped rather
/// than fatal (rumqttc's default configuration would panic on them).
fn tls_config(cfg: &MqttConfig) -> Result<TlsConfiguration, LinkError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("skipping platform certificates: {e}");
    }
    let (_, skipped) = roots.add_parsable_certificates(native.certs);
    if skipped > 0 {
        tracing::debug!(skipped, "unparsable platform certificates");
    }
    if let Some(path) = &cfg.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| LinkError::Tls(format!("mqtt.ca_file {}: {e}", path.display())))?;
        roots.add_parsable_certificates(certs);
    }
    if roots.is_empty() {
        return Err(LinkError::Tls(
            "no trusted CA certificates (platform store empty; set mqtt.ca_file)".into(),
        ));
    }
    // An explicit provider: several crates of the build enable rustls providers, and
    // `ClientConfig::builder()` refuses to choose between them.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LinkError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

/// Options for one of the bridge's broker connections. Each `role` (`mesh`, `ha`) gets its
/// own client id, `<client_id>-<role>`: two clients with one id would keep disconnecting
/// each other.
///
/// # Errors
/// A bad `mqtt.url` or TLS setup.
pub fn options(cfg: &MqttConfig, role: &str) -> Result<MqttOptions, LinkError> {
    let url = parse_url(&cfg.url)?;
    let mut options = MqttOptions::new(format!("{}-{role}", cfg.client_id), &url.host, url.port);
    options.set_keep_alive(KEEP_ALIVE);
    options.set_clean_session(true);
    options.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
    match (&cfg.username, url.credentials) {
        (Some(user), _) => {
            options.set_credentials(user, cfg.password.clone().unwrap_or_default());
        }
        (None, Some((user, pass))) => {
            options.set_credentials(user, pass);
        }
        (None, None) => {}
    }
    if url.tls {
        options.set_transport(Transport::tls_with_config(tls_config(cfg)?));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let u = parse_url("mqtt://broker").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "broker", 1883));
        let u = parse_url("mqtts://u:p@broker.example:8884/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (true, "broker.example", 8884)
        );
        assert_eq!(u.credentials, Some(("u".into(), "p".into())));
        let u = parse_url("mqtt://[::1]:1999").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1999));
        for bad in ["broker:1883", "http://broker", "mqtt://", "mqtt://h:port"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let e = parse_url("mqtt://u:hunter2@h:port")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2") && e.contains("<redacted>@h"), "{e}");
    }
}
