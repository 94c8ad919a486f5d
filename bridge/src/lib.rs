//! # ctrl22-bridge
