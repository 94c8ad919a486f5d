//! `ctrl22-bridge mesh ...`: operator tools that replace the original `dmctrl.py`. They use
//! the configured uplink (the MQTT broker, or listening for the root on TCP), send one command
//! to a node address (MAC, `*` or `root`) and print the replies, one line per message in the
//! TCP wire form (`<src> {"src":...,"mtype":...}`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ctrl22_node::mesh::{encode_uplink_tcp_vec, Address, Command, MacAddr, NodeMessage, ParName};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{
    spawn_mqtt, spawn_tcp, LinkError, MeshCommand, MeshEvent, MeshSender, SendError, TcpLinkOptions,
};
use super::{table, tree};
use crate::config::{Config, MeshTransport};
use crate::ota::flasher::{parse_image, FlashError};
use firmware::{avrflash, esp32_image_name};

mod firmware;

/// Flags shared by every mesh tool; they override the configuration file.
#[derive(Debug, clap::Args)]
pub struct MeshArgs {
    /// TOML configuration file (for the broker, mesh id and TCP port).
    #[arg(long, value_name = "FILE", env = "CTRL22_CONFIG")]
    pub config: Option<PathBuf>,
    /// Uplink to use instead of `mesh.transport`.
    #[arg(long, value_enum)]
    pub transport: Option<MeshTransport>,
    /// Broker URL instead of `mqtt.url` (mqtt://host:port).
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    /// Address to listen on for the root instead of `mesh.tcp_listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Mesh id instead of `mesh.mesh_id`.
    #[arg(long, value_name = "ID")]
    pub mesh_id: Option<String>,
    /// How long to print replies after sending.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub wait: Duration,
    /// Talk to the mesh directly even when a running bridge is configured (`http.token`) and
    /// answers; `avrflash` otherwise goes through it, so that it holds the bay meanwhile, and
    /// `getpar`/`setpar` so that the bridge does not take their reply.
    #[arg(long)]
    pub standalone: bool,
    /// How long to wait for the broker connection or for the root to connect.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    #[command(subcommand)]
    pub tool: Tool,
}

/// One operator action. `DST` is a node MAC (either form), `*` (every node) or `root`.
#[derive(Debug, clap::Subcommand)]
pub enum Tool {
    /// Mesh position of each answering node: layer, parent, RSSI, parent latency, mesh size,
    /// as a table.
    #[command(
        long_about = "Asks DST for `status` and prints one row per node that answered within \
                      --wait: mesh layer (1 = root), parent MAC, RSSI to the parent, round trip \
                      to the parent and mesh size. A node that does not answer has no row.",
        after_help = "Examples:\n  ctrl22-bridge mesh status '*'\n  \
                      ctrl22-bridge mesh --wait 10s status d8a01d55a710 --json"
    )]
    Status {
        dst: Address,
        /// A JSON array instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Board, ESP32 firmware version, AVR version and uptime of each answering node, as a
    /// table.
    #[command(after_help = "Examples:\n  ctrl22-bridge mesh system '*'\n  \
                            ctrl22-bridge mesh system root --json")]
    System {
        dst: Address,
        /// A JSON array instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// The mesh as a tree: the root first, every node under its parent, with layer, RSSI,
    /// parent latency, board and firmware versions.
    #[command(
        long_about = "The mesh as a tree: the root first, every node indented under the parent \
                      its `status` reply names, each with its layer, RSSI, parent latency, \
                      board, ESP32 and AVR versions. With a running bridge configured \
                      (`http.token`) it reads the bridge's view of the fleet; otherwise \
                      (or with --standalone) it asks every node for `status` and `system` and \
                      shows who answered within --wait (`?` for what a node did not answer).",
        after_help = "Examples:\n  ctrl22-bridge mesh --config ctrl22.toml tree\n  \
                      ctrl22-bridge mesh --standalone --wait 8s tree --json"
    )]
    Tree {
        /// Nested JSON (each node with its `children`) instead of the text tree.
        #[arg(long)]
        json: bool,
    },
    /// Reboot the node (no reply).
    #[command(after_help = "Example:\n  ctrl22-bridge mesh restart d8a01d55a710")]
    Restart { dst: Address },
    /// Read a charge-controller parameter (e.g. `ver`, `smaxcur`); through a running bridge
    /// when one is configured (`http.token`).
    #[command(after_help = "Example:\n  ctrl22-bridge mesh getpar d8a01d55a710 ver")]
    Getpar {
        dst: Address,
        #[arg(value_parser = parse_par)]
        par: ParName,
    },
    /// Write a charge-controller parameter (currents in 0.1 A, phases as digits); through a
    /// running bridge when one is configured, which takes only `blinks` and `time` on an
    /// enabled bay, never `wdtsec`, currents only 0 or 6 A up to the bay's ceiling, and no
    /// raise the site has no room for.
    #[command(
        after_help = "Examples:\n  ctrl22-bridge mesh setpar d8a01d55a710 blinks 3\n  \
                            ctrl22-bridge mesh setpar d8a01d55a710 smaxcur 100   \
                            (a disabled bay: 10.0 A)"
    )]
    Setpar {
        dst: Address,
        #[arg(value_parser = parse_par)]
        par: ParName,
        #[arg(allow_negative_numbers = true)]
        val: i16,
    },
    /// Print every message from the mesh until Ctrl-C.
    #[command(after_help = "Example:\n  ctrl22-bridge mesh --transport tcp monitor")]
    Monitor,
    /// ESP32 firmware VERSION for BOARD. With a running bridge configured (`http.token`),
    /// the bridge serves `demesh_<BOARD>_<M>_<m>.bin` from its firmware folder and follows
    /// the job (a progress bar); standalone, the root is told to fetch it (no reply).
    #[command(
        after_help = "Examples:\n  ctrl22-bridge mesh upgrade '*' 3.5 m5stick   \
                            (every m5stick bay, through the bridge)\n  \
                            ctrl22-bridge mesh upgrade d8a01d55a710 3.5 m5stick\n  \
                            ctrl22-bridge mesh --standalone upgrade root 3.5 m5stick"
    )]
    Upgrade {
        dst: Address,
        /// Firmware version `M.m`, e.g. `3.5`.
        version: String,
        /// Board name, e.g. `m5stick`.
        board: String,
    },
    /// Flash the AVR charge controller of one node with an Intel-HEX or binary image. With a
    /// running bridge configured (`http.token`), through it: the bridge holds the bay's
    /// setpoints meanwhile and refuses a charging bay unless `--force`.
    #[command(after_help = "Examples:\n  \
                            ctrl22-bridge mesh --config ctrl22.toml avrflash d8a01d55a710 ctrl22_agccs12_15.hex\n  \
                            ctrl22-bridge mesh --standalone avrflash d8a01d55a710 ctrl22c.hex")]
    Avrflash {
        dst: MacAddr,
        image: PathBuf,
        /// Through the bridge: flash even while a car charges (the session ends).
        #[arg(long)]
        force: bool,
    },
    /// Cancel a firmware job of the running bridge (its id from `GET /api/v1/ota` or the
    /// line `avrflash`/`upgrade` print); needs a running bridge (`http.token`).
    #[command(after_help = "Example:\n  ctrl22-bridge mesh --config ctrl22.toml cancel 7")]
    Cancel { job: u64 },
}

