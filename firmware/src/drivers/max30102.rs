//! MAX30102 pulse-oximetry and heart-rate front end (Maxim/Analog Devices), I2C address 0x57.
//!
//! Register map (MAX30102 datasheet, Table "Register Maps and Descriptions"):
//!
//! | reg | name | used for |
//! |---|---|---|
//! | 0x04 / 0x05 / 0x06 | FIFO_WR_PTR / OVF_COUNTER / FIFO_RD_PTR | how many samples wait (5-bit pointers, 32-deep FIFO) |
//! | 0x07 | FIFO_DATA | burst read, 3 bytes per LED per sample, MSB first, 18 bits right-justified |
//! | 0x08 | FIFO_CONFIG | SMP_AVE[7:5], FIFO_ROLLOVER_EN[4], FIFO_A_FULL[3:0] |
//! | 0x09 | MODE_CONFIG | SHDN[7], RESET[6], MODE[2:0]: 010 heart rate (red), 011 SpO2 (red + IR) |
//! | 0x0A | SPO2_CONFIG | SPO2_ADC_RGE[6:5], SPO2_SR[4:2], LED_PW[1:0] |
//! | 0x0C / 0x0D | LED1_PA / LED2_PA | red / IR LED current, 0.2 mA per step |
//! | 0xFF | PART_ID | 0x15 |
//!
//! In SpO2 mode each FIFO sample is 6 bytes: red (LED1) then IR (LED2).

use embedded_hal::i2c::I2c;

/// The MAX30102's fixed 7-bit address.
pub const ADDRESS: u8 = 0x57;
/// PART_ID register value.
pub const PART_ID: u8 = 0x15;
/// FIFO depth in samples.
pub const FIFO_DEPTH: u8 = 32;

/// Register addresses.
pub mod reg {
    pub const INT_STATUS_1: u8 = 0x00;
    pub const FIFO_WR_PTR: u8 = 0x04;
    pub const OVF_COUNTER: u8 = 0x05;
    pub const FIFO_RD_PTR: u8 = 0x06;
    pub const FIFO_DATA: u8 = 0x07;
    pub const FIFO_CONFIG: u8 = 0x08;
    pub const MODE_CONFIG: u8 = 0x09;
    pub const SPO2_CONFIG: u8 = 0x0A;
    pub const LED1_PA: u8 = 0x0C;
    pub const LED2_PA: u8 = 0x0D;
    pub const PART_ID: u8 = 0xFF;
}

/// Bytes per FIFO sample in SpO2 mode (two LEDs × 3 bytes).
const SAMPLE_LEN: usize = 6;
/// Samples read per I2C burst: bounds the stack buffer, the FIFO pointer advances across bursts.
const BURST: usize = 8;

/// Driver error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// The I2C bus failed.
    I2c(E),
    /// PART_ID is not 0x15: another device (or none) answers at 0x57.
    WrongDevice { part_id: u8 },
}

/// Operating mode (MODE_CONFIG MODE[2:0]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// Red LED only.
    HeartRate = 0b010,
    /// Red and IR LEDs: what SpO2 needs.
    SpO2 = 0b011,
}

/// ADC full scale (SPO2_ADC_RGE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AdcRange {
    Na2048 = 0,
    Na4096 = 1,
    Na8192 = 2,
    Na16384 = 3,
}

/// Sample rate (SPO2_SR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SampleRate {
    Hz50 = 0,
    Hz100 = 1,
    Hz200 = 2,
    Hz400 = 3,
}

/// LED pulse width and ADC resolution (LED_PW).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PulseWidth {
    /// 69 µs, 15 bits.
    Us69 = 0,
    /// 118 µs, 16 bits.
    Us118 = 1,
    /// 215 µs, 17 bits.
    Us215 = 2,
    /// 411 µs, 18 bits.
    Us411 = 3,
}

/// On-chip averaging of consecutive samples before the FIFO (SMP_AVE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SampleAveraging {
    None = 0,
    Two = 1,
    Four = 2,
    Eight = 3,
    Sixteen = 4,
    ThirtyTwo = 5,
}

/// SpO2 configuration register contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SpO2Config {
    pub range: AdcRange,
    pub rate: SampleRate,
    pub pulse_width: PulseWidth,
}

impl SpO2Config {
    /// The SPO2_CONFIG byte.
    pub const fn bits(self) -> u8 {
        ((self.range as u8) << 5) | ((self.rate as u8) << 2) | self.pulse_width as u8
    }
}

/// One FIFO sample: red and IR ADC counts (18 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PpgSample {
    pub red: u32,
    pub ir: u32,
}

/// A MAX30102 on an I2C bus.
#[derive(Debug)]
pub struct Max30102<I2C> {
    i2c: I2C,
}

impl<I2C: I2c> Max30102<I2C> {
    /// Takes the bus; no I/O.
    pub fn new(i2c: I2C) -> Self {
        Max30102 { i2c }
    }

