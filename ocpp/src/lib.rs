//! # ctrl22-ocpp
//!
//! OCPP 1.6-J charge-point sessions for CTRL22 bays. Not yet built: see the OCPP issue.
