//! Currents as the file writes them (amps with one decimal) and as memory holds them
//! ([`Deciamps`]).

use crate::bay::Deciamps;

/// Amps with one decimal in the file, [`Deciamps`] in memory.
pub(super) fn amps_to_deciamps(amps: f64) -> Result<Deciamps, String> {
    let deci = (amps * 10.0).round();
    if !deci.is_finite() || !(0.0..=f64::from(i16::MAX)).contains(&deci) {
        return Err(format!("{amps} A is not a current between 0 and 3276.7 A"));
    }
    // In range by the check above.
    #[allow(clippy::cast_possible_truncation)]
    Ok(Deciamps(deci as i16))
}

fn deciamps_to_amps(current: Deciamps) -> f64 {
    f64::from(current.get()) / 10.0
}

/// `#[serde(with = "amps::three")]`: one current per phase.
pub(super) mod three {
    use super::{amps_to_deciamps, deciamps_to_amps, Deciamps};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[Deciamps; 3], s: S) -> Result<S::Ok, S::Error> {
        v.map(deciamps_to_amps).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[Deciamps; 3], D::Error> {
        let [a, b, c] = <[f64; 3]>::deserialize(d)?;
        let conv = |x| amps_to_deciamps(x).map_err(serde::de::Error::custom);
        Ok([conv(a)?, conv(b)?, conv(c)?])
    }
}

/// `#[serde(with = "amps::optional")]`: an optional current.
pub(super) mod optional {
    use super::{amps_to_deciamps, deciamps_to_amps, Deciamps};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    // serde's `with` hands the field by reference.
    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(v: &Option<Deciamps>, s: S) -> Result<S::Ok, S::Error> {
        v.map(deciamps_to_amps).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Deciamps>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|x| amps_to_deciamps(x).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amps_convert_with_one_decimal() {
        assert_eq!(amps_to_deciamps(16.0), Ok(Deciamps(160)));
        assert_eq!(amps_to_deciamps(6.25), Ok(Deciamps(63)));
        assert!(amps_to_deciamps(-1.0).is_err());
        assert!(amps_to_deciamps(f64::NAN).is_err());
        assert!(amps_to_deciamps(1e9).is_err());
    }
}
