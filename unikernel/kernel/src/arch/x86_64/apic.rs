//! The local APIC timer, used only to end an idle `hlt` at a deadline.
//!
//! Interrupts stay disabled except inside [`halt_until`], so the timer
//! interrupt only wakes the CPU; its handler acknowledges it and returns. The
//! legacy PICs are masked so their interrupts never arrive on the exception
//! vectors.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{outb, rdtsc};

/// Physical (= virtual) address of the xAPIC's end-of-interrupt register.
pub const EOI_ADDRESS: u64 = APIC_BASE + 0xb0;

const APIC_BASE: u64 = 0xfee0_0000;
const SPURIOUS: u64 = 0xf0;
const LVT_TIMER: u64 = 0x320;
const INITIAL_COUNT: u64 = 0x380;
const CURRENT_COUNT: u64 = 0x390;
const DIVIDE_CONFIG: u64 = 0x3e0;
const TIMER_VECTOR: u32 = 0x20;
const SPURIOUS_VECTOR: u32 = 0xff;
const IA32_APIC_BASE: u32 = 0x1b;

/// APIC timer ticks per 2^20 TSC ticks; 0 when the timer is not usable.
static TICKS_PER_MEGA_TSC: AtomicU64 = AtomicU64::new(0);

fn write(reg: u64, value: u32) {
    // SAFETY: the xAPIC registers are identity-mapped MMIO.
    unsafe { ((APIC_BASE + reg) as *mut u32).write_volatile(value) }
}

fn read(reg: u64) -> u32 {
    // SAFETY: as for `write`.
    unsafe { ((APIC_BASE + reg) as *const u32).read_volatile() }
}

fn has_apic() -> bool {
    core::arch::x86_64::__cpuid(1).edx & (1 << 9) != 0
}

/// Masks the PICs, enables the local APIC and measures its timer against
/// the TSC (`tsc_hz`) over about a millisecond.
pub fn init(tsc_hz: u64) {
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    if !has_apic() {
        return;
    }
    // SAFETY: sets the APIC's global enable bit, keeping its base address.
    unsafe {
        let (lo, hi): (u32, u32);
        asm!("rdmsr", in("ecx") IA32_APIC_BASE, out("eax") lo, out("edx") hi, options(nostack));
        asm!("wrmsr", in("ecx") IA32_APIC_BASE, in("eax") lo | (1 << 11), in("edx") hi,
             options(nostack));
    }
    write(SPURIOUS, 0x100 | SPURIOUS_VECTOR);
    write(DIVIDE_CONFIG, 0b0011);
    write(LVT_TIMER, TIMER_VECTOR | (1 << 16));
    write(INITIAL_COUNT, u32::MAX);
    let start = rdtsc();
    let window = tsc_hz / 1000;
    while rdtsc() - start < window {
        core::hint::spin_loop();
    }
    let elapsed_tsc = rdtsc() - start;
    let ticks = u64::from(u32::MAX - read(CURRENT_COUNT));
    write(INITIAL_COUNT, 0);
    write(LVT_TIMER, TIMER_VECTOR);
    if ticks > 0 {
        TICKS_PER_MEGA_TSC.store((ticks << 20) / elapsed_tsc, Ordering::Relaxed);
    }
}

/// Halts the CPU until about `tsc_deadline` (or any interrupt); returns at
/// once when the timer is not usable.
pub fn halt_until(tsc_deadline: u64) {
    let rate = TICKS_PER_MEGA_TSC.load(Ordering::Relaxed);
    let now = rdtsc();
    if rate == 0 || tsc_deadline <= now {
        return;
    }
    let ticks = ((tsc_deadline - now).saturating_mul(rate) >> 20).clamp(1, u64::from(u32::MAX));
    write(INITIAL_COUNT, ticks as u32);
    // SAFETY: `sti; hlt` waits for the timer (or another interrupt), whose
    // handler returns here; interrupts are off again right after.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
    write(INITIAL_COUNT, 0);
}
