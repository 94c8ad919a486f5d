//! The firmware steps of `ctrl22-bridge mesh` without a running bridge: `avrflash` driven
//! over the uplink, and the ESP32 image name `upgrade` sends.

use std::future::Future;

use ctrl22_node::mesh::{Address, MacAddr};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::progress::Progress;
use super::super::{MeshCommand, MeshEvent, MeshSender, SendError};
use super::{print_link_event, ToolError};
use crate::config::firmware::ImageName;
use crate::ota::flasher::{FlashStep, Flasher};

pub(super) async fn avrflash(
    sender: &MeshSender,
    events: &mut mpsc::Receiver<MeshEvent>,
    node: MacAddr,
    image: Vec<u8>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ToolError> {
    tokio::pin!(shutdown);
    let mut flasher = Flasher::new(node, image)?;
    let mut step = flasher.start();
    let mut deadline = Instant::now();
    let mut progress = Progress::new(&node.to_string());
    loop {
        match step {
            FlashStep::Send(cmd) => {
                sender
                    .send(MeshCommand {
                        dst: Address::Node(node),
                        cmd,
                    })
                    .await?;
                deadline = Instant::now() + flasher.timeout();
            }
            FlashStep::Done(result) => {
                progress.finish();
                result?;
                println!("{node} avrflash ok: the controller is running");
                return Ok(());
            }
            FlashStep::Wait => {}
        }
        let (done, total) = flasher.progress();
        progress.set(
            "flashing",
            u64::try_from(done).unwrap_or(u64::MAX),
            u64::try_from(total).unwrap_or(u64::MAX),
        );
        step = tokio::select! {
            () = &mut shutdown => return Err(ToolError::Interrupted),
            () = tokio::time::sleep_until(deadline) => flasher.on_timeout(),
            event = events.recv() => match event {
                Some(MeshEvent::Message { src, msg }) => flasher.on_message(src, &msg),
                Some(other) => {
                    print_link_event(&other);
                    FlashStep::Wait
                }
                None => return Err(ToolError::Send(SendError::Closed)),
            },
        };
    }
}

/// The firmware's file name of ESP32 VERSION (`M.m`) for BOARD: `demesh_<board>_<M>_<m>.bin`.
pub(super) fn esp32_image_name(board: &str, version: &str) -> Result<String, ToolError> {
    let usage = || ToolError::Usage(format!("upgrade: VERSION {version:?} is not M.m"));
    let (major, minor) = version.split_once('.').ok_or_else(usage)?;
    let major: u16 = major.parse().map_err(|_| usage())?;
    let minor: u16 = minor.parse().map_err(|_| usage())?;
    let name = format!("demesh_{board}_{major}_{minor}.bin");
    // The folder's own parser decides what a board name may be.
    if !matches!(ImageName::parse(&name), Some(ImageName::Esp32 { .. })) {
        return Err(ToolError::Usage(format!(
            "upgrade: BOARD {board:?} is not a board name"
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp32_image_names_follow_the_firmware_convention() {
        assert_eq!(
            esp32_image_name("m5stick", "3.5").ok().as_deref(),
            Some("demesh_m5stick_3_5.bin")
        );
        assert!(esp32_image_name("m5stick", "3").is_err());
        assert!(esp32_image_name("m5stick", "3.x").is_err());
        assert!(esp32_image_name("../etc", "3.5").is_err());
        assert!(esp32_image_name("m5_stick", "3.5").is_err());
    }
}
