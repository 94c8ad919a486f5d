//! `ctrl22-bridge healthcheck`: one `GET /healthz` against a running bridge, for container
//! health checks (`HEALTHCHECK` in the image, which has no curl) and supervisors.
//!
//! It asks the address of `http.listen` (a wildcard listen address is asked on loopback) or
//! an explicit `--url`, gives up after a short timeout, and only a `200` counts as healthy.
//! The answer's body is never read: a bridge that answers `200` is alive, whatever it says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;

/// How long a probe may take, connect to answer, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest timeout accepted: a health check that waits longer than a minute only delays
/// the supervisor's restart of a hung bridge.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the bridge is not healthy (or could not be asked).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{url}: only http:// URLs with a host can be probed")]
    BadUrl { url: String },
    #[error("{url}: no answer within {} ms", timeout.as_millis())]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: cannot connect: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("{url}: {source}")]
    Http { url: String, source: hyper::Error },
    #[error("{url}: answered {status}")]
    Status { url: String, status: StatusCode },
}

/// The `/healthz` URL of a bridge listening on `listen`; a wildcard address (`0.0.0.0`,
/// `[::]`, as in a container) is reached on the loopback address of its family.
#[must_use]
pub fn healthz_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/healthz", SocketAddr::new(ip, listen.port()))
}

/// One `GET url`, connect and answer within `timeout`; `Ok` only for a `200`.
///
/// # Errors
/// [`ProbeError`] saying what failed: the URL, the connection, the timeout or the status.
pub async fn probe(url: &str, timeout: Duration) -> Result<(), ProbeError> {
    let url_text = url.to_owned();
    let bad_url = || ProbeError::BadUrl {
        url: url_text.clone(),
    };
    let url: Uri = url.parse().map_err(|_| bad_url())?;
    let (Some("http"), Some(host)) = (url.scheme_str(), url.host()) else {
        return Err(bad_url());
    };
    // `[::1]` is written with brackets in a URL but connected to without.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_u16().unwrap_or(80);
    let request = Request::get(url.path_and_query().map_or("/", |p| p.as_str()))
        .header(
            hyper::header::HOST,
            url.authority().map_or("", |a| a.as_str()),
        )
        .header(hyper::header::USER_AGENT, "ctrl22-bridge-healthcheck")
        .body(Empty::<Bytes>::new())
        .map_err(|_| bad_url())?;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|source| ProbeError::Connect {
                url: url_text.clone(),
                source,
            })?;
        let http = |source| ProbeError::Http {
            url: url_text.clone(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        // The connection task ends with the exchange; its own error shows up in the answer.
        let driver = tokio::spawn(connection);
        let answer = sender.send_request(request).await.map_err(http);
        driver.abort();
        answer
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ProbeError::Timeout {
            url: url_text.clone(),
            timeout,
        })??;
    match answer.status() {
        StatusCode::OK => Ok(()),
        status => Err(ProbeError::Status {
            url: url_text,
            status,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_probed_on_loopback() {
        let url = |listen: &str| healthz_url(listen.parse().expect("socket address"));
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080/healthz");
        assert_eq!(url("[::]:9000"), "http://[::1]:9000/healthz");
        assert_eq!(url("192.0.2.7:80"), "http://192.0.2.7:80/healthz");
    }

    #[tokio::test]
    async fn only_http_urls_are_probed() {
        for url in ["https://127.0.0.1/healthz", "/healthz", "http://"] {
            let err = probe(url, DEFAULT_TIMEOUT).await;
            assert!(
                matches!(err, Err(ProbeError::BadUrl { .. })),
                "{url}: {err:?}"
            );
        }
    }
}
