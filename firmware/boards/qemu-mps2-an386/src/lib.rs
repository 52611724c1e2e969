//! Board support for QEMU's `mps2-an386` (Cortex-M4F): the peripherals Hearth's firmware needs, as embedded-hal /
//! embedded-io implementations, shared by the application (`src/main.rs`) and the on-target tests
//! (`tests/on_target.rs`).
//!
//! - [`uart::Uart0`]: the CMSDK APB UART at 0x4000_4000 (QEMU `-serial`).
//! - [`sbcon::SbconI2c`]: the SBCon two-wire controller at 0x4002_A000, a bit-banged I2C bus that QEMU's
//!   `-device tmp105,bus=i2c` attaches to.
//! - [`NoInitSeqStore`] and [`retained::Retained`]: the sequence counter's bound and the unacknowledged frames in a
//!   retained-RAM block that a reset does not clear.
//! - [`exit`]: semihosting exit codes (0 pass, 1 fail), and a panic handler that exits with 1.
#![no_std]

use core::ptr::{read_volatile, write_volatile};

use cortex_m_semihosting::debug;
use hearth_firmware::store::SeqStore;

pub mod retained;
pub mod sbcon;
pub mod uart;

/// Ends the emulation with a semihosting exit code: `true` → 0, `false` → 1.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without semihosting (a real board): park.
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cortex_m_semihosting::hprintln!("PANIC: {}", info);
    exit(false)
}

/// Magic word marking the no-init store as written by this firmware.
const SEQ_MAGIC: u32 = 0x4845_5351; // "HESQ"

/// `[magic, bound, !bound]` at the start of the retained block ([`retained::SEQ_ADDR`]): nothing initialises it, so it
/// survives a warm reset (watchdog, fault, `SYSRESETREQ`, QEMU's `system_reset`) but not a power cycle. A real board
/// keeps the bound in flash instead; this is what QEMU, which has no persistent flash, can offer.
///
/// It was in cortex-m-rt's `.uninit` section, which QEMU 7.2's `system_reset` also keeps (checked: the counter
/// resumed at its bound, 65). It moved next to the retained frame queue so that both live outside every linked
/// section: `.uninit` shares the ELF's RW load segment with `.bss`, and whatever loads that segment (a debug probe,
/// a loader that zero-fills `.bss` on reset) may clear it.
/// The [`SeqStore`] over the no-init words. Only one may exist (it is not `Clone`; [`NoInitSeqStore::take`] hands
/// it out once).
pub struct NoInitSeqStore {
    _private: (),
}

impl NoInitSeqStore {
    /// The store, the first time only.
    pub fn take() -> Option<Self> {
        static TAKEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
        if TAKEN.swap(true, core::sync::atomic::Ordering::AcqRel) {
            None
        } else {
            Some(NoInitSeqStore { _private: () })
        }
    }

    fn words() -> *mut u32 {
        // Only the address is taken; accesses are volatile and confined to the single owner.
        retained::SEQ_ADDR as *mut u32
    }

    /// Forgets the stored bound (e.g. when a new key is provisioned).
    pub fn erase(&mut self) {
        // SAFETY: three words inside the retained block; sole owner.
        unsafe { write_volatile(Self::words(), 0) }
    }
}

impl SeqStore for NoInitSeqStore {
    type Error = core::convert::Infallible;

    fn load(&mut self) -> Result<Option<u32>, Self::Error> {
        let w = Self::words();
        // SAFETY: three words inside the retained block; reading uninitialised RAM as u32 is fine on this target (any bit
        // pattern is a valid u32), and the magic and complement reject garbage.
        let (magic, v, inv) = unsafe {
            (
                read_volatile(w),
                read_volatile(w.add(1)),
                read_volatile(w.add(2)),
            )
        };
        Ok((magic == SEQ_MAGIC && v == !inv).then_some(v))
    }

    fn store(&mut self, bound: u32) -> Result<(), Self::Error> {
        let w = Self::words();
        // SAFETY: as above. The magic is written last so a torn write is rejected on load.
        unsafe {
            write_volatile(w, 0);
            write_volatile(w.add(1), bound);
            write_volatile(w.add(2), !bound);
            write_volatile(w, SEQ_MAGIC);
        }
        Ok(())
    }
}

pub mod clock {
    //! Milliseconds since boot from SysTick (mps2-an386 core clock: 25 MHz).
    use core::sync::atomic::{AtomicU32, Ordering};

    use cortex_m::peripheral::SYST;
    use cortex_m::peripheral::syst::SystClkSource;
    use cortex_m_rt::exception;

    /// The AN386 FPGA image's system clock (QEMU mps2.c: `SYSCLK_FRQ` 25 MHz).
    pub const CORE_HZ: u32 = 25_000_000;

    static MILLIS: AtomicU32 = AtomicU32::new(0);

    /// Starts a 1 kHz SysTick interrupt.
    pub fn start(mut syst: SYST) {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(CORE_HZ / 1000 - 1);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
    }

    /// Milliseconds since [`start`].
    pub fn millis() -> u32 {
        MILLIS.load(Ordering::Relaxed)
    }

    #[exception]
    fn SysTick() {
        MILLIS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The development key every QEMU board uses: bytes 0x00..=0x1f, the key of the protocol crate's golden frame
/// example. A TEST KEY ONLY: a real board is provisioned with its own random key.
pub const TEST_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};

/// The QEMU board's device id.
pub const DEVICE_ID: &str = "qemu-0001";
