//! The WebSocket to the backend: `ws://` or `wss://` (rustls), subprotocol `ocpp1.6` checked
//! in the handshake's answer, OCPP security profiles 1 (basic auth), 2 (TLS + basic auth) and
//! 3 (TLS client certificate), and the reconnect back-off (exponential, full jitter) that
//! keeps hundreds of bays from storming a backend that just came back.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::config::OcppConfig;

/// The open connection to the backend.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The one subprotocol we speak.
pub const SUBPROTOCOL: &str = "ocpp1.6";
/// The longest frame we accept: OCPP messages are small; a backend that sends more is wrong.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The socket's read buffer (tungstenite's default is 128 KiB).
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// TCP connect, TLS and the upgrade together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a connection attempt failed (never carries the password).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("bad url: {0}")]
    Url(String),
    #[error("{0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the backend did not take subprotocol ocpp1.6 (answered {0:?})")]
    Subprotocol(Option<String>),
    #[error("connecting took longer than {CONNECT_TIMEOUT:?}")]
    Timeout,
}

/// How we prove who we are, made once from `[ocpp]`.
#[derive(Clone)]
pub struct Security {
    profile: u8,
    password: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("profile", &self.profile)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Security {
    /// Reads the CA and client certificate files of `[ocpp]` (for a `wss://` URL).
    ///
    /// # Errors
    /// Unreadable or invalid PEM files, no trusted roots.
    pub fn from_config(cfg: &OcppConfig) -> anyhow::Result<Self> {
        let wss = cfg.url.as_deref().is_some_and(|u| u.starts_with("wss://"));
        let tls = if wss {
            Some(Arc::new(tls_config(cfg)?))
        } else {
            None
        };
        Ok(Self {
            profile: cfg.security_profile,
            password: cfg.password.clone(),
            tls,
        })
    }
}

fn tls_config(cfg: &OcppConfig) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| anyhow::anyhow!("ocpp.ca_file {}: {e}", path.display()))?;
            roots.add_parsable_certificates(certs);
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "ocpp: no trusted CA certificates (set ocpp.ca_file)"
    );
    // An explicit provider, as for the MQTT link: several crates enable rustls providers.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match (cfg.security_profile, &cfg.client_cert, &cfg.client_key) {
        (3, Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| anyhow::anyhow!("ocpp.client_cert {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow::anyhow!("ocpp.client_key {}: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// Opens the WebSocket of charge point `identity` under `base_url`.
///
/// # Errors
/// Connection, TLS, HTTP (401 for a wrong password) or subprotocol failures.
pub async fn connect(
    base_url: &str,
    identity: &str,
    security: &Security,
) -> Result<Socket, TransportError> {
    let url = format!("{}/{identity}", base_url.trim_end_matches('/'));
    let mut request = url
        .into_client_request()
        .map_err(|e| TransportError::Url(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    if matches!(security.profile, 1 | 2) {
        let password = security.password.as_deref().unwrap_or_default();
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{identity}:{password}"));
        let mut value = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|e| TransportError::Url(e.to_string()))?;
        value.set_sensitive(true);
        headers.insert("Authorization", value);
    }
    // Small buffers: a thousand mostly idle sessions must not hold 256 KiB each (the
    // defaults); OCPP frames are a few hundred bytes and we flush after each burst.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * MAX_MESSAGE_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let connector = security.tls.clone().map(Connector::Rustls);
    let attempt =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(ws_config), true, connector);
    let (socket, response) = tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| TransportError::Timeout)??;
    let answered = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok());
    if answered != Some(SUBPROTOCOL) {
        return Err(TransportError::Subprotocol(answered.map(str::to_owned)));
    }
    Ok(socket)
}

/// Waits between connection attempts: the n-th failure in a row waits a random time in
/// `[0, min(max, 1 s × 2^n)]` (full jitter), so bays that lost the backend together do not
/// come back together.
#[derive(Clone, Debug)]
pub struct Backoff {
    failures: u32,
    max_ms: u64,
}

const BACKOFF_BASE_MS: u64 = 1_000;

impl Backoff {
    #[must_use]
    pub fn new(max: Duration) -> Self {
        Self {
            failures: 0,
            max_ms: u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1),
        }
    }

    /// The wait after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = BACKOFF_BASE_MS
            .saturating_mul(1 << self.failures.min(20))
            .min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(random_below(ceiling.saturating_add(1)))
    }

    /// A connection came up: the next failure waits little again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A uniformly random number in `[0, bound)` from the operating system (bound > 0); 0 if
/// the generator fails (then the attempt is merely not jittered).
fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0;
    }
    u64::from_le_bytes(bytes) % bound.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_maximum_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_secs(8));
        for n in 0..10u32 {
            let ceiling = (1_000u64 << n.min(20)).min(8_000);
            assert!(backoff.next_delay() <= Duration::from_millis(ceiling));
        }
        // Full jitter: not every wait is the maximum.
        let waits: Vec<Duration> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(7_000)));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }
}
