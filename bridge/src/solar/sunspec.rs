//! SunSpec Modbus TCP: any inverter or meter that speaks the SunSpec information models
//! (Fronius unit 1 / meter 200, SMA unit 126, SolarEdge port 1502 unit 1, Kostal unit 71).
//!
//! The map starts at holding register 40000 with `SunS` (0x5375 0x6E53), then a chain of
//! models, each `[ID, L]` and L registers, ended by ID 0xFFFF (SunSpec Information Model
//! Specification; sunspec/models JSON). Used here, offsets from the model's ID register,
//! value = raw x 10^SF, 0x8000 = not implemented:
//!
//! - 101/102/103 inverter: W +14, W_SF +15 (AC power: the PV reading).
//! - 201/202/203/204 meter: A +2, AphA..C +3..5, A_SF +6, W +18, WphA..C +19..21, W_SF +22;
//!   positive = import per the SunSpec meter convention. SolarEdge meters report + export: set
//!   `invert = true` (evcc's `solaredge` template negates them).
//!
//! [`parse`] is pure over a register dump; [`read`] builds the dump over tokio-modbus.

use std::net::SocketAddr;

use tokio_modbus::client::Reader;
use tokio_modbus::Slave;

use super::error::SourceError;
use super::json::signed_currents;
use super::validate::RawReading;

/// Where the map starts.
pub const BASE: u16 = 40000;
/// `SunS`.
const MARKER: [u16; 2] = [0x5375, 0x6E53];
const END: u16 = 0xFFFF;
const NOT_IMPLEMENTED: u16 = 0x8000;
/// Models read (the others are skipped, their registers left 0 in the dump).
const WANTED: [u16; 7] = [101, 102, 103, 201, 202, 203, 204];
/// A chain longer than this is not a device's map.
const MAX_MODELS: usize = 64;
/// Registers per Modbus read.
const CHUNK: u16 = 125;

/// Parses a register dump that starts at [`BASE`].
///
/// # Errors
/// No `SunS` marker, a model that runs past the dump, or neither an inverter nor a meter.
pub fn parse(regs: &[u16]) -> Result<RawReading, SourceError> {
    if regs.get(..2) != Some(&MARKER[..]) {
        return Err(SourceError::Malformed("no SunS marker at 40000".into()));
    }
    let mut reading = RawReading::default();
    let mut found = false;
    let mut at = 2usize;
    for _ in 0..MAX_MODELS {
        let (Some(&id), Some(&len)) = (regs.get(at), regs.get(at + 1)) else {
            return Err(SourceError::Malformed(format!(
                "the model chain breaks off at {at}"
            )));
        };
        if id == END {
            break;
        }
        let end = at + 2 + usize::from(len);
        let model = regs
            .get(at..end)
            .ok_or_else(|| SourceError::Malformed(format!("model {id} runs past the map")))?;
        match id {
            101..=103 if reading.pv_w.is_none() => {
                reading.pv_w = scaled(model, 14, 15)?;
                found = true;
            }
            201..=204 if reading.grid_w.is_none() => {
                reading.grid_w = scaled(model, 18, 22)?;
                let watts = phases(model, [19, 20, 21], 22)?;
                reading.grid_phase_w = watts;
                reading.grid_phase_a =
                    phases(model, [3, 4, 5], 6)?.map(|a| signed_currents(a, watts));
                found = true;
            }
            _ => {}
        }
        at = end;
    }
    if !found {
        return Err(SourceError::Missing(
            "an inverter (101-103) or meter (201-204) model".into(),
        ));
    }
    Ok(reading)
}

/// `raw x 10^SF` of the int16 at `value` with the sunssf at `sf`; `None` when either is
/// "not implemented".
fn scaled(model: &[u16], value: usize, sf: usize) -> Result<Option<f64>, SourceError> {
    let (Some(&raw), Some(&sf)) = (model.get(value), model.get(sf)) else {
        return Err(SourceError::Malformed(
            "a model shorter than its points".into(),
        ));
    };
    if raw == NOT_IMPLEMENTED || sf == NOT_IMPLEMENTED {
        return Ok(None);
    }
    // Registers are two's complement int16 (raw) and sunssf.
    let (raw, sf) = (
        i16::from_ne_bytes(raw.to_ne_bytes()),
        i16::from_ne_bytes(sf.to_ne_bytes()),
    );
    if !(-10..=10).contains(&sf) {
        return Err(SourceError::Malformed(format!(
            "scale factor {sf} outside -10..=10"
        )));
    }
    // Dividing for negative factors keeps 435 x 10^-2 at exactly 4.35.
    let factor = 10f64.powi(i32::from(sf.unsigned_abs()));
    Ok(Some(if sf < 0 {
        f64::from(raw) / factor
    } else {
        f64::from(raw) * factor
    }))
}

