//! The GICv2 interrupt controller and the generic timer, used only to end an
//! idle `wfi` at a deadline.
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
const GICC_CTLR: usize = 0x00;
const GICC_PMR: usize = 0x04;
const GICC_IAR: usize = 0x0c;
const GICC_EOIR: usize = 0x10;
const SPURIOUS: u32 = 1023;

/// The CPU interface's address; 0 when there is no usable GIC.
static CPU_INTERFACE: AtomicUsize = AtomicUsize::new(0);

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
    // SAFETY: IPRIORITYR is byte-addressable; priority 0x80 is below the mask.
    unsafe {
        ((distributor + GICD_IPRIORITYR + VIRTUAL_TIMER_IRQ) as *mut u8).write_volatile(0x80)
    };
    write(cpu_interface + GICC_PMR, 0xf0);
    write(cpu_interface + GICC_CTLR, 1);
    CPU_INTERFACE.store(cpu_interface, Ordering::Relaxed);
}

/// Acknowledges and ends every interrupt the GIC signals.
fn acknowledge_all(cpu_interface: usize) {
    loop {
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
