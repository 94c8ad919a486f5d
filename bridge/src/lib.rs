//! # ctrl22-bridge
//!
//! The site controller for a parking lot of CTRL22 charging bays behind one grid connection.

pub mod allocate;
pub mod bay;
pub mod broker;
pub mod clock;
pub mod config;
pub mod demo;
pub mod ha;
pub mod handle;
pub mod healthcheck;
pub mod http;
pub mod mesh;
pub mod mqtt;
pub mod runtime;
pub mod setpoint;
pub mod site;
pub mod solar;
pub mod store;
