//! CMSDK APB UART (ARM DDI 0479, "Cortex-M System Design Kit", APB UART): DATA 0x00, STATE 0x04 (bit 0 TX full,
//! bit 1 RX full), CTRL 0x08 (bit 0 TX enable, bit 1 RX enable), BAUDDIV 0x10 (≥ 16). QEMU's model ignores the
//! baud rate and delivers host bytes one at a time as the guest reads them.

use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

/// UART0's base address on mps2-an386.
pub const UART0_BASE: usize = 0x4000_4000;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;

/// UART0, polled.
pub struct Uart0 {
    base: usize,
}

impl Uart0 {
    /// Enables TX and RX.
    ///
    /// # Safety
    /// Only one `Uart0` may exist: it owns the peripheral's registers.
    pub unsafe fn new() -> Self {
        let u = Uart0 { base: UART0_BASE };
        u.write_reg(BAUDDIV, 16);
        u.write_reg(CTRL, 0b11);
        u
    }

    fn read_reg(&self, off: usize) -> u32 {
        // SAFETY: a register of the UART this value owns.
        unsafe { read_volatile((self.base + off) as *const u32) }
    }

    fn write_reg(&self, off: usize, v: u32) {
        // SAFETY: as above.
        unsafe { write_volatile((self.base + off) as *mut u32, v) }
    }

    /// Writes one byte, waiting while the transmit buffer is full.
    pub fn write_byte(&mut self, b: u8) {
        while self.read_reg(STATE) & 1 != 0 {}
        self.write_reg(DATA, b as u32);
    }

    /// A received byte, if one is waiting.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        if self.read_reg(STATE) & 2 != 0 {
            Some(self.read_reg(DATA) as u8)
        } else {
            None
        }
    }

    /// Waits for a received byte.
    pub fn read_byte(&mut self) -> u8 {
        loop {
            if let Some(b) = self.try_read_byte() {
                return b;
            }
        }
    }
}

impl embedded_io::ErrorType for Uart0 {
    type Error = Infallible;
}

impl embedded_io::Write for Uart0 {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            self.write_byte(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl core::fmt::Write for Uart0 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        s.bytes().for_each(|b| self.write_byte(b));
        Ok(())
    }
}
