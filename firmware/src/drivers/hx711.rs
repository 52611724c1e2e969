//! HX711 24-bit load-cell ADC (Avia Semiconductor), bit-banged over two GPIOs.
//!
//! Protocol (HX711 datasheet, "Serial Interface"): DOUT goes low when a conversion is ready. The host then gives 25 to
//! 27 positive PD_SCK pulses; on each of the first 24 the chip shifts out one bit, MSB first (valid 0.1 µs after the
//! rising edge); the extra 1–3 pulses choose the channel and gain of the NEXT conversion (25: A ×128, 26: B ×32,
//! 27: A ×64). The result is 24-bit two's complement. PD_SCK high for more than 60 µs powers the chip down, so each
//! pulse is kept short (1 µs high, 1 µs low) — a board should not let an interrupt stretch it.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};

/// Channel and gain of the next conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Gain {
    /// Channel A, gain 128 (the load-cell default).
    A128,
    /// Channel B, gain 32.
    B32,
    /// Channel A, gain 64.
    A64,
}

impl Gain {
    /// Pulses after the 24 data bits that select this gain.
    const fn extra_pulses(self) -> u8 {
        match self {
            Gain::A128 => 1,
            Gain::B32 => 2,
            Gain::A64 => 3,
        }
    }
}

/// Driver error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// A GPIO failed.
    Pin(E),
    /// DOUT is high: no conversion is ready yet (poll again; ≈ 100 ms at 10 SPS).
    NotReady,
}

/// An HX711 on a clock output pin and a data input pin.
#[derive(Debug)]
pub struct Hx711<SCK, DOUT, D> {
    sck: SCK,
    dout: DOUT,
    delay: D,
    gain: Gain,
}

impl<SCK, DOUT, D, E> Hx711<SCK, DOUT, D>
where
    SCK: OutputPin<Error = E>,
    DOUT: InputPin<Error = E>,
    D: DelayNs,
{
    /// Takes the pins and a delay; drives PD_SCK low (chip powered up). The first conversion after power-up uses
    /// channel A, gain 128; `gain` applies from the first read on.
    pub fn new(mut sck: SCK, dout: DOUT, delay: D, gain: Gain) -> Result<Self, Error<E>> {
        sck.set_low().map_err(Error::Pin)?;
        Ok(Hx711 {
            sck,
            dout,
            delay,
            gain,
        })
    }

    /// Whether a conversion is ready (DOUT low).
    pub fn is_ready(&mut self) -> Result<bool, Error<E>> {
        self.dout.is_low().map_err(Error::Pin)
    }

    /// Reads a conversion: 24 data pulses plus the gain pulses. [`Error::NotReady`] if none is ready, without clocking.
    pub fn read(&mut self) -> Result<i32, Error<E>> {
        if !self.is_ready()? {
            return Err(Error::NotReady);
        }
        let mut raw: u32 = 0;
        for _ in 0..24 {
            self.pulse()?;
            raw = (raw << 1) | self.dout.is_high().map_err(Error::Pin)? as u32;
        }
        for _ in 0..self.gain.extra_pulses() {
            self.pulse()?;
        }
        // Sign-extend 24 → 32 bits.
        Ok(((raw << 8) as i32) >> 8)
    }

    /// Changes the gain; it takes effect after the next [`Hx711::read`].
    pub fn set_gain(&mut self, gain: Gain) {
        self.gain = gain;
    }

    /// Powers down (PD_SCK high for > 60 µs).
    pub fn power_down(&mut self) -> Result<(), Error<E>> {
        self.sck.set_high().map_err(Error::Pin)?;
        self.delay.delay_us(80);
        Ok(())
    }

    /// Powers up (PD_SCK low). The chip resets: its first conversion is channel A, gain 128, whatever was chosen
    /// before; the chosen gain applies again from the read after.
    pub fn power_up(&mut self) -> Result<(), Error<E>> {
        self.sck.set_low().map_err(Error::Pin)
    }

    /// Gives the pins and delay back.
    pub fn destroy(self) -> (SCK, DOUT, D) {
        (self.sck, self.dout, self.delay)
    }

    fn pulse(&mut self) -> Result<(), Error<E>> {
        self.sck.set_high().map_err(Error::Pin)?;
        self.delay.delay_us(1);
        self.sck.set_low().map_err(Error::Pin)?;
        self.delay.delay_us(1);
        Ok(())
    }
}
