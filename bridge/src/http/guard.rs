//! What every request passes before a handler sees it: the `Host` check while the server
//! listens on loopback (a page on an attacker's domain that resolves to 127.0.0.1, DNS
//! rebinding, must not reach the API) and, with `protect_reads`, the login for reads.
//! It also counts requests the timeout layer inside it gave up on.

use axum::extract::{Request, State as Extract};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, State};

/// What may be read without a login even with `protect_reads`: liveness, and what the page
/// needs to show its login form.
const OPEN_PATHS: [&str; 6] = [
    "/healthz",
    "/",
    "/app.js",
    "/style.css",
    "/favicon.svg",
    "/api/v1/auth",
];

/// The names a loopback listener answers to, besides the configured ones.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// The `Host` names a loopback listener accepts (lower case, without port).
#[derive(Clone, Debug)]
pub(super) struct HostCheck {
    names: Vec<String>,
}

impl HostCheck {
    pub(super) fn new(extra: &[String]) -> Self {
        let names = LOOPBACK_NAMES
            .iter()
            .map(|name| (*name).to_owned())
            .chain(extra.iter().map(|name| name.trim().to_ascii_lowercase()))
            .collect();
        Self { names }
    }

    /// Whether `host` (a `Host` header: `name`, `name:port`, `[v6]` or `[v6]:port`) is one
    /// of the names.
    pub(super) fn allows(&self, host: &str) -> bool {
        let name = if host.starts_with('[') {
            match host.find(']') {
                Some(end) => {
                    let (name, rest) = host.split_at(end + 1);
                    if !is_port(rest) {
                        return false;
                    }
                    name
                }
                None => return false,
            }
        } else {
            match host.split_once(':') {
                Some((name, port)) if is_port(&format!(":{port}")) => name,
                Some(_) => return false,
                None => host,
            }
        };
        self.names
            .iter()
            .any(|known| known.eq_ignore_ascii_case(name))
    }
}

/// `""` or `":<digits>"`.
fn is_port(rest: &str) -> bool {
    rest.is_empty()
        || rest.strip_prefix(':').is_some_and(|digits| {
            !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
        })
}

pub(super) async fn guard(
    Extract(state): Extract<State>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(check) = &state.hosts {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| {
                request
                    .uri()
                    .authority()
                    .map(axum::http::uri::Authority::as_str)
            })
            .unwrap_or("");
        if !check.allows(host) {
            let error = ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host {host:?} is not a name of this bridge (it listens on loopback and \
                     answers localhost, 127.0.0.1, [::1] and http.allowed_hosts)"
                ),
            );
            state.refusals.refuse("http_host", &error.message);
            return error.into_response();
        }
    }
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    if is_read && !OPEN_PATHS.contains(&request.uri().path()) {
        if let Err(error) = state.access.authorize_read(request.headers()) {
            state.refused(&error);
            return error.into_response();
        }
    }
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        state.refusals.refuse(
            "http_request_timeout",
            &format!("{path}: no answer within the request timeout"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_or_without_port_and_configured_ones() {
        let check = HostCheck::new(&["Bridge.Local".to_owned()]);
        for good in [
            "localhost",
            "localhost:8080",
            "LOCALHOST:80",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:8080",
            "bridge.local:8080",
        ] {
            assert!(check.allows(good), "{good}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.2",
            "localhost:",
            "localhost:http",
            "localhost:8080:1",
            "[::1",
            "[::1]x",
            "[::2]:8080",
            "::1",
        ] {
            assert!(!check.allows(bad), "{bad}");
        }
    }
}
