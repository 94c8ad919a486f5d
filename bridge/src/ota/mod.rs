//! Firmware updates of the bays, as sans-IO state machines of the core.
//!
//! | file | idea |
//! |---|---|
//! | `esp32.rs` | ESP32 node firmware of a board: `upgrade` to the root, then each matching bay's `system` followed until it reports the version; stragglers |
//! | `flasher.rs` | flashing one node's AVR controller over the mesh: chunks, CRC acknowledgement, retries; Intel HEX |
//! | `folder.rs` | the firmware folder: its images by file name, loading one (the only disk access here) |
//! | `job_view.rs` | an AVR job as adapters see it: state, percent, `GET /api/v1/ota`'s job JSON |
//! | `jobs.rs` | the site's job queue: a job per bay, a few at a time, restart after the bay dropped off, `ver` verified, bays held meanwhile |
//! | `server.rs` | the image server the mesh root fetches ESP32 images from (`[firmware] esp32_port`; IO) |
//!
//! The site core owns an [`jobs::OtaJobs`] and holds a bay's setpoints while its job runs;
//! `mesh avrflash` without a running bridge drives a [`flasher::Flasher`] directly.

pub mod esp32;
pub mod flasher;
pub mod folder;
pub mod job_view;
pub mod jobs;
pub mod server;
