//! The firmware folder (`[firmware] dir`): which images it holds, and loading one. The one
//! part of `ota` that touches the disk; adapters call it on a blocking thread.

use std::path::Path;

use super::esp32::Esp32Image;
use super::flasher::parse_image;
use super::jobs::AvrImage;
use crate::config::firmware::{is_plain_file_name, ImageName};

/// An image in the folder, by its file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderImage {
    pub file: String,
    pub name: ImageName,
}

/// Why an image cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no firmware folder is configured ([firmware] dir)")]
    NoFolder,
    #[error("{0:?} is not a plain file name")]
    BadName(String),
    #[error("{0:?} is not in the firmware folder")]
    Missing(String),
    #[error("{0:?} is not an AVR image (ctrl22_<board>_<ver>.hex or .bin)")]
    NotAvr(String),
    #[error("{0:?} is not an ESP32 image (demesh_<board>_<M>_<m>.bin)")]
    NotEsp32(String),
    #[error("the image has more than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Invalid(#[from] super::flasher::FlashError),
    #[error("reading the firmware folder: {0}")]
    Io(#[from] std::io::Error),
}

/// The images in `dir` that follow a file-name convention, by name.
///
/// # Errors
/// When the folder cannot be read.
pub fn list(dir: &Path) -> Result<Vec<FolderImage>, ImageError> {
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(file) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(name) = ImageName::parse(&file) {
            images.push(FolderImage { file, name });
        }
    }
    images.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(images)
}

/// The newest AVR image for `board` among `images`.
#[must_use]
pub fn latest_avr<'a>(images: &'a [FolderImage], board: &str) -> Option<&'a FolderImage> {
    images
        .iter()
        .filter(|i| matches!(&i.name, ImageName::Avr { board: b, .. } if b == board))
        .max_by_key(|i| match i.name {
            ImageName::Avr { version, .. } => version,
            ImageName::Esp32 { .. } => 0,
        })
}

/// The newest ESP32 image for `board` among `images`.
#[must_use]
pub fn latest_esp32<'a>(images: &'a [FolderImage], board: &str) -> Option<&'a FolderImage> {
    images
        .iter()
        .filter(|i| matches!(&i.name, ImageName::Esp32 { board: b, .. } if b == board))
        .max_by_key(|i| match i.name {
            ImageName::Esp32 { major, minor, .. } => (major, minor),
            ImageName::Avr { .. } => (0, 0),
        })
}

/// ESP32 image `file` in `dir`: the name must follow the convention and the file exist,
/// at most `max_bytes` long (its bytes are whatever the node firmware build made; the root
/// checks them).
///
/// # Errors
/// No folder, a name that is not an ESP32 image's, a missing or oversized file.
pub fn find_esp32(
    dir: Option<&Path>,
    file: &str,
    max_bytes: usize,
) -> Result<Esp32Image, ImageError> {
    let dir = dir.ok_or(ImageError::NoFolder)?;
    if !is_plain_file_name(file) {
        return Err(ImageError::BadName(file.to_owned()));
    }
    let Some(ImageName::Esp32 {
        board,
        major,
        minor,
    }) = ImageName::parse(file)
    else {
        return Err(ImageError::NotEsp32(file.to_owned()));
    };
    match std::fs::metadata(dir.join(file)) {
        Ok(meta) if meta.is_file() => {
            if usize::try_from(meta.len()).map_or(true, |len| len > max_bytes) {
                return Err(ImageError::TooLarge(max_bytes));
            }
        }
        Ok(_) => return Err(ImageError::Missing(file.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImageError::Missing(file.to_owned()))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Esp32Image {
        file: file.to_owned(),
        board,
        version: format!("{major}.{minor}"),
    })
}

/// Loads AVR image `file` from `dir`, at most `max_bytes` long.
///
/// # Errors
/// No folder, a name with a path in it, a missing, oversized or malformed file.
pub fn load_avr(dir: Option<&Path>, file: &str, max_bytes: usize) -> Result<AvrImage, ImageError> {
    let dir = dir.ok_or(ImageError::NoFolder)?;
    if !is_plain_file_name(file) {
        return Err(ImageError::BadName(file.to_owned()));
    }
    let Some(ImageName::Avr { .. }) = ImageName::parse(file) else {
        return Err(ImageError::NotAvr(file.to_owned()));
    };
    let path = dir.join(file);
    let len = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImageError::Missing(file.to_owned()))
        }
        Err(e) => return Err(e.into()),
    };
    if usize::try_from(len).map_or(true, |len| len > max_bytes) {
        return Err(ImageError::TooLarge(max_bytes));
    }
    let bytes = std::fs::read(&path)?;
    avr_image(file, &bytes, max_bytes)
}

/// An AVR image from `bytes` (Intel HEX or raw) named `name`; its version and board come from
/// the name when it follows the convention.
///
/// # Errors
/// An oversized or malformed image.
pub fn avr_image(name: &str, bytes: &[u8], max_bytes: usize) -> Result<AvrImage, ImageError> {
    if bytes.len() > max_bytes {
        return Err(ImageError::TooLarge(max_bytes));
    }
    let (board, version) = match ImageName::parse(name) {
        Some(ImageName::Avr { board, version }) => (Some(board), Some(version)),
        _ => (None, None),
    };
    Ok(AvrImage {
        name: name.to_owned(),
        bytes: parse_image(bytes)?,
        version,
        board,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_lists_images_and_loads_one_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let hex = b":0400000001020304F2\n:00000001FF\n";
        std::fs::write(dir.path().join("ctrl22_agccs12_15.hex"), hex).unwrap();
        std::fs::write(dir.path().join("ctrl22_agccs12_16.bin"), [1, 2, 3]).unwrap();
        std::fs::write(dir.path().join("ctrl22_m5stick_17.bin"), [1]).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let images = list(dir.path()).unwrap();
        assert_eq!(images.len(), 3);
        assert_eq!(
            latest_avr(&images, "agccs12").unwrap().file,
            "ctrl22_agccs12_16.bin"
        );
        let image = load_avr(Some(dir.path()), "ctrl22_agccs12_15.hex", 1024).unwrap();
        assert_eq!(image.bytes, [1, 2, 3, 4]);
        assert_eq!(image.version, Some(15));
        assert_eq!(image.board.as_deref(), Some("agccs12"));
        assert!(matches!(
            load_avr(Some(dir.path()), "../ctrl22_agccs12_15.hex", 1024),
            Err(ImageError::BadName(_))
        ));
        assert!(matches!(
            load_avr(Some(dir.path()), "ctrl22_agccs12_99.hex", 1024),
            Err(ImageError::Missing(_))
        ));
        assert!(matches!(
            load_avr(Some(dir.path()), "ctrl22_agccs12_15.hex", 10),
            Err(ImageError::TooLarge(10))
        ));
        assert!(matches!(
            load_avr(None, "ctrl22_agccs12_15.hex", 1024),
            Err(ImageError::NoFolder)
        ));
    }
}
