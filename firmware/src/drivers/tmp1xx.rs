//! TMP102 / TMP105 digital thermometers (Texas Instruments), I2C.
//!
//! Register map (TMP102 datasheet SBOS397, TMP105 datasheet, "Register Map"): a pointer byte selects the register,
//! `0x00` temperature (read-only, 2 bytes, MSB first, 12-bit two's complement left-justified, 0.0625 °C/LSB),
//! `0x01` configuration, `0x02` T_LOW, `0x03` T_HIGH.
//!
//! The two differ in the configuration register: the TMP105's is one byte (`OS R1 R0 F1 F0 POL TM SD`) and powers
//! up at 9-bit resolution (0.5 °C), so [`Tmp1xx::configure`] must select 12 bits; the TMP102's is two bytes
//! (`OS R1 R0 F1 F0 POL TM SD`, `CR1 CR0 AL EM 0 0 0 0`), always 12-bit in normal mode. This driver keeps the
//! TMP102 in normal (not extended, EM = 0) mode at the power-up conversion rate of 4 Hz.

use embedded_hal::i2c::I2c;
use hearth_protocol::Quantity;

/// Temperature register pointer.
pub const REG_TEMPERATURE: u8 = 0x00;
/// Configuration register pointer.
pub const REG_CONFIG: u8 = 0x01;

/// Default address with ADD0 tied to ground (both parts).
pub const DEFAULT_ADDRESS: u8 = 0x48;

/// Which member of the family is on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Variant {
    /// 16-bit configuration register, fixed 12-bit resolution.
    Tmp102,
    /// 8-bit configuration register, selectable resolution (powers up at 9 bits).
    Tmp105,
}

/// Conversion resolution (TMP105 R1/R0; the TMP102 ignores it and is always 12-bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Resolution {
    /// 0.5 °C.
    Bits9 = 0,
    /// 0.25 °C.
    Bits10 = 1,
    /// 0.125 °C.
    Bits11 = 2,
    /// 0.0625 °C.
    Bits12 = 3,
}

/// Device configuration written by [`Tmp1xx::configure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    pub resolution: Resolution,
    /// SD bit: stop converting between reads (saves ~10 µA; the last conversion stays readable).
    pub shutdown: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resolution: Resolution::Bits12,
            shutdown: false,
        }
    }
}

/// Driver error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// The I2C bus failed (no ACK, arbitration lost…).
    I2c(E),
}

/// A temperature in the register's unit, 1/16 °C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Temperature {
    /// Signed 12-bit value, 0.0625 °C per LSB.
    pub sixteenths: i16,
}

impl Temperature {
    /// From the two register bytes as read (MSB first, 12 bits left-justified).
    pub const fn from_register(bytes: [u8; 2]) -> Self {
        // Arithmetic shift keeps the sign of the 12-bit two's-complement value.
        Temperature {
            sixteenths: i16::from_be_bytes(bytes) >> 4,
        }
    }

    /// Thousandths of a degree Celsius, rounded toward zero (0.0625 °C = 62.5 m°C).
    pub const fn milli_celsius(self) -> i32 {
        self.sixteenths as i32 * 125 / 2
    }

    /// The exact value in °C as a decimal (`sixteenths × 0.0625`), without trailing zeros: 38.5 °C is `385 × 10⁻¹`.
    pub fn celsius(self) -> Quantity {
        normalise(Quantity::new(self.sixteenths as i32 * 625, -4))
    }
}

/// Drops trailing decimal zeros (`385000 × 10⁻⁴` → `385 × 10⁻¹`): same value, the precision it really has.
pub(crate) fn normalise(mut q: Quantity) -> Quantity {
    while q.exponent < 0 && q.mantissa % 10 == 0 {
        q.mantissa /= 10;
        q.exponent += 1;
    }
    q
}

/// A TMP102 or TMP105 on an I2C bus.
#[derive(Debug)]
pub struct Tmp1xx<I2C> {
    i2c: I2C,
    address: u8,
    variant: Variant,
}

impl<I2C: I2c> Tmp1xx<I2C> {
    /// Takes the bus; no I/O. `address` is 0x48..=0x4B depending on the ADD0 pin.
    pub fn new(i2c: I2C, address: u8, variant: Variant) -> Self {
        Tmp1xx {
            i2c,
            address,
            variant,
        }
    }

    /// Writes the configuration register (TMP105: one byte; TMP102: two bytes, normal mode, 4 Hz).
    pub fn configure(&mut self, config: Config) -> Result<(), Error<I2C::Error>> {
        let sd = config.shutdown as u8;
        match self.variant {
            Variant::Tmp105 => {
                let byte = ((config.resolution as u8) << 5) | sd;
                self.write(&[REG_CONFIG, byte])
            }
            // R1/R0 read as 11 and are read-only; CR1:CR0 = 10 (4 Hz), EM = 0: the power-up value 0x60A0 plus SD.
            Variant::Tmp102 => self.write(&[REG_CONFIG, 0x60 | sd, 0xA0]),
        }
    }

    /// The first (TMP105: only) configuration byte.
    pub fn read_config(&mut self) -> Result<u8, Error<I2C::Error>> {
        let mut buf = [0u8; 1];
        self.i2c
            .write_read(self.address, &[REG_CONFIG], &mut buf)
            .map_err(Error::I2c)?;
        Ok(buf[0])
    }

    /// Reads the temperature register.
    pub fn read_temperature(&mut self) -> Result<Temperature, Error<I2C::Error>> {
        let mut buf = [0u8; 2];
        self.i2c
            .write_read(self.address, &[REG_TEMPERATURE], &mut buf)
            .map_err(Error::I2c)?;
        Ok(Temperature::from_register(buf))
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error<I2C::Error>> {
        self.i2c.write(self.address, bytes).map_err(Error::I2c)
    }
}
