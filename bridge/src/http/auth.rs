//! The bearer token that guards every write.
//!
//! The comparison is constant-time (`subtle`) so the answer's timing does not tell an
//! attacker how many leading bytes they got right. It does reveal whether the length matched,
//! which says little about a token of reasonable length.

use axum::http::{header, HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

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

/// Lets a write through if `headers` carry the configured token.
///
/// # Errors
/// 403 when no token is configured (read-only API), 401 when the token is missing or wrong.
pub(super) fn authorize(token: Option<&Token>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the API is read-only: no [http] token is configured",
        ));
    };
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, credentials) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| credentials.trim())
        });
    match offered {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer <token>)",
        )),
        Some(offered) if token.matches(offered) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong token")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn only_the_configured_bearer_token_passes() {
        let token = Token::new("s3cret".to_owned());
        assert!(authorize(Some(&token), &headers("Bearer s3cret")).is_ok());
        assert!(authorize(Some(&token), &headers("bearer s3cret")).is_ok());
        for bad in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Basic s3cret",
            "s3cret",
            "Bearer ",
        ] {
            let e = authorize(Some(&token), &headers(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{bad}");
        }
        let e = authorize(Some(&token), &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn without_a_token_everything_is_refused() {
        let e = authorize(None, &headers("Bearer anything")).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn debug_does_not_show_the_token() {
        assert!(!format!("{:?}", Token::new("s3cret".to_owned())).contains("s3cret"));
    }
}
