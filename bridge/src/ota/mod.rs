//! Firmware updates of the bays, as sans-IO state machines of the core.
//!
//! | file | idea |
//! |---|---|
//! | `flasher.rs` | flashing one node's AVR controller over the mesh: chunks, CRC acknowledgement, retries; Intel HEX |
//! | `folder.rs` | the firmware folder: its images by file name, loading one (the only disk access here) |
//! | `jobs.rs` | the site's job queue: a job per bay, a few at a time, restart after the bay dropped off, `ver` verified, bays held meanwhile |
//!
//! The site core owns an [`jobs::OtaJobs`] and holds a bay's setpoints while its job runs;
//! `mesh avrflash` without a running bridge drives a [`flasher::Flasher`] directly.

pub mod flasher;
pub mod folder;
pub mod jobs;