    /// Reads PART_ID and checks it is 0x15.
    pub fn check_part_id(&mut self) -> Result<(), Error<I2C::Error>> {
        let part_id = self.read_reg(reg::PART_ID)?;
        if part_id == PART_ID {
            Ok(())
        } else {
            Err(Error::WrongDevice { part_id })
        }
    }

    /// Power-on reset (MODE_CONFIG RESET); the bit clears itself when done.
    pub fn reset(&mut self) -> Result<(), Error<I2C::Error>> {
        self.write_reg(reg::MODE_CONFIG, 0x40)
    }

    /// Sets the mode, leaving the part running (SHDN = 0).
    pub fn set_mode(&mut self, mode: Mode) -> Result<(), Error<I2C::Error>> {
        self.write_reg(reg::MODE_CONFIG, mode as u8)
    }

    /// Shutdown (SHDN = 1): LEDs off, FIFO and registers kept.
    pub fn shutdown(&mut self, mode: Mode) -> Result<(), Error<I2C::Error>> {
        self.write_reg(reg::MODE_CONFIG, 0x80 | mode as u8)
    }

    pub fn set_spo2_config(&mut self, config: SpO2Config) -> Result<(), Error<I2C::Error>> {
        self.write_reg(reg::SPO2_CONFIG, config.bits())
    }

    /// FIFO_CONFIG: averaging, roll-over (overwrite oldest when full) and the almost-full threshold (samples left
    /// free when the interrupt fires, 0..=15).
    pub fn set_fifo_config(
        &mut self,
        averaging: SampleAveraging,
        rollover: bool,
        almost_full_free: u8,
    ) -> Result<(), Error<I2C::Error>> {
        let bits = ((averaging as u8) << 5) | ((rollover as u8) << 4) | (almost_full_free & 0x0F);
        self.write_reg(reg::FIFO_CONFIG, bits)
    }

    /// LED currents, 0.2 mA per step (0x00 off .. 0xFF 51 mA).
    pub fn set_led_currents(&mut self, red: u8, ir: u8) -> Result<(), Error<I2C::Error>> {
        self.write_reg(reg::LED1_PA, red)?;
        self.write_reg(reg::LED2_PA, ir)
    }

    /// Empties the FIFO (write pointer, overflow counter and read pointer to 0, as the datasheet recommends before a
    /// new measurement).
    pub fn clear_fifo(&mut self) -> Result<(), Error<I2C::Error>> {
        self.write_reg(reg::FIFO_WR_PTR, 0)?;
        self.write_reg(reg::OVF_COUNTER, 0)?;
        self.write_reg(reg::FIFO_RD_PTR, 0)
    }

    /// Samples waiting in the FIFO, and how many were lost to overflow since the last read.
    pub fn available(&mut self) -> Result<(u8, u8), Error<I2C::Error>> {
        let mut p = [0u8; 3];
        self.i2c
            .write_read(ADDRESS, &[reg::FIFO_WR_PTR], &mut p)
            .map_err(Error::I2c)?;
        let (wr, ovf, rd) = (p[0] & 0x1F, p[1] & 0x1F, p[2] & 0x1F);
        // A full FIFO has equal pointers, like an empty one; the overflow counter tells them apart.
        let n = if ovf > 0 {
            FIFO_DEPTH
        } else {
            wr.wrapping_sub(rd) & 0x1F
        };
        Ok((n, ovf))
    }

    /// Reads up to `out.len()` waiting SpO2-mode samples into `out`; returns how many were read (0 if none waited).
    pub fn read_fifo(&mut self, out: &mut [PpgSample]) -> Result<usize, Error<I2C::Error>> {
        let (waiting, _) = self.available()?;
        let n = out.len().min(waiting as usize);
        let mut raw = [0u8; BURST * SAMPLE_LEN];
        let mut done = 0;
        for chunk in out[..n].chunks_mut(BURST) {
            let bytes = &mut raw[..chunk.len() * SAMPLE_LEN];
            self.i2c
                .write_read(ADDRESS, &[reg::FIFO_DATA], bytes)
                .map_err(Error::I2c)?;
            for (s, b) in chunk.iter_mut().zip(bytes.chunks_exact(SAMPLE_LEN)) {
                *s = PpgSample {
                    red: be18([b[0], b[1], b[2]]),
                    ir: be18([b[3], b[4], b[5]]),
                };
            }
            done += chunk.len();
        }
        Ok(done)
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    fn read_reg(&mut self, reg: u8) -> Result<u8, Error<I2C::Error>> {
        let mut b = [0u8; 1];
        self.i2c
            .write_read(ADDRESS, &[reg], &mut b)
            .map_err(Error::I2c)?;
        Ok(b[0])
    }

    fn write_reg(&mut self, reg: u8, value: u8) -> Result<(), Error<I2C::Error>> {
        self.i2c.write(ADDRESS, &[reg, value]).map_err(Error::I2c)
    }
}

/// An 18-bit FIFO value from three bytes, MSB first; bits 23..18 are don't-care.
const fn be18(b: [u8; 3]) -> u32 {
    (((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32) & 0x3_FFFF
}
