//! (being written)

/// Placeholder until the configuration module lands.
#[derive(Debug)]
pub struct Config {}