fn parse_par(s: &str) -> Result<ParName, String> {
    ParName::try_from(s).map_err(|()| "at most 16 bytes".to_owned())
}

/// Why a tool failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Bad flags for this tool (exit code 2).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("not connected to the mesh within {0:?}")]
    NotConnected(Duration),
    #[error("sending: {0}")]
    Send(#[from] SendError),
    #[error("no reply from {0}")]
    NoReply(Address),
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("avrflash: {0}")]
    Flash(#[from] FlashError),
    #[error("interrupted")]
    Interrupted,
    /// A firmware job or the fleet through the running bridge.
    #[error("through the bridge: {0}")]
    Bridge(String),
    #[error("through the bridge: {0}")]
    Parameter(String),
}

/// Runs one tool until it is done or `shutdown` resolves.
///
/// # Errors
/// [`ToolError`]; `Usage` for bad flags, anything else is a runtime failure.
pub async fn run(
    config: &Config,
    args: MeshArgs,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ToolError> {
    // The image is read before connecting, so a wrong path fails fast.
    let image = match &args.tool {
        Tool::Avrflash { dst, image, force } => {
            let bytes = std::fs::read(image).map_err(|source| ToolError::Read {
                path: image.clone(),
                source,
            })?;
            let parsed = parse_image(&bytes)?;
            let bridge = if args.standalone {
                None
            } else {
                super::via_bridge::find(config).await
            };
            if let Some(bridge) = bridge {
                let name = image
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("upload");
                let dev = dst.topic_form().to_string();
                return bridge.avrflash(&dev, name, bytes, *force).await;
            }
            Some(parsed)
        }
        Tool::Cancel { job } => {
            let bridge = super::via_bridge::find(config).await.ok_or_else(|| {
                ToolError::Usage(
                    "cancel needs a running bridge: http.token in the configuration, \
                     the bridge answering at http.listen"
                        .to_owned(),
                )
            })?;
            return bridge.cancel(*job).await;
        }
        Tool::Tree { json } if !args.standalone => {
            if let Some(bridge) = super::via_bridge::find(config).await {
                let nodes = bridge.fleet().await?;
                return print_tree(&nodes, *json);
            }
            None
        }
        Tool::Upgrade {
            dst,
            version,
            board,
        } if !args.standalone => {
            if let Some(bridge) = super::via_bridge::find(config).await {
                let image = esp32_image_name(board, version)?;
                let dev = match dst {
                    Address::Node(mac) => Some(mac.topic_form().to_string()),
                    Address::Broadcast | Address::Root => None,
                };
                return bridge.upgrade(dev.as_deref(), &image).await;
            }
            None
        }
        Tool::Getpar { dst, par } | Tool::Setpar { dst, par, .. } if !args.standalone => {
            let value = match &args.tool {
                Tool::Setpar { val, .. } => Some(*val),
                _ => None,
            };
            if let Some(bridge) = super::via_bridge::find(config).await {
                let Address::Node(mac) = dst else {
                    return Err(ToolError::Usage(
                        "a running bridge takes parameters one node at a time; \
                         --standalone to send to every node"
                            .to_owned(),
                    ));
                };
                let dev = mac.topic_form().to_string();
                return bridge.parameter(&dev, par.as_str(), value).await;
            }
            None
        }
        _ => None,
    };
    let (tx, mut events) = mpsc::channel(1024);
    let sender = connect(config, &args, tx).await?;
    tokio::pin!(shutdown);
    let connected = tokio::select! {
        () = &mut shutdown => return Err(ToolError::Interrupted),
        up = wait_up(&mut events, args.connect_timeout) => up,
    };
    connected?;

    let (dst, cmd) = match args.tool {
        Tool::Monitor => return monitor(&mut events, shutdown).await,
        Tool::Avrflash { dst, .. } => {
            let image = image.unwrap_or_default();
            return avrflash(&sender, &mut events, dst, image, shutdown).await;
        }
        Tool::Status { dst, json } => {
            return fleet(
                &sender,
                &mut events,
                dst,
                Command::Status,
                json,
                args.wait,
                shutdown,
            )
            .await
        }
        Tool::System { dst, json } => {
            return fleet(
                &sender,
                &mut events,
                dst,
                Command::System,
                json,
                args.wait,
                shutdown,
            )
            .await
        }
        Tool::Tree { json } => {
            let mut answers = tree::Answers::default();
            ask(
                &sender,
                &mut events,
                Address::Broadcast,
                &[Command::Status, Command::System],
                args.wait,
                shutdown,
                |src, msg| answers.add(src, msg),
            )
            .await?;
            let nodes = answers.into_nodes();
            if nodes.is_empty() {
                return Err(ToolError::NoReply(Address::Broadcast));
            }
            return print_tree(&nodes, json);
        }
        // Answered by the bridge above, or refused there without one.
        Tool::Cancel { .. } => {
            return Err(ToolError::Usage("cancel needs a running bridge".to_owned()))
        }
        Tool::Restart { dst } => (dst, Command::Restart),
        Tool::Getpar { dst, par } => (dst, Command::AvrGetPar { par }),
        Tool::Setpar { dst, par, val } => (dst, Command::AvrSetPar { par, val }),
        Tool::Upgrade {
            dst,
            version,
            board,
        } => {
            let too_long = |what| ToolError::Usage(format!("upgrade: {what} is too long"));
            let version = version
                .as_str()
                .try_into()
                .map_err(|()| too_long("VERSION"))?;
            let board = board.as_str().try_into().map_err(|()| too_long("BOARD"))?;
            (dst, Command::Upgrade { version, board })
        }
    };
    let expects_reply = cmd.expects_reply();
    let mut replies = 0usize;
    ask(
        &sender,
        &mut events,
        dst,
        &[cmd],
        args.wait,
        shutdown,
        |src, msg| {
            replies += 1;
            print_message(src, msg);
        },
    )
    .await?;
    if expects_reply && replies == 0 {
        return Err(ToolError::NoReply(dst));
    }
    Ok(())
}

/// Sends `cmds` to `dst` and hands every answer of those kinds from `dst` within `wait` to
/// `on_reply`; link events are printed as they come. A running bridge polls `status` and
/// `system` too: only the kinds asked for count.
async fn ask(
    sender: &MeshSender,
    events: &mut mpsc::Receiver<MeshEvent>,
    dst: Address,
    cmds: &[Command],
    wait: Duration,
    shutdown: impl Future<Output = ()>,
    mut on_reply: impl FnMut(MacAddr, &NodeMessage),
) -> Result<(), ToolError> {
    tokio::pin!(shutdown);
    let reply_types: Vec<&str> = cmds.iter().map(Command::name).collect();
    for cmd in cmds {
        sender
            .send(MeshCommand {
                dst,
                cmd: cmd.clone(),
            })
            .await?;
    }
    let deadline = Instant::now() + wait;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep_until(deadline) => break,
            event = events.recv() => match event {
                Some(MeshEvent::Message { src, msg }) => {
                    let from_dst = match dst {
                        Address::Node(mac) => mac == src,
                        Address::Broadcast | Address::Root => true,
                    };
                    if from_dst && reply_types.contains(&msg.mtype()) {
                        on_reply(src, &msg);
                    }
                }
                Some(other) => print_link_event(&other),
                None => break,
            },
        }
    }
    Ok(())
}