fn phases(model: &[u16], values: [usize; 3], sf: usize) -> Result<Option<[f64; 3]>, SourceError> {
    Ok(
        match (
            scaled(model, values[0], sf)?,
            scaled(model, values[1], sf)?,
            scaled(model, values[2], sf)?,
        ) {
            (Some(a), Some(b), Some(c)) => Some([a, b, c]),
            _ => None,
        },
    )
}

/// Reads the map of `unit` at `addr`: the marker, then model by model, the wanted ones in
/// full and the others skipped.
///
/// # Errors
/// Connection and Modbus errors, and what [`parse`] needs that the device lacks.
pub async fn read(addr: SocketAddr, unit: u8) -> Result<Vec<u16>, SourceError> {
    let mut ctx = tokio_modbus::client::tcp::connect_slave(addr, Slave(unit))
        .await
        .map_err(|e| SourceError::Connect(e.to_string()))?;
    let mut dump = registers(&mut ctx, BASE, 2).await?;
    if dump[..] != MARKER[..] {
        return Err(SourceError::Malformed("no SunS marker at 40000".into()));
    }
    let mut address = BASE + 2;
    for _ in 0..MAX_MODELS {
        let header = registers(&mut ctx, address, 2).await?;
        let (id, len) = (header[0], header[1]);
        dump.extend_from_slice(&header);
        if id == END {
            return Ok(dump);
        }
        if WANTED.contains(&id) {
            let mut body = Vec::with_capacity(usize::from(len));
            let mut offset = 0;
            while offset < len {
                let count = CHUNK.min(len - offset);
                body.extend(registers(&mut ctx, address + 2 + offset, count).await?);
                offset += count;
            }
            dump.extend(body);
        } else {
            dump.extend(std::iter::repeat_n(0, usize::from(len)));
        }
        address = address
            .checked_add(2 + len)
            .ok_or_else(|| SourceError::Malformed("the model chain runs past 65535".into()))?;
    }
    Err(SourceError::Malformed(format!(
        "more than {MAX_MODELS} models"
    )))
}

async fn registers(
    ctx: &mut tokio_modbus::client::Context,
    address: u16,
    count: u16,
) -> Result<Vec<u16>, SourceError> {
    let words = ctx
        .read_holding_registers(address, count)
        .await
        .map_err(|e| SourceError::Modbus(e.to_string()))?
        .map_err(|e| SourceError::Modbus(format!("{e} at {address}")))?;
    if words.len() == usize::from(count) {
        Ok(words)
    } else {
        Err(SourceError::Modbus(format!(
            "{} registers where {count} were asked",
            words.len()
        )))
    }
}

/// A SunSpec map for tests and examples: common model, inverter 103 with `pv_w`, meter 203
/// with per-phase watts and amps (scale factors 0 and -2), end marker.
#[must_use]
pub fn example_map(pv_w: i16, phase_w: [i16; 3], phase_centiamps: [i16; 3]) -> Vec<u16> {
    let mut regs = MARKER.to_vec();
    regs.extend([1, 66]);
    regs.extend(std::iter::repeat_n(0, 66));
    let mut inverter = vec![0u16; 52];
    inverter[0] = 103;
    inverter[1] = 50;
    inverter[14] = u16::from_ne_bytes(pv_w.to_ne_bytes());
    inverter[15] = 0;
    regs.extend(inverter);
    let mut meter = vec![0u16; 107];
    meter[0] = 203;
    meter[1] = 105;
    let total: i16 = phase_w.iter().sum();
    meter[18] = u16::from_ne_bytes(total.to_ne_bytes());
    for i in 0..3 {
        meter[19 + i] = u16::from_ne_bytes(phase_w[i].to_ne_bytes());
        meter[3 + i] = phase_centiamps[i].unsigned_abs();
    }
    meter[22] = 0;
    meter[6] = u16::from_ne_bytes((-2i16).to_ne_bytes());
    regs.extend(meter);
    regs.extend([END, 0]);
    regs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverter_and_meter_with_scale_factors() {
        let map = example_map(4200, [-1000, 200, 300], [435, 90, 130]);
        let r = parse(&map).expect("parses");
        assert_eq!(r.pv_w, Some(4200.0));
        assert_eq!(r.grid_w, Some(-500.0));
        assert_eq!(r.grid_phase_w, Some([-1000.0, 200.0, 300.0]));
        assert_eq!(r.grid_phase_a, Some([-4.35, 0.9, 1.3]));
    }

    #[test]
    fn not_implemented_truncated_and_foreign_maps() {
        let mut map = example_map(0, [0; 3], [0; 3]);
        // Inverter W not implemented (model 103 at 70, W at +14).
        map[70 + 14] = NOT_IMPLEMENTED;
        assert_eq!(parse(&map).map(|r| r.pv_w), Ok(None));
        assert_eq!(parse(&map[..100]).map_err(|e| e.kind()), Err("malformed"));
        assert_eq!(parse(&[1, 2, 3]).map_err(|e| e.kind()), Err("malformed"));
        let mut bad_sf = example_map(0, [0; 3], [0; 3]);
        bad_sf[70 + 15] = 40;
        assert!(parse(&bad_sf).is_err());
    }
}
