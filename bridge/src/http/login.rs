//! Logins for the dashboard: `POST /api/v1/login` with the token sets a session cookie, so
//! the page, its live stream and its CSV link work without the token in the page's script
//! (an `EventSource` or a link cannot send an `Authorization` header).
//!
//! The session id is 32 bytes from the operating system's CSPRNG; the server keeps at most
//! [`MAX_LOGINS`] of them in memory, each for [`LOGIN_TTL`]. A restart logs everyone out.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, State};

/// How long a login lasts.
pub(super) const LOGIN_TTL: Duration = Duration::from_secs(12 * 3600);
/// The most logins kept; a new one beyond this ends the one closest to expiry.
pub(super) const MAX_LOGINS: usize = 64;
/// The cookie's name.
pub(super) const COOKIE: &str = "ctrl22_session";

/// The live logins: session id -> when it expires.
#[derive(Debug, Default)]
pub(super) struct Logins {
    sessions: Mutex<HashMap<String, Instant>>,
}

impl Logins {
    /// A new session id, valid until `now + LOGIN_TTL`.
    ///
    /// # Errors
    /// When the operating system has no randomness to give.
    pub(super) fn create(&self, now: Instant) -> Result<String, getrandom::Error> {
        let mut bytes = [0_u8; 32];
        getrandom::getrandom(&mut bytes)?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.lock();
        sessions.retain(|_, expires| *expires > now);
        if sessions.len() >= MAX_LOGINS {
            let soonest = sessions
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(id, _)| id.clone());
            if let Some(soonest) = soonest {
                sessions.remove(&soonest);
            }
        }
        sessions.insert(id.clone(), now + LOGIN_TTL);
        Ok(id)
    }

    /// Whether `id` is a login that has not expired at `now`.
    pub(super) fn valid(&self, id: &str, now: Instant) -> bool {
        self.lock().get(id).is_some_and(|expires| *expires > now)
    }

    pub(super) fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The session id in a request's `Cookie` headers, if any.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    token: String,
}

/// `POST /api/v1/login` with `{"token": "..."}`: 204 and a session cookie.
pub(super) async fn login(
    Extract(state): Extract<State>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let result = serde_json::from_slice::<LoginBody>(&body)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not {{\"token\": \"...\"}}: {e}"),
            )
        })
        .and_then(|body| state.access.check_token(&body.token));
    result.inspect_err(|e| state.refused(e))?;
    let id = state.access.logins.create(Instant::now()).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no session id: {e}"),
        )
    })?;
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        LOGIN_TTL.as_secs()
    );
    Ok(with_cookie(&cookie))
}

/// `POST /api/v1/logout`: ends the login of the request's cookie and clears the cookie.
pub(super) async fn logout(Extract(state): Extract<State>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        state.access.logins.end(id);
    }
    with_cookie(&format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    ))
}

fn with_cookie(cookie: &str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// What the dashboard needs to know before it shows anything.
#[derive(Serialize)]
struct AuthAnswer {
    /// Settings can be changed (a token is configured).
    writable: bool,
    /// Reads need a login too (`http.protect_reads`).
    protect_reads: bool,
    /// This request carries a valid bearer token or session cookie.
    authenticated: bool,
}

/// `GET /api/v1/auth`: open to everyone, so the page can offer the login form.
pub(super) async fn status(Extract(state): Extract<State>, headers: HeaderMap) -> Response {
    Json(AuthAnswer {
        writable: state.access.writable(),
        protect_reads: state.access.protect_reads,
        authenticated: state.access.authenticated(&headers).is_ok(),
    })
    .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn logins_expire_are_bounded_and_end() {
        let logins = Logins::default();
        let t0 = Instant::now();
        let first = logins.create(t0).unwrap();
        assert_eq!(first.len(), 64);
        assert!(logins.valid(&first, t0 + LOGIN_TTL - Duration::from_secs(1)));
        assert!(!logins.valid(&first, t0 + LOGIN_TTL));
        assert!(!logins.valid("00", t0));
        for i in 1..=MAX_LOGINS {
            let at = t0 + Duration::from_secs(u64::try_from(i).unwrap());
            assert_ne!(logins.create(at).unwrap(), first);
        }
        assert_eq!(logins.len(), MAX_LOGINS);
        // The oldest made room for the newest.
        assert!(!logins.valid(&first, t0));
        let last = logins.create(t0 + Duration::from_secs(100)).unwrap();
        logins.end(&last);
        assert!(!logins.valid(&last, t0 + Duration::from_secs(100)));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; ctrl22_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
        headers.insert(header::COOKIE, "ctrl22_sessionx=abc".parse().unwrap());
        assert_eq!(session_cookie(&headers), None);
    }
}
