//! SMA over Modbus TCP, the SMA profile (port 502, unit 3; SMA "Modbus interface"
//! register lists; evcc's `sma-inverter-modbus` and `sma-hybrid` templates). Registers are
//! big-endian 32-bit pairs; NaN is 0x8000_0000 (S32) and 0xFFFF_FFFF (U32).
//!
//! - 30775 S32 `GridMs.TotW`: inverter AC power, the PV reading (NaN while it sleeps: 0).
//! - 30865 S32 `TotWIn` (import) and 30867 S32 `TotWOut` (export) of the energy meter:
//!   grid = import - export.
//! - 31393 U32 battery charge and 31395 U32 discharge power: battery = discharge - charge.
//! - 30845 U32 `Bat.ChaStt`: SoC %.
//!
//! Only the registers of the configured measures are read; [`parse`] is pure over them.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio_modbus::client::Reader;
use tokio_modbus::Slave;

use super::error::SourceError;
use super::validate::RawReading;
use crate::config::Measure;

pub const PV_W: u16 = 30775;
pub const GRID_IMPORT_W: u16 = 30865;
pub const GRID_EXPORT_W: u16 = 30867;
pub const SOC_PCT: u16 = 30845;
pub const BATTERY_CHARGE_W: u16 = 31393;
pub const BATTERY_DISCHARGE_W: u16 = 31395;
/// The SMA profile's unit id.
pub const UNIT: u8 = 3;

/// The registers `measures` need.
#[must_use]
pub fn registers_for(measures: &[Measure]) -> Vec<u16> {
    let mut regs = Vec::new();
    for m in measures {
        match m {
            Measure::Grid => regs.extend([GRID_IMPORT_W, GRID_EXPORT_W]),
            Measure::Pv => regs.push(PV_W),
            Measure::Battery => regs.extend([BATTERY_CHARGE_W, BATTERY_DISCHARGE_W]),
            Measure::Soc => regs.push(SOC_PCT),
            Measure::Limit => {}
        }
    }
    regs
}

fn s32(words: [u16; 2]) -> Option<f64> {
    let v = i32::from_be_bytes((u32::from(words[0]) << 16 | u32::from(words[1])).to_be_bytes());
    (v != i32::MIN).then_some(f64::from(v))
}

fn u32_(words: [u16; 2]) -> Option<f64> {
    let v = u32::from(words[0]) << 16 | u32::from(words[1]);
    (v != u32::MAX).then_some(f64::from(v))
}

/// Parses the register pairs read (address -> its two words).
///
/// # Errors
/// None today: NaN registers leave their field empty (validation then says what is missing).
pub fn parse(values: &BTreeMap<u16, [u16; 2]>) -> Result<RawReading, SourceError> {
    let get = |address: u16, decode: fn([u16; 2]) -> Option<f64>| {
        values.get(&address).and_then(|w| decode(*w))
    };
    let present = |address: u16| values.contains_key(&address);
    let pair = |plus: u16, minus: u16, decode: fn([u16; 2]) -> Option<f64>| match (
        get(plus, decode),
        get(minus, decode),
    ) {
        (Some(p), Some(m)) => Some(p - m),
        _ => None,
    };
    Ok(RawReading {
        grid_w: pair(GRID_IMPORT_W, GRID_EXPORT_W, s32),
        pv_w: present(PV_W).then(|| get(PV_W, s32).unwrap_or(0.0)),
        battery_w: pair(BATTERY_DISCHARGE_W, BATTERY_CHARGE_W, u32_),
        battery_soc_pct: get(SOC_PCT, u32_),
        ..RawReading::default()
    })
}

/// Reads `registers` from `unit` at `addr`.
///
/// # Errors
/// Connection and Modbus errors (a register the device does not have is an exception).
pub async fn read(
    addr: SocketAddr,
    unit: u8,
    registers: &[u16],
) -> Result<BTreeMap<u16, [u16; 2]>, SourceError> {
    let mut ctx = tokio_modbus::client::tcp::connect_slave(addr, Slave(unit))
        .await
        .map_err(|e| SourceError::Connect(e.to_string()))?;
    let mut values = BTreeMap::new();
    for &address in registers {
        let words = ctx
            .read_holding_registers(address, 2)
            .await
            .map_err(|e| SourceError::Modbus(e.to_string()))?
            .map_err(|e| SourceError::Modbus(format!("{e} at {address}")))?;
        let [hi, lo] = words[..] else {
            return Err(SourceError::Modbus(format!(
                "{} registers at {address}",
                words.len()
            )));
        };
        values.insert(address, [hi, lo]);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: i32) -> [u16; 2] {
        let v = u32::from_ne_bytes(v.to_ne_bytes());
        [(v >> 16) as u16, (v & 0xFFFF) as u16]
    }

    #[test]
    fn grid_battery_soc_and_nan() {
        let values = BTreeMap::from([
            (GRID_IMPORT_W, words(0)),
            (GRID_EXPORT_W, words(2300)),
            (PV_W, [0x8000, 0]),
            (BATTERY_CHARGE_W, words(1500)),
            (BATTERY_DISCHARGE_W, words(0)),
            (SOC_PCT, words(64)),
        ]);
        let r = parse(&values).expect("parses");
        assert_eq!(r.grid_w, Some(-2300.0));
        assert_eq!(r.pv_w, Some(0.0));
        assert_eq!(r.battery_w, Some(-1500.0));
        assert_eq!(r.battery_soc_pct, Some(64.0));
        let nan = BTreeMap::from([(SOC_PCT, [0xFFFF, 0xFFFF])]);
        assert_eq!(parse(&nan).map(|r| r.battery_soc_pct), Ok(None));
    }
}
