//! `ctrl22-bridge`: the command line (SPEC section 2).
//!
//! Exit codes: 0 ok, 2 bad configuration or arguments (the message names the key), 1 runtime
//! failure.

#[cfg(feature = "demo")]
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use ctrl22_bridge::config::Config;
#[cfg(feature = "demo")]
use ctrl22_bridge::config::DemoArgs;
use ctrl22_bridge::mesh::cli::{MeshArgs, ToolError};

/// Site controller for CTRL22 charging bays: phase-aware allocation, Home Assistant, OCPP, solar.
#[derive(Debug, Parser)]
#[command(name = "ctrl22-bridge", version)]
struct Cli {
    /// Log line format (on stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// More log detail: -v debug, -vv trace (RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// The configuration file, for `run` (the default) and the subcommands that take one.
    #[arg(long, value_name = "FILE", env = "CTRL22_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge daemon (the default without a subcommand).
    Run {
        /// TOML configuration file; without it defaults and CTRL22_* variables apply.
        #[arg(long, value_name = "FILE", env = "CTRL22_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Everything in one process, nothing to install: embedded broker, simulated bays and PV.
    #[cfg(feature = "demo")]
    Demo {
        /// Number of simulated bays.
        #[arg(long, default_value_t = 8)]
        nodes: u32,
        /// Where the HTTP API and dashboard listen.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Simulation speed factor (2 = twice real time).
        #[arg(long, value_name = "X", default_value_t = 1.0)]
        speed: f64,
        /// Where the embedded MQTT broker listens (default: a free port).
        #[arg(long, value_name = "ADDR")]
        mqtt_listen: Option<SocketAddr>,
    },
    /// Validate the configuration and print it as TOML, secrets redacted.
    CheckConfig {
        /// TOML configuration file.
        #[arg(long, value_name = "FILE", env = "CTRL22_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Operator tools for the mesh (replace dmctrl.py): query, configure and flash nodes.
    Mesh(MeshArgs),
    /// Ask a running bridge's `/healthz` (container health checks): exit 0 healthy, 1 not.
    Healthcheck {
        /// The URL to ask; default `/healthz` on the configuration's `http.listen` (a wildcard
        /// address is asked on loopback).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Give up after this long, connect and answer (default 3s).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        /// TOML configuration file (only read for `http.listen`, when `--url` is not given).
        #[arg(long, value_name = "FILE", env = "CTRL22_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.verbose);
    let top_config = cli.config;
    let command = cli.command.unwrap_or(Command::Run { config: None });
    match command {
        Command::Run { config } => {
            let config = config.or(top_config);
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            block_on(async move {
                ctrl22_bridge::runtime::run(config, shutdown_signal())
                    .await
                    .map_err(|e| {
                        tracing::error!("{e:#}");
                        ExitCode::FAILURE
                    })
            })
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            nodes,
            http,
            speed,
            mqtt_listen,
        } => {
            if !(speed.is_finite() && speed > 0.0) {
                eprintln!("error: --speed: {speed} must be a positive number");
                return ExitCode::from(2);
            }
            let args = DemoArgs {
                nodes,
                http,
                speed,
                mqtt_listen,
            };
            block_on(async move {
                ctrl22_bridge::runtime::demo::run(args, shutdown_signal())
                    .await
                    .map_err(|e| {
                        tracing::error!("{e:#}");
                        ExitCode::FAILURE
                    })
            })
        }
        Command::CheckConfig { config } => match load(config.or(top_config).as_deref()) {
            Ok(c) => match c.redacted().to_toml() {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot print the configuration: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(code) => code,
        },
        Command::Mesh(mut args) => {
            args.config = args.config.or(top_config);
            let config = match load(args.config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            block_on(async move {
                ctrl22_bridge::mesh::cli::run(&config, args, shutdown_signal())
                    .await
                    .map_err(|e| {
                        eprintln!("error: {e}");
                        match e {
                            ToolError::Usage(_) => ExitCode::from(2),
                            _ => ExitCode::FAILURE,
                        }
                    })
            })
        }
        Command::Healthcheck {
            url,
            timeout,
            config,
        } => healthcheck(url, timeout, config.or(top_config).as_deref()),
    }
}

/// `healthcheck`: probes the URL given or the configured `http.listen`.
fn healthcheck(url: Option<String>, timeout: Option<Duration>, config: Option<&Path>) -> ExitCode {
    let timeout = timeout.unwrap_or(ctrl22_bridge::healthcheck::DEFAULT_TIMEOUT);
    if timeout.is_zero() || timeout > ctrl22_bridge::healthcheck::MAX_TIMEOUT {
        eprintln!(
            "error: --timeout: {} must be more than 0s and at most {}",
            humantime::format_duration(timeout),
            humantime::format_duration(ctrl22_bridge::healthcheck::MAX_TIMEOUT)
        );
        return ExitCode::from(2);
    }
    let url = match url {
        Some(url) => url,
        None => match load(config) {
            Ok(c) => ctrl22_bridge::healthcheck::healthz_url(c.http.listen),
            Err(code) => return code,
        },
    };
    block_on(async move {
        ctrl22_bridge::healthcheck::probe(&url, timeout)
            .await
            .map_err(|e| {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            })
    })
}

/// Loads the configuration; on failure prints why (naming the key) and gives exit code 2.
fn load(path: Option<&Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        let origin = path.map_or_else(String::new, |p| format!(" in {}", p.display()));
        eprintln!("error: invalid configuration{origin}:\n{e}");
        ExitCode::from(2)
    })
}

fn block_on(task: impl std::future::Future<Output = Result<(), ExitCode>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

fn init_logging(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // The embedded broker logs every connection and subscription at info, and every client
    // that hangs up (our own readiness probe included) as an error: too chatty.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default},rumqttd=warn,rumqttd::server::broker=off"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (impossible here) would only keep the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd).
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
