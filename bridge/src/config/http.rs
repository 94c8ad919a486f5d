//! `[http]`: the REST API, the dashboard and `/metrics`, and the bounds that keep one slow or
//! hostile client from starving the others.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[http]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Bearer token required for `PUT`; none = read-only API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Require the token for reads too (API, dashboard, live stream, CSV), not only for
    /// changes; for a listener others can reach.
    pub protect_reads: bool,
    /// Open connections served at once; more wait in the kernel's backlog. At least 1.
    pub max_connections: usize,
    /// The longest a request may take from its first byte to the end of the answer (the live
    /// stream excepted).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// The longest a client may take to send its request headers (slowloris).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Live-stream (server-sent events) clients at once; more are answered 503.
    pub max_sse_clients: usize,
    /// With a loopback `listen`: `Host` header values accepted besides `localhost`,
    /// `127.0.0.1` and `[::1]` (with or without the port), e.g. a reverse proxy's name. Any
    /// other `Host` is refused, so a web page cannot reach the API by DNS rebinding.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            protect_reads: false,
            max_connections: 256,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_sse_clients: 32,
            allowed_hosts: Vec::new(),
        }
    }
}
