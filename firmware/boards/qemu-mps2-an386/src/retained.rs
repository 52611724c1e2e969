//! A retained-RAM block: the last 4 KiB of SSRAM2/3 (0x203F_F000), left out of `memory.x`'s RAM region so that no
//! linked section, cortex-m-rt's start-up code or a loader of the ELF's RW segment (which also covers `.bss` and
//! `.uninit`) ever writes it. Its contents survive a warm reset and are lost at power-off:
//! the model of a retained SRAM bank (or, on a board with one, a flash page).
//!
//! Layout: `[0x000]` the sequence store's three words ([`crate::NoInitSeqStore`]); `[0x010]` one [`Retained`]
//! value — the frame queue — behind a magic word and an FNV-1a checksum of its bytes. A value is restored only when
//! both match, so an interrupted update or a cold boot's random RAM gives a fresh value, never a half-written one.

use core::mem::size_of;
use core::ptr::{read_volatile, write_volatile};

/// First byte of the retained block.
pub const BASE: usize = 0x203F_F000;
/// Its size (memory.x leaves exactly this much out of RAM).
pub const LEN: usize = 0x1000;
/// The sequence store's words.
pub const SEQ_ADDR: usize = BASE;
/// The retained value's header and body.
pub const VALUE_ADDR: usize = BASE + 0x10;

const MAGIC: u32 = 0x4845_5251; // "HERQ"

/// A `T` kept in the retained block across resets. Call [`Retained::seal`] after every change: until then a reset
/// discards the value (it will not match its checksum).
pub struct Retained<T: 'static> {
    value: &'static mut T,
}

impl<T: 'static> Retained<T> {
    /// The retained value if a valid one is there (`true`), else `init()` written in its place (`false`).
    ///
    /// # Safety
    /// Call once per boot. `T` must be plain data (no pointers), so that the bytes of a value written before the
    /// reset are again a valid `T`.
    pub unsafe fn restore(init: impl FnOnce() -> T) -> (Self, bool) {
        const { assert!(8 + size_of::<T>() <= LEN - 0x10) };
        let header = VALUE_ADDR as *mut u32;
        let body = (VALUE_ADDR + 8) as *mut T;
        // SAFETY: the block is RAM reserved for this module (memory.x), aligned for T (8-byte aligned address and
        // T's alignment is at most 8 here); reads are volatile because nothing in this boot wrote it.
        let valid = unsafe {
            read_volatile(header) == MAGIC && read_volatile(header.add(1)) == checksum::<T>(body)
        };
        if !valid {
            // SAFETY: as above; writing a fresh value makes the memory a valid T.
            unsafe { body.write(init()) };
        }
        // SAFETY: valid or freshly written; the caller guarantees a single owner.
        let mut r = Retained {
            value: unsafe { &mut *body },
        };
        r.seal();
        (r, valid)
    }

    pub fn get(&mut self) -> &mut T {
        self.value
    }

    /// Records the current value as the one to restore after a reset.
    pub fn seal(&mut self) {
        let header = VALUE_ADDR as *mut u32;
        let sum = checksum::<T>(self.value as *const T);
        // SAFETY: the header words are inside the reserved block.
        unsafe {
            write_volatile(header, 0);
            write_volatile(header.add(1), sum);
            write_volatile(header, MAGIC);
        }
    }
}

/// FNV-1a over the bytes of the `T` at `p` (read volatile: they may predate this boot).
fn checksum<T>(p: *const T) -> u32 {
    let bytes = p as *const u8;
    let mut h: u32 = 0x811c_9dc5;
    for i in 0..size_of::<T>() {
        // SAFETY: inside the reserved block.
        let b = unsafe { read_volatile(bytes.add(i)) };
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h
}
