//! The bridge's running process: one task owns the site state; adapters talk to it by messages.

use crate::config::Config;

/// Runs the bridge until `shutdown` resolves.
///
/// # Errors
/// Fails when a required adapter cannot start (bad broker URL, port in use).
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let _ = (config, shutdown);
    anyhow::bail!("the site runtime is being built")
}
