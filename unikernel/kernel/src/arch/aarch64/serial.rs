//! The PL011 UART, polled. Its address comes from the device tree; until it
//! is read, QEMU virt's is assumed.

use core::sync::atomic::{AtomicUsize, Ordering};

const FLAGS: usize = 0x18;
const TRANSMIT_FULL: u32 = 1 << 5;

static BASE: AtomicUsize = AtomicUsize::new(0x0900_0000);

/// Uses the PL011 at `base`.
pub fn init(base: usize) {
    BASE.store(base, Ordering::Relaxed);
}

/// Sends one byte, waiting while the transmit FIFO is full.
pub fn write_byte(b: u8) {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: the PL011's registers are identity-mapped device memory.
    unsafe {
        while ((base + FLAGS) as *const u32).read_volatile() & TRANSMIT_FULL != 0 {
            core::hint::spin_loop();
        }
        (base as *mut u32).write_volatile(u32::from(b));
    }
}
