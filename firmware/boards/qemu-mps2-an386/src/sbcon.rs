//! The SBCon two-wire serial bus interface (ARM, as on the MPS2 boards and QEMU's `versatile_i2c` model): one
//! register pair drives SCL (bit 0) and SDA (bit 1) directly — write 0x00 sets bits (SB_CONTROLS), write 0x04 clears
//! them (SB_CONTROLC), read 0x00 returns SCL out in bit 0 and the SDA line in bit 1. I2C is bit-banged on it; this
//! module implements the embedded-hal 1.0 [`I2c`] trait, so the same TMP1xx driver that runs on real hardware talks
//! to QEMU's emulated TMP105.
//!
//! Timing: QEMU's bit-bang model reacts to edges, not time, so no delays are needed under emulation. On the FPGA
//! board a standard-mode (100 kHz) bus needs ≥ 5 µs per half-period: pass a `delay` function to [`SbconI2c::new`].

use core::ptr::{read_volatile, write_volatile};

use embedded_hal::i2c::{self, ErrorKind, I2c, NoAcknowledgeSource, Operation, SevenBitAddress};

/// The last SBCon controller on mps2-an386, where QEMU's `-device tmp105,bus=i2c` lands.
pub const SBCON3_BASE: usize = 0x4002_A000;

const SCL: u32 = 1;
const SDA: u32 = 2;

/// Bus errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Nobody acknowledged the address or a data byte.
    Nack(NoAcknowledgeSource),
}

impl i2c::Error for Error {
    fn kind(&self) -> ErrorKind {
        match *self {
            Error::Nack(src) => ErrorKind::NoAcknowledge(src),
        }
    }
}

/// A bit-banged I2C master on one SBCon controller.
pub struct SbconI2c {
    base: usize,
    half_period: fn(),
}

impl SbconI2c {
    /// Takes the controller at `base`; `half_period` waits half an SCL period (a no-op under QEMU). Releases both
    /// lines (idle bus).
    ///
    /// # Safety
    /// Only one `SbconI2c` per controller may exist.
    pub unsafe fn new(base: usize, half_period: fn()) -> Self {
        let bus = SbconI2c { base, half_period };
        bus.set(SCL | SDA);
        bus
    }

    fn set(&self, bits: u32) {
        // SAFETY: SB_CONTROLS of the controller this value owns.
        unsafe { write_volatile(self.base as *mut u32, bits) }
    }

    fn clear(&self, bits: u32) {
        // SAFETY: SB_CONTROLC.
        unsafe { write_volatile((self.base + 4) as *mut u32, bits) }
    }

    fn sda_in(&self) -> bool {
        // SAFETY: SB_CONTROL (read).
        unsafe { read_volatile(self.base as *const u32) & SDA != 0 }
    }

    fn wait(&self) {
        (self.half_period)()
    }

    /// START, or repeated START: SDA falls while SCL is high.
    fn start(&self) {
        self.set(SDA);
        self.wait();
        self.set(SCL);
        self.wait();
        self.clear(SDA);
        self.wait();
        self.clear(SCL);
        self.wait();
    }

    /// STOP: SDA rises while SCL is high.
    fn stop(&self) {
        self.clear(SDA);
        self.wait();
        self.set(SCL);
        self.wait();
        self.set(SDA);
        self.wait();
    }

    fn write_bit(&self, bit: bool) {
        if bit {
            self.set(SDA);
        } else {
            self.clear(SDA);
        }
        self.wait();
        self.set(SCL);
        self.wait();
        self.clear(SCL);
    }

    fn read_bit(&self) -> bool {
        self.set(SDA); // release SDA so the device can drive it
        self.wait();
        self.set(SCL);
        self.wait();
        let b = self.sda_in();
        self.clear(SCL);
        b
    }

    /// Writes a byte MSB first; returns whether it was acknowledged.
    fn write_byte(&self, byte: u8) -> bool {
        for i in (0..8).rev() {
            self.write_bit(byte >> i & 1 == 1);
        }
        !self.read_bit()
    }

    fn read_byte(&self, ack: bool) -> u8 {
        let mut b = 0u8;
        for _ in 0..8 {
            b = (b << 1) | self.read_bit() as u8;
        }
        self.write_bit(!ack);
        b
    }

    /// START (or repeated START) and the address byte.
    fn address(&self, addr: u8, read: bool) -> Result<(), Error> {
        self.start();
        if self.write_byte((addr << 1) | read as u8) {
            Ok(())
        } else {
            Err(Error::Nack(NoAcknowledgeSource::Address))
        }
    }

    fn run(&mut self, address: u8, ops: &mut [Operation<'_>]) -> Result<(), Error> {
        // Per the embedded-hal contract: a START and address before the first operation and whenever the direction
        // changes; adjacent operations of the same kind continue without one; the last read byte is NACKed.
        let mut last_dir: Option<bool> = None;
        let n = ops.len();
        for idx in 0..n {
            let next_is_read = match ops.get(idx + 1) {
                Some(Operation::Read(_)) => Some(true),
                Some(Operation::Write(_)) => Some(false),
                None => None,
            };
            match ops.get_mut(idx) {
                Some(Operation::Write(bytes)) => {
                    if last_dir != Some(false) {
                        self.address(address, false)?;
                        last_dir = Some(false);
                    }
                    for &b in bytes.iter() {
                        if !self.write_byte(b) {
                            return Err(Error::Nack(NoAcknowledgeSource::Data));
                        }
                    }
                }
                Some(Operation::Read(buf)) => {
                    if last_dir != Some(true) {
                        self.address(address, true)?;
                        last_dir = Some(true);
                    }
                    let len = buf.len();
                    let continues = next_is_read == Some(true);
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = self.read_byte(i + 1 < len || continues);
                    }
                }
                None => {}
            }
        }
        Ok(())
    }
}

impl i2c::ErrorType for SbconI2c {
    type Error = Error;
}

impl I2c<SevenBitAddress> for SbconI2c {
    fn transaction(
        &mut self,
        address: SevenBitAddress,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        let r = self.run(address, operations);
        // Always release the bus, also after a NACK.
        self.stop();
        r
    }
}
