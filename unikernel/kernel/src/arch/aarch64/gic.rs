//! The GICv2 interrupt controller and the generic timer, used only to end an
//! idle `wfi`: at a deadline, or when a device (the NIC) signals.
//!
//! Interrupts stay masked in the CPU (PSTATE.I) for the whole run: a pending
//! interrupt still wakes `wfi`, so no handler ever runs. After waking, the
//! kernel disables the timer and acknowledges whatever the GIC signalled.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::clock;

/// The EL1 virtual timer's private interrupt.
const VIRTUAL_TIMER_IRQ: usize = 27;
const GICD_CTLR: usize = 0x000;
const GICD_ISENABLER: usize = 0x100;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ITARGETSR: usize = 0x800;
const GICD_ICFGR: usize = 0xc00;
/// Interrupt ids the GIC has room for (GICv2).
const MAX_INTERRUPTS: u32 = 1020;
/// Interrupts acknowledged at most per wake-up (a guard against a line that
/// stays asserted).
const MAX_ACKS: usize = 32;
const GICC_CTLR: usize = 0x00;
const GICC_PMR: usize = 0x04;
const GICC_IAR: usize = 0x0c;
const GICC_EOIR: usize = 0x10;
const SPURIOUS: u32 = 1023;

/// The CPU interface's address; 0 when there is no usable GIC.
static CPU_INTERFACE: AtomicUsize = AtomicUsize::new(0);
/// The distributor's address; 0 when there is no usable GIC.
static DISTRIBUTOR: AtomicUsize = AtomicUsize::new(0);

fn write(addr: usize, value: u32) {
    // SAFETY: GIC registers are identity-mapped device memory.
    unsafe { (addr as *mut u32).write_volatile(value) }
}

fn read(addr: usize) -> u32 {
    // SAFETY: as for `write`.
    unsafe { (addr as *const u32).read_volatile() }
}

/// Enables the distributor at `distributor` and the CPU interface at
/// `cpu_interface`, with the virtual timer's interrupt unmasked in the GIC.
pub fn init(distributor: usize, cpu_interface: usize) {
    write(distributor + GICD_CTLR, 1);
    write(distributor + GICD_ISENABLER, 1 << VIRTUAL_TIMER_IRQ);
    set_byte(distributor + GICD_IPRIORITYR + VIRTUAL_TIMER_IRQ, 0x80);
    write(cpu_interface + GICC_PMR, 0xf0);
    write(cpu_interface + GICC_CTLR, 1);
    CPU_INTERFACE.store(cpu_interface, Ordering::Relaxed);
    DISTRIBUTOR.store(distributor, Ordering::Relaxed);
}

/// Writes one byte of a byte-addressable distributor register array.
fn set_byte(addr: usize, value: u8) {
    // SAFETY: IPRIORITYR and ITARGETSR are byte-addressable device memory.
    unsafe { (addr as *mut u8).write_volatile(value) }
}

/// Enables the shared peripheral interrupt `id` as edge-triggered (as QEMU's
/// device tree describes virtio-mmio's), sent to this CPU; false without a
/// GIC or for an id that is not an SPI.
pub fn enable_spi(id: u32) -> bool {
    let distributor = DISTRIBUTOR.load(Ordering::Relaxed);
    if distributor == 0 || !(32..MAX_INTERRUPTS).contains(&id) {
        return false;
    }
    let id = id as usize;
    set_byte(distributor + GICD_IPRIORITYR + id, 0x80);
    set_byte(distributor + GICD_ITARGETSR + id, 1);
    let config = distributor + GICD_ICFGR + id / 16 * 4;
    write(config, read(config) | 2 << (id % 16 * 2));
    write(distributor + GICD_ISENABLER + id / 32 * 4, 1 << (id % 32));
    true
}

/// Acknowledges and ends the interrupts the GIC signals.
fn acknowledge_all(cpu_interface: usize) {
    for _ in 0..MAX_ACKS {
        let iar = read(cpu_interface + GICC_IAR);
        if iar & 0x3ff == SPURIOUS {
            return;
        }
        write(cpu_interface + GICC_EOIR, iar);
    }
}

/// Halts the CPU until the counter reaches `deadline` (or another interrupt
/// arrives); returns at once without a GIC.
pub fn halt_until(deadline: u64) {
    let cpu_interface = CPU_INTERFACE.load(Ordering::Relaxed);
    if cpu_interface == 0 || deadline <= clock::counter() {
        return;
    }
    // SAFETY: arms the virtual timer (enabled, unmasked), waits, then
    // disables it; interrupts stay masked in PSTATE, so only `wfi` notices.
    unsafe {
        asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb", "wfi",
             "msr cntv_ctl_el0, xzr", "isb",
             in(reg) deadline, in(reg) 1u64, options(nomem, nostack));
    }
    acknowledge_all(cpu_interface);
}
