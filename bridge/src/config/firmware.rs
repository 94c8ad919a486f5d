//! `[firmware]`: the folder firmware images are dropped into, and how updates run.
//!
//! File names say what an image is, so that dropping a file is all it takes:
//!
//! | image | file name | example |
//! |---|---|---|
//! | AVR charge controller | `ctrl22_<board>_<ver>.hex` or `.bin`, `<ver>` the controller's integer `ver` (14 = v1.4) | `ctrl22_agccs12_15.hex` |
//! | ESP32 mesh node | `demesh_<board>_<M>_<m>.bin` (the node firmware's own convention) | `demesh_agccs12_3_5.bin` |
//!
//! The newest version per board becomes the "latest version" of the bays with that board.
//! Other files in the folder are ignored.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[firmware]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirmwareConfig {
    /// The firmware folder; none = installs only from uploaded images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Bays flashed at the same time (the mesh's bandwidth is shared). 1 to 16.
    pub max_parallel: usize,
    /// Where the bridge serves ESP32 images to the mesh root (`http://<bridge>:<port>/`).
    pub esp32_port: u16,
    /// The address the image server listens on (all interfaces: the root is on the mesh's
    /// router network).
    pub esp32_host: IpAddr,
    /// Bays of the board that have not reported the new version this long after `upgrade`
    /// are the job's stragglers. 10 s to 2 h.
    #[serde(with = "humantime_serde")]
    pub esp32_timeout: Duration,
    /// Largest image accepted, uploaded or from the folder, bytes.
    pub max_image_bytes: usize,
}

impl Default for FirmwareConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_parallel: 2,
            esp32_port: 8071,
            esp32_host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            esp32_timeout: Duration::from_secs(15 * 60),
            // An Intel HEX file of the largest AVR's 256 KiB is about 720 KB.
            max_image_bytes: 1024 * 1024,
        }
    }
}

/// The shortest and longest `esp32_timeout` the configuration accepts.
pub const ESP32_TIMEOUT: (Duration, Duration) =
    (Duration::from_secs(10), Duration::from_secs(2 * 3600));

/// Most bays flashed at once that the configuration accepts.
pub const MAX_PARALLEL: usize = 16;

/// What a file name in the firmware folder says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageName {
    /// An AVR controller image for `board`, `ver` `version`.
    Avr { board: String, version: i16 },
    /// ESP32 node firmware `major.minor` for `board`.
    Esp32 {
        board: String,
        major: u16,
        minor: u16,
    },
}

impl ImageName {
    /// What `file_name` names, or `None` for a file that follows neither convention.
    #[must_use]
    pub fn parse(file_name: &str) -> Option<Self> {
        if let Some(rest) = file_name.strip_prefix("demesh_") {
            let stem = rest.strip_suffix(".bin")?;
            let mut parts = stem.rsplitn(3, '_');
            let minor = parts.next()?.parse().ok()?;
            let major = parts.next()?.parse().ok()?;
            let board = parts.next().filter(|b| is_board(b))?;
            return Some(Self::Esp32 {
                board: board.to_owned(),
                major,
                minor,
            });
        }
        let rest = file_name.strip_prefix("ctrl22_")?;
        let stem = rest
            .strip_suffix(".hex")
            .or_else(|| rest.strip_suffix(".bin"))?;
        let (board, version) = stem.rsplit_once('_')?;
        let version = version.parse().ok().filter(|v: &i16| *v > 0)?;
        is_board(board).then(|| Self::Avr {
            board: board.to_owned(),
            version,
        })
    }
}

/// Board names are short words (`m5stick`, `agccs12`).
fn is_board(board: &str) -> bool {
    !board.is_empty()
        && board.len() <= 32
        && board
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `name` may be looked up in the firmware folder: a plain file name, no path.
#[must_use]
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_the_conventions() {
        assert_eq!(
            ImageName::parse("ctrl22_agccs12_15.hex"),
            Some(ImageName::Avr {
                board: "agccs12".into(),
                version: 15
            })
        );
        assert_eq!(
            ImageName::parse("ctrl22_m5stick_14.bin"),
            Some(ImageName::Avr {
                board: "m5stick".into(),
                version: 14
            })
        );
        assert_eq!(
            ImageName::parse("demesh_agccs12_3_5.bin"),
            Some(ImageName::Esp32 {
                board: "agccs12".into(),
                major: 3,
                minor: 5
            })
        );
        for other in [
            "ctrl22c.hex",
            "ctrl22_agccs12_x.hex",
            "ctrl22_agccs12_0.hex",
            "ctrl22__15.hex",
            "demesh_agccs12_3.bin",
            "demesh_agccs12_3_5.hex",
            "readme.txt",
        ] {
            assert_eq!(ImageName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn only_plain_names_are_looked_up() {
        assert!(is_plain_file_name("ctrl22_agccs12_15.hex"));
        for bad in ["../etc/passwd", "a/b.hex", ".hidden", "", "a b.hex"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}
