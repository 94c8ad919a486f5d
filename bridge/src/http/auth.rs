//! Who may read and write: the bearer token (`[http] token`) or a login's session cookie
//! (see [`super::login`]). Writes always need one of them; reads only with
//! `http.protect_reads`.
//!
//! The token comparison is constant-time (`subtle`) so the answer's timing does not tell an
//! attacker how many leading bytes they got right. It does reveal whether the length matched,
//! which says little about a token of reasonable length.
//!
//! A write carried by the cookie must also send an `X-Requested-With` header: a page of
//! another origin cannot add one without a CORS preflight this server never grants, so the
//! cookie cannot be ridden by a form on another site on the same host (`SameSite` counts
//! another port of the same host as the same site).

use std::time::Instant;

use axum::http::{header, HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

use super::login::{session_cookie, Logins};
use super::ApiError;

/// The configured `[http] token`.
#[derive(Clone)]
pub(super) struct Token(std::sync::Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    pub(super) fn new(token: String) -> Self {
        Self(token.into())
    }

    fn matches(&self, offered: &str) -> bool {
        self.0.as_bytes().ct_eq(offered.as_bytes()).into()
    }
}

/// How a request proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Credential {
    Bearer,
    Session,
}

/// The token, the logins and whether reads need them.
#[derive(Debug)]
pub(super) struct Access {
    token: Option<Token>,
    pub(super) logins: Logins,
    pub(super) protect_reads: bool,
}

impl Access {
    pub(super) fn new(token: Option<String>, protect_reads: bool) -> Self {
        Self {
            token: token.map(Token::new),
            logins: Logins::default(),
            protect_reads,
        }
    }

    /// Whether any write can be allowed (a token is configured).
    pub(super) fn writable(&self) -> bool {
        self.token.is_some()
    }

    /// Lets a login through when `offered` is the configured token.
    ///
    /// # Errors
    /// 403 when no token is configured, 401 when `offered` is not it.
    pub(super) fn check_token(&self, offered: &str) -> Result<(), ApiError> {
        let token = self.token.as_ref().ok_or_else(read_only)?;
        if token.matches(offered) {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong token"))
        }
    }

    /// How `headers` prove who sent them: the bearer token, or a live session cookie.
    ///
    /// # Errors
    /// 401 when neither is there or the bearer token is wrong.
    pub(super) fn authenticated(&self, headers: &HeaderMap) -> Result<Credential, ApiError> {
        let Some(token) = &self.token else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no [http] token is configured, so nobody can log in",
            ));
        };
        if let Some(offered) = bearer(headers) {
            return if token.matches(offered) {
                Ok(Credential::Bearer)
            } else {
                Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong token"))
            };
        }
        match session_cookie(headers) {
            Some(id) if self.logins.valid(id, Instant::now()) => Ok(Credential::Session),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the login has expired or ended: log in again",
            )),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing bearer token (Authorization: Bearer <token>) or login",
            )),
        }
    }

    /// Lets a write through with the token or a login (plus `X-Requested-With`).
    ///
    /// # Errors
    /// 403 when no token is configured (read-only API) or a cookie write lacks
    /// `X-Requested-With`, 401 when the credentials are missing or wrong.
    pub(super) fn authorize_write(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.token.is_none() {
            return Err(read_only());
        }
        match self.authenticated(headers)? {
            Credential::Bearer => Ok(()),
            Credential::Session if headers.contains_key("x-requested-with") => Ok(()),
            Credential::Session => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a write with the login cookie needs an X-Requested-With header",
            )),
        }
    }

    /// Lets a read through: always, or with `protect_reads` only with credentials.
    ///
    /// # Errors
    /// 401 as [`Access::authenticated`].
    pub(super) fn authorize_read(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.protect_reads {
            self.authenticated(headers).map(|_| ())
        } else {
            Ok(())
        }
    }
}

fn read_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "the API is read-only: no [http] token is configured",
    )
}

/// The credentials of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn auth(value: &str) -> HeaderMap {
        headers(&[("authorization", value)])
    }

    #[test]
    fn only_the_configured_bearer_token_passes() {
        let access = Access::new(Some("s3cret".to_owned()), false);
        assert!(access.authorize_write(&auth("Bearer s3cret")).is_ok());
        assert!(access.authorize_write(&auth("bearer s3cret")).is_ok());
        for bad in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Basic s3cret",
            "s3cret",
            "Bearer ",
        ] {
            let e = access.authorize_write(&auth(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{bad}");
        }
        let e = access.authorize_write(&HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn without_a_token_every_write_is_refused() {
        let access = Access::new(None, false);
        let e = access
            .authorize_write(&auth("Bearer anything"))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(access.authorize_read(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn a_login_reads_and_writes_with_the_csrf_header() {
        let access = Access::new(Some("s3cret".to_owned()), true);
        assert_eq!(
            access.authorize_read(&HeaderMap::new()).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        let id = access.logins.create(Instant::now()).unwrap();
        let cookie = format!("ctrl22_session={id}");
        assert!(access
            .authorize_read(&headers(&[("cookie", &cookie)]))
            .is_ok());
        let e = access
            .authorize_write(&headers(&[("cookie", &cookie)]))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(access
            .authorize_write(&headers(&[
                ("cookie", &cookie),
                ("x-requested-with", "ctrl22")
            ]))
            .is_ok());
        access.logins.end(&id);
        let e = access
            .authorize_read(&headers(&[("cookie", &cookie)]))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let e = access
            .authorize_read(&headers(&[("cookie", "ctrl22_session=guess")]))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn debug_does_not_show_the_token() {
        assert!(!format!("{:?}", Token::new("s3cret".to_owned())).contains("s3cret"));
        let access = Access::new(Some("s3cret".to_owned()), false);
        assert!(!format!("{access:?}").contains("s3cret"));
    }
}
