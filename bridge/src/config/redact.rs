//! Secrets out of everything printed: [`Config::redacted`] for `check-config`, [`url`] for
//! every error and log line that shows a URL.

use super::Config;

/// What [`Config::redacted`] and [`url`] put in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// `text` with the `user:password@` of every URL in it replaced by [`REDACTED`]: a bare URL
/// (`mqtts://u:p@broker:8883` -> `mqtts://<redacted>@broker:8883`) or a message quoting one.
/// The authority ends at the first `/`, `?`, `#`, whitespace or quote, so an `@` in a path is
/// left alone.
#[must_use]
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_len = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(tail.len());
        let (authority, after) = tail.split_at(authority_len);
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                out.push_str(authority.get(userinfo_end..).unwrap_or_default());
            }
            None => out.push_str(authority),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn secret(value: &mut Option<String>) {
    if value.is_some() {
        *value = Some(REDACTED.into());
    }
}

impl Config {
    /// A copy with passwords, tokens and URL credentials replaced by [`REDACTED`], for printing.
    #[must_use]
    pub fn redacted(&self) -> Self {
        let mut c = self.clone();
        secret(&mut c.mqtt.password);
        c.mqtt.url = url(&c.mqtt.url);
        for source in &mut c.solar.sources {
            secret(&mut source.password);
            secret(&mut source.token);
            source.url = source.url.as_deref().map(url);
        }
        secret(&mut c.ocpp.password);
        c.ocpp.url = c.ocpp.url.as_deref().map(url);
        secret(&mut c.http.token);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_hidden() {
        assert_eq!(
            url("mqtts://u:p@broker:8883/x"),
            "mqtts://<redacted>@broker:8883/x"
        );
        assert_eq!(url("mqtt://broker"), "mqtt://broker");
        assert_eq!(url("http://h/a@b"), "http://h/a@b");
        assert_eq!(url("ws://only-user@csms"), "ws://<redacted>@csms");
        // An `@` in the password itself: everything up to the last `@` of the authority.
        assert_eq!(url("mqtt://u:p@ss@b:1883"), "mqtt://<redacted>@b:1883");
    }

    #[test]
    fn urls_inside_messages_are_hidden() {
        assert_eq!(
            url(r#"mqtt.url: "http://u:pw@b" must start with mqtt://, then wss://a:b@c?x=@"#),
            r#"mqtt.url: "http://<redacted>@b" must start with mqtt://, then wss://<redacted>@c?x=@"#
        );
        assert_eq!(url("no url here: a@b"), "no url here: a@b");
        assert_eq!(url("trailing ://"), "trailing ://");
        assert_eq!(url("://@"), "://<redacted>@");
    }
}