/// `status` or `system` to `dst`, every answer within `wait` as one row; answers of a
/// broadcast are partial by nature (a node that does not answer has no row).
async fn fleet(
    sender: &MeshSender,
    events: &mut mpsc::Receiver<MeshEvent>,
    dst: Address,
    cmd: Command,
    json: bool,
    wait: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ToolError> {
    let mut rows = Vec::new();
    ask(sender, events, dst, &[cmd], wait, shutdown, |src, msg| {
        rows.extend(table::row(src, msg));
    })
    .await?;
    if rows.is_empty() {
        return Err(ToolError::NoReply(dst));
    }
    if json {
        println!("{}", table::render_json(&rows));
    } else {
        print!("{}", table::render_table(&rows));
    }
    Ok(())
}

async fn connect(
    config: &Config,
    args: &MeshArgs,
    events: mpsc::Sender<MeshEvent>,
) -> Result<MeshSender, ToolError> {
    let mesh_id = args.mesh_id.as_deref().unwrap_or(&config.mesh.mesh_id);
    match args.transport.unwrap_or(config.mesh.transport) {
        MeshTransport::Mqtt => {
            if args.listen.is_some() {
                return Err(ToolError::Usage("--listen is for --transport tcp".into()));
            }
            let mut mqtt = config.mqtt.clone();
            if let Some(url) = &args.broker {
                mqtt.url.clone_from(url);
            }
            // A tool next to a running bridge must not take over the bridge's session.
            mqtt.client_id = format!("{}-tool-{}", mqtt.client_id, std::process::id());
            Ok(spawn_mqtt(&mqtt, mesh_id, events).await?)
        }
        MeshTransport::Tcp => {
            if args.broker.is_some() {
                return Err(ToolError::Usage("--broker is for --transport mqtt".into()));
            }
            let listen = args.listen.unwrap_or(config.mesh.tcp_listen);
            eprintln!("waiting for the mesh root to connect to {listen} ...");
            // The same link (framing, allow list) as the bridge's.
            let options = TcpLinkOptions {
                allow: config.mesh.tcp_allow.clone(),
            };
            Ok(spawn_tcp(listen, options, events).await?)
        }
    }
}

async fn wait_up(
    events: &mut mpsc::Receiver<MeshEvent>,
    timeout: Duration,
) -> Result<(), ToolError> {
    let deadline = Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(MeshEvent::LinkUp)) => return Ok(()),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err(ToolError::NotConnected(timeout)),
        }
    }
}

