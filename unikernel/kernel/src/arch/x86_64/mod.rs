//! x86_64: PVH entry (and the packed image's unpacking stub), descriptor tables, port
//! I/O, the TSC and context switch.

pub mod apic;
pub mod boot;
pub mod clock;
pub mod cpu;
pub mod entry;
pub mod ioapic;
pub mod kvmclock;
pub mod pit;
pub mod rtc;
pub mod serial;
pub mod switch;
pub mod unpack;

use core::arch::asm;

/// Writes a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: port I/O has no memory effects; callers pick ports of devices they own.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) }
}

/// Writes a 32-bit value to an I/O port.
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack)) }
}

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`.
    unsafe { asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack)) }
    value
}

/// TLS layout: variant II (the thread pointer is the end of the block).
pub const TLS_VARIANT_I: bool = false;

/// QEMU microvm's virtio-mmio transports: 24 windows of 512 bytes.
pub fn virtio_mmio_windows() -> impl Iterator<Item = (usize, usize)> {
    (0..24).map(|slot| (entry::VIRTIO_MMIO_BASE + slot * 512, 512))
}

/// Routes the interrupt of the virtio-mmio device at `window` through
/// microvm's second I/O APIC, so that it wakes an idle CPU; false where the
/// machine has none (the device is then polled).
pub fn enable_device_interrupt(window: usize) -> bool {
    ioapic::route(window)
}

/// Halts the CPU until `ns` nanoseconds since boot (or any interrupt).
pub fn halt_until(ns: u64) {
    apic::halt_until(clock::tsc_at(ns));
}

/// A fast-moving counter (the TSC), for mixing into fallback entropy.
pub fn cycle_counter() -> u64 {
    rdtsc()
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads a counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Sets the FS base, which holds the thread pointer (TLS variant II).
pub fn set_thread_pointer(tp: usize) {
    const IA32_FS_BASE: u32 = 0xC000_0100;
    // SAFETY: only std's TLS accesses depend on FS, and the caller passes a
    // valid TLS block for the thread about to run.
    unsafe {
        asm!("wrmsr", in("ecx") IA32_FS_BASE, in("eax") tp as u32,
             in("edx") (tp >> 32) as u32, options(nostack))
    }
}

/// Returns a hardware random number, if the CPU has RDRAND and it delivers.
pub fn random_u64() -> Option<u64> {
    let has_rdrand = core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0;
    if !has_rdrand {
        return None;
    }
    (0..10).find_map(|_| {
        let mut value = 0u64;
        // SAFETY: the CPU reported RDRAND support.
        let ok = unsafe { core::arch::x86_64::_rdrand64_step(&mut value) };
        (ok == 1).then_some(value)
    })
}

/// Ends the VM with `status` through QEMU's isa-debug-exit device (port
/// 0xf4; QEMU exits with `status * 2 + 1`), or halts forever without one.
pub fn exit_vm(status: u8) -> ! {
    outl(0xf4, u32::from(status));
    loop {
        // SAFETY: interrupts are disabled, so this stops the CPU for good.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) }
    }
}
