//! The HTTP API against a real bridge: an embedded broker, simulated bays on it, the site
//! task, and the router called without a socket or served over TCP. Every endpoint, auth
//! failures and logins, bad JSON and refused settings (4xx with a message, nothing changed),
//! and the bounds on connections, time, `limit=`, live streams and `Host`.

#![allow(clippy::unwrap_used)]

mod external_limit;
pub mod fixture;
mod hardening;
mod login;
mod reads;
mod settings;
