//! The bridge's MQTT topic scheme for one site, and parsing a command topic back.

use super::fields::{BayCommand, SiteCommand};
use crate::error::DiscoveryError;
use crate::render::check_id;

/// A command topic, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandTarget {
    Bay { dev: String, command: BayCommand },
    Site(SiteCommand),
}

/// The bridge's MQTT topic scheme for one site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    root: String,
}

impl Topics {
    /// # Errors
    /// [`DiscoveryError::InvalidId`] when `site_id` is not one topic level of
    /// `[a-zA-Z0-9_-]` (it also names the site device in discovery topics).
    pub fn new(site_id: &str) -> Result<Self, DiscoveryError> {
        check_id("site id", site_id)?;
        Ok(Self {
            root: format!("ctrl22/{site_id}"),
        })
    }

    /// Bridge availability, also its last will.
    #[must_use]
    pub fn bridge_status(&self) -> String {
        format!("{}/status", self.root)
    }

    #[must_use]
    pub fn bay_state(&self, dev: &str) -> String {
        format!("{}/node/{dev}/state", self.root)
    }

    #[must_use]
    pub fn bay_availability(&self, dev: &str) -> String {
        format!("{}/node/{dev}/availability", self.root)
    }

    #[must_use]
    pub fn bay_command(&self, dev: &str, command: BayCommand) -> String {
        format!("{}/node/{dev}/set/{}", self.root, command.as_str())
    }

    #[must_use]
    pub fn site_state(&self) -> String {
        format!("{}/site/state", self.root)
    }

    #[must_use]
    pub fn site_command(&self, command: SiteCommand) -> String {
        format!("{}/site/set/{}", self.root, command.as_str())
    }

    /// What to subscribe to for every command of this site.
    #[must_use]
    pub fn command_filters(&self) -> [String; 2] {
        [
            format!("{}/node/+/set/+", self.root),
            format!("{}/site/set/+", self.root),
        ]
    }

    /// The target of a command topic of this site; `None` for anything else.
    #[must_use]
    pub fn parse_command(&self, topic: &str) -> Option<CommandTarget> {
        let rest = topic.strip_prefix(&self.root)?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["node", dev, "set", field] if !dev.is_empty() => Some(CommandTarget::Bay {
                dev: (*dev).to_owned(),
                command: BayCommand::parse(field)?,
            }),
            ["site", "set", field] => SiteCommand::parse(field).map(CommandTarget::Site),
            _ => None,
        }
    }
}
