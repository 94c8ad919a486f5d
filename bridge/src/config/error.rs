//! What goes wrong loading a configuration, worded for the operator who has to fix the file.

use std::fmt;
use std::path::PathBuf;

use super::redact;

/// One problem found by [`super::Config::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The key, as written in the file: `site.circuits[1].parent`, `nodes.d8a01d55a710.mode`.
    pub key: String,
    /// What is wrong; never a secret (URLs in it are redacted).
    pub problem: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

/// Why the configuration could not be loaded. Every variant names the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Syntax, type or unknown-key errors.
    #[error("{}", display_parse(.0))]
    Parse(Box<figment::Error>),
    #[error("{}", display_list(.0))]
    Invalid(Vec<Invalid>),
}

/// `key: problem (source)` per error, like [`Invalid`], with the key as the file spells it
/// (figment would print environment keys upper-case). figment quotes the offending value, so
/// URL credentials are redacted here too.
fn display_parse(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let key = e.path.join(".").to_ascii_lowercase();
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(source) => format!(" (in {source})"),
                    None => format!(" (in {})", m.name),
                })
                .unwrap_or_default();
            let line = if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{key}: {}{source}", e.kind)
            };
            redact::url(&line)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn display_list(problems: &[Invalid]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