async fn monitor(
    events: &mut mpsc::Receiver<MeshEvent>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ToolError> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            event = events.recv() => match event {
                Some(MeshEvent::Message { src, msg }) => print_message(src, &msg),
                Some(other) => print_link_event(&other),
                None => return Ok(()),
            },
        }
    }
}

fn print_message(src: MacAddr, msg: &NodeMessage) {
    match encode_uplink_tcp_vec(src, msg) {
        Ok(line) => println!("{src} {}", String::from_utf8_lossy(&line).trim_end()),
        Err(_) => println!("{src} {msg:?}"),
    }
}

fn print_link_event(event: &MeshEvent) {
    match event {
        MeshEvent::Rejected { reason, detail } => eprintln!("rejected ({reason}): {detail}"),
        MeshEvent::LinkUp => eprintln!("link up"),
        MeshEvent::LinkDown => eprintln!("link down"),
        MeshEvent::Message { .. } => {}
    }
}

/// The tree of `nodes` on stdout, as text or nested JSON.
fn print_tree(nodes: &[tree::TreeNode], json: bool) -> Result<(), ToolError> {
    if nodes.is_empty() {
        return Err(ToolError::NoReply(Address::Broadcast));
    }
    if json {
        println!("{}", tree::render_json(nodes));
    } else {
        print!("{}", tree::render_text(nodes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_explains_itself_with_an_example() {
        use clap::CommandFactory as _;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            tool: Tool,
        }
        let cli = Cli::command();
        for tool in cli.get_subcommands() {
            let help = tool.get_after_help().map(ToString::to_string);
            assert!(
                help.as_deref()
                    .is_some_and(|h| h.contains("ctrl22-bridge mesh")),
                "{} has no example: {help:?}",
                tool.get_name()
            );
        }
    }
}
