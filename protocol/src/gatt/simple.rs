//! Battery Level (0x2A19, Battery Service).

use super::cursor::{Reader, Writer};
use super::{Characteristic, DecodeError, EncodeError, Observations};
use crate::vocab::{Code, Observation, Quantity};

/// Battery Level (GSS): uint8 percent, 0..=100; 101..=255 are reserved and rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BatteryLevel {
    pub percent: u8,
}

impl BatteryLevel {
    /// One [`Code::Battery`] observation in %.
    pub fn observations(&self) -> Observations {
        let mut out = Observations::new();
        // Capacity is MAX_OBSERVATIONS ≥ 1.
        let _ = out.push(Observation::number(
            Code::Battery,
            Quantity::new(self.percent as i32, 0),
        ));
        out
    }
}

impl Characteristic for BatteryLevel {
    const UUID: u16 = 0x2A19;
    const MIN_LEN: usize = 1;
    const MAX_LEN: usize = 1;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let percent = r.u8()?;
        if percent > 100 {
            return Err(DecodeError::InvalidField {
                offset: 0,
                field: "battery level",
            });
        }
        r.finish()?;
        Ok(BatteryLevel { percent })
    }

    fn encoded_len(&self) -> usize {
        1
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        if self.percent > 100 {
            return Err(EncodeError::OutOfRange {
                field: "battery level",
            });
        }
        let mut w = Writer::new(out, self.encoded_len())?;
        w.u8(self.percent)?;
        Ok(w.len())
    }
}
