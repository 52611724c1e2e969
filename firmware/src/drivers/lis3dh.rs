//! LIS3DH 3-axis accelerometer (STMicroelectronics), I2C.
//!
//! Registers (LIS3DH datasheet DocID17530, "Register mapping"): WHO_AM_I 0x0F reads 0x33; CTRL_REG1 0x20
//! (ODR[7:4], LPen[3], Zen Yen Xen); CTRL_REG4 0x23 (BDU[7], BLE[6], FS[5:4], HR[3]); OUT_X_L 0x28 … OUT_Z_H 0x2D,
//! little-endian, left-justified. A multi-byte read sets bit 7 of the sub-address to auto-increment.
//!
//! Resolution depends on the mode: high-resolution 12 bits, normal 10 bits, low-power 8 bits; sensitivity in
//! mg/digit from the datasheet's "Mechanical characteristics" table (So):
//!
//! | FS | HR (12 bit) | normal (10 bit) | low power (8 bit) |
//! |---|---|---|---|
//! | ±2 g | 1 | 4 | 16 |
//! | ±4 g | 2 | 8 | 32 |
//! | ±8 g | 4 | 16 | 64 |
//! | ±16 g | 12 | 48 | 192 |

use embedded_hal::i2c::I2c;

/// Address with SA0 low.
pub const ADDRESS_SA0_LOW: u8 = 0x18;
/// Address with SA0 high (the default on most breakout boards).
pub const ADDRESS_SA0_HIGH: u8 = 0x19;
/// WHO_AM_I value.
pub const DEVICE_ID: u8 = 0x33;

/// Register addresses.
pub mod reg {
    pub const WHO_AM_I: u8 = 0x0F;
    pub const CTRL_REG1: u8 = 0x20;
    pub const CTRL_REG4: u8 = 0x23;
    pub const OUT_X_L: u8 = 0x28;
    /// Sub-address bit 7: auto-increment over a multi-byte read.
    pub const AUTO_INCREMENT: u8 = 0x80;
}

/// Driver error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// The I2C bus failed.
    I2c(E),
    /// WHO_AM_I is not 0x33.
    WrongDevice { who_am_i: u8 },
}

/// Output data rate (CTRL_REG1 ODR[7:4]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataRate {
    PowerDown = 0,
    Hz1 = 1,
    Hz10 = 2,
    Hz25 = 3,
    Hz50 = 4,
    Hz100 = 5,
    Hz200 = 6,
    Hz400 = 7,
}

/// Full scale (CTRL_REG4 FS[5:4]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Range {
    G2 = 0,
    G4 = 1,
    G8 = 2,
    G16 = 3,
}

/// Resolution mode (CTRL_REG1 LPen, CTRL_REG4 HR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Resolution {
    /// 8 bits, LPen = 1.
    LowPower,
    /// 10 bits.
    Normal,
    /// 12 bits, HR = 1.
    High,
}

/// Configuration written by [`Lis3dh::configure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    pub rate: DataRate,
    pub range: Range,
    pub resolution: Resolution,
}

impl Default for Config {
    /// 100 Hz, ±8 g (a fall's impact exceeds 4 g at the wrist), 12 bits.
    fn default() -> Self {
        Config {
            rate: DataRate::Hz100,
            range: Range::G8,
            resolution: Resolution::High,
        }
    }
}

impl Config {
    /// CTRL_REG1: rate, LPen, all three axes enabled.
    pub const fn ctrl_reg1(self) -> u8 {
        let lp = matches!(self.resolution, Resolution::LowPower) as u8;
        ((self.rate as u8) << 4) | (lp << 3) | 0b111
    }

    /// CTRL_REG4: BDU = 1 (high and low bytes from the same sample), little-endian, FS, HR.
    pub const fn ctrl_reg4(self) -> u8 {
        let hr = matches!(self.resolution, Resolution::High) as u8;
        0x80 | ((self.range as u8) << 4) | (hr << 3)
    }

    /// Right shift from the left-justified register value, and mg per digit after it.
    const fn scale(self) -> (u8, i32) {
        let (shift, base) = match self.resolution {
            Resolution::High => (4, 1),
            Resolution::Normal => (6, 4),
            Resolution::LowPower => (8, 16),
        };
        // ±16 g is 12× (not 8×) the ±2 g sensitivity in every mode (datasheet So table).
        let mult = match self.range {
            Range::G2 => 1,
            Range::G4 => 2,
            Range::G8 => 4,
            Range::G16 => 12,
        };
        (shift, base * mult)
    }
}

/// An acceleration in milli-g per axis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MilliG {
    pub x: i32,
    pub y: i32,
    pub z: i32,
}

/// A LIS3DH on an I2C bus.
#[derive(Debug)]
pub struct Lis3dh<I2C> {
    i2c: I2C,
    address: u8,
    config: Config,
}

impl<I2C: I2c> Lis3dh<I2C> {
    /// Takes the bus; no I/O. Until [`Lis3dh::configure`] the driver assumes the power-up state (power-down, ±2 g,
    /// normal mode).
    pub fn new(i2c: I2C, address: u8) -> Self {
        Lis3dh {
            i2c,
            address,
            config: Config {
                rate: DataRate::PowerDown,
                range: Range::G2,
                resolution: Resolution::Normal,
            },
        }
    }

    /// Reads WHO_AM_I and checks it is 0x33.
    pub fn check_id(&mut self) -> Result<(), Error<I2C::Error>> {
        let mut b = [0u8; 1];
        self.i2c
            .write_read(self.address, &[reg::WHO_AM_I], &mut b)
            .map_err(Error::I2c)?;
        if b[0] == DEVICE_ID {
            Ok(())
        } else {
            Err(Error::WrongDevice { who_am_i: b[0] })
        }
    }

    /// Writes CTRL_REG1 and CTRL_REG4.
    pub fn configure(&mut self, config: Config) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write(self.address, &[reg::CTRL_REG1, config.ctrl_reg1()])
            .map_err(Error::I2c)?;
        self.i2c
            .write(self.address, &[reg::CTRL_REG4, config.ctrl_reg4()])
            .map_err(Error::I2c)?;
        self.config = config;
        Ok(())
    }

    /// Reads the six output registers in one burst, as raw left-justified counts.
    pub fn read_raw(&mut self) -> Result<[i16; 3], Error<I2C::Error>> {
        let mut b = [0u8; 6];
        self.i2c
            .write_read(self.address, &[reg::OUT_X_L | reg::AUTO_INCREMENT], &mut b)
            .map_err(Error::I2c)?;
        Ok([
            i16::from_le_bytes([b[0], b[1]]),
            i16::from_le_bytes([b[2], b[3]]),
            i16::from_le_bytes([b[4], b[5]]),
        ])
    }

    /// Reads the acceleration in milli-g, scaled for the configured range and resolution.
    pub fn read_mg(&mut self) -> Result<MilliG, Error<I2C::Error>> {
        let raw = self.read_raw()?;
        let (shift, mg) = self.config.scale();
        let conv = |v: i16| ((v >> shift) as i32) * mg;
        Ok(MilliG {
            x: conv(raw[0]),
            y: conv(raw[1]),
            z: conv(raw[2]),
        })
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }
}
