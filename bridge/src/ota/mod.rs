//! Firmware updates of the bays, as sans-IO state machines of the core.
//!
//! [`flasher`] flashes one node's AVR controller over the mesh (chunks, acknowledgement by
//! CRC, retries). Today the `mesh avrflash` command drives it; the site-owned job queue
//! (a few bays at a time, setpoints held while flashing, progress as events) builds on it.

pub mod flasher;
