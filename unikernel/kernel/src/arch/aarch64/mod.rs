//! aarch64 for QEMU `-M virt`: entry and MMU, exception vectors, PL011
//! console, generic timer, GICv2, and the device tree that says where each
//! device is.

pub mod boot;
pub mod clock;
pub mod entry;
pub mod gic;
pub mod serial;
pub mod switch;

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

/// TLS layout: variant I (the thread pointer is the start of the block).
pub const TLS_VARIANT_I: bool = true;

/// The virtio-mmio transports the device tree lists.
pub fn virtio_mmio_windows() -> impl Iterator<Item = (usize, usize)> {
    boot::virtio_mmio_windows()
}

/// Routes the interrupt of the virtio-mmio device at `window` (its SPI, from
/// the device tree) through the GIC, so that it wakes an idle CPU; false
/// when there is no GIC or the device tree names no interrupt.
pub fn enable_device_interrupt(window: usize) -> bool {
    boot::device_spi(window).is_some_and(gic::enable_spi)
}

/// Halts the CPU until `ns` nanoseconds since boot (or any interrupt).
pub fn halt_until(ns: u64) {
    gic::halt_until(clock::counter_at(ns));
}

/// A fast-moving counter, for mixing into fallback entropy.
pub fn cycle_counter() -> u64 {
    clock::counter()
}

/// Sets TPIDR_EL0, which holds the thread pointer (TLS variant I).
pub fn set_thread_pointer(tp: usize) {
    // SAFETY: only std's TLS accesses depend on TPIDR_EL0, and the caller
    // passes a valid TLS block for the thread about to run.
    unsafe { asm!("msr tpidr_el0, {}", in(reg) tp, options(nostack)) }
}

/// Returns a hardware random number, if the CPU has RNDR and it delivers.
pub fn random_u64() -> Option<u64> {
    let features: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { asm!("mrs {}, id_aa64isar0_el1", out(reg) features, options(nomem, nostack)) };
    if features >> 60 == 0 {
        return None;
    }
    (0..10).find_map(|_| {
        let (value, ok): (u64, u64);
        // SAFETY: the CPU reported RNDR (s3_3_c2_c4_0); it sets Z on failure.
        unsafe {
            asm!("mrs {v}, s3_3_c2_c4_0", "cset {ok}, ne", v = out(reg) value,
                 ok = out(reg) ok, options(nomem, nostack))
        };
        (ok == 1).then_some(value)
    })
}

static EXITING: AtomicBool = AtomicBool::new(false);

/// Ends the VM with `status`: QEMU's semihosting exit with `status * 2 + 1`
/// (the code x86_64's exit device gives), else PSCI SYSTEM_OFF, else halts.
pub fn exit_vm(status: u8) -> ! {
    const SYS_EXIT: u64 = 0x18;
    const APPLICATION_EXIT: u64 = 0x20026;
    const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
    // A second exit (semihosting is off, so `hlt` faulted) goes to PSCI.
    if !EXITING.swap(true, Ordering::Relaxed) {
        let block = [APPLICATION_EXIT, u64::from(status) * 2 + 1];
        // SAFETY: the semihosting call reads the two-word block and ends QEMU.
        unsafe { asm!("hlt #0xf000", in("x0") SYS_EXIT, in("x1") &block, options(nostack)) };
    }
    // SAFETY: PSCI SYSTEM_OFF does not return when the hypervisor offers it.
    unsafe { asm!("hvc #0", inout("x0") PSCI_SYSTEM_OFF => _, options(nomem, nostack)) };
    loop {
        // SAFETY: waits forever; interrupts are masked.
        unsafe { asm!("wfi", options(nomem, nostack)) }
    }
}
