//! One HTTP GET of a device API with reqwest: the status mapped to typed errors (401/403
//! are credentials, other non-2xx the device's trouble), the body read up to
//! [`super::json::MAX_BODY_BYTES`] and no further. Timeouts are the poller's.

use super::error::SourceError;
use super::json::MAX_BODY_BYTES;

/// How a device wants to be asked.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    #[default]
    None,
    Basic {
        username: String,
        password: Option<String>,
    },
    Bearer(String),
}

/// A prepared GET.
#[derive(Clone, Debug)]
pub struct Get {
    pub url: String,
    /// Query pairs added to the URL (secrets go here, never into the logged URL).
    pub query: Vec<(&'static str, String)>,
    pub auth: Auth,
    /// The source's timeout, named in the error when reqwest's connect timeout fires.
    pub timeout: std::time::Duration,
}

fn transport(e: reqwest::Error, timeout: std::time::Duration) -> SourceError {
    if e.is_timeout() {
        SourceError::Timeout(timeout)
    } else {
        // Without the URL: its query may hold a key.
        SourceError::Connect(e.without_url().to_string())
    }
}

impl Get {
    /// Sends the request and reads the body.
    ///
    /// # Errors
    /// Connection failures, 401/403, other non-2xx answers and bodies over the limit.
    pub async fn send(&self, client: &reqwest::Client) -> Result<Vec<u8>, SourceError> {
        let mut request = client.get(&self.url);
        if !self.query.is_empty() {
            request = request.query(&self.query);
        }
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, password.as_ref()),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        let mut response = request
            .send()
            .await
            .map_err(|e| transport(e, self.timeout))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(SourceError::Unauthorized(status.as_u16()));
        }
        if !status.is_success() {
            return Err(SourceError::Status(status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport(e, self.timeout))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(SourceError::Malformed(format!(
                    "the answer is larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// `base` as given when it has a path; otherwise `base` + `path` (the kind's default).
#[must_use]
pub fn device_url(base: &str, path: &str) -> String {
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    match rest.find('/') {
        Some(i) if rest.len() > i + 1 => base.to_owned(),
        _ => format!("{}{path}", base.trim_end_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::device_url;

    #[test]
    fn a_bare_host_gets_the_kinds_path() {
        assert_eq!(
            device_url("http://inverter", "/a?b=1"),
            "http://inverter/a?b=1"
        );
        assert_eq!(device_url("http://inverter/", "/a"), "http://inverter/a");
        assert_eq!(
            device_url("http://shelly/status", "/rpc"),
            "http://shelly/status"
        );
    }
}
