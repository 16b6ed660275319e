//! aarch64 clocks: a monotonic clock from the generic timer's virtual
//! counter, and a wall clock from the PL031 RTC read at boot.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::time::NANOS_PER_SEC;

static FREQUENCY: AtomicU64 = AtomicU64::new(1);
static COUNTER_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static UNIX_SECONDS_AT_BOOT: AtomicU64 = AtomicU64::new(0);

/// Reads the virtual counter.
pub fn counter() -> u64 {
    let value: u64;
    // SAFETY: reading the counter has no side effects; the isb keeps the read
    // in program order.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) value, options(nomem, nostack)) };
    value
}

/// Reads the counter's frequency and, when there is a PL031 at `rtc`, the
/// wall clock.
pub fn init(rtc: Option<usize>) {
    let frequency: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) frequency, options(nomem, nostack)) };
    FREQUENCY.store(frequency.max(1), Ordering::Relaxed);
    COUNTER_AT_BOOT.store(counter(), Ordering::Relaxed);
    if let Some(rtc) = rtc {
        // SAFETY: RTCDR, the PL031's first register, holds the seconds.
        let seconds = unsafe { (rtc as *const u32).read_volatile() };
        UNIX_SECONDS_AT_BOOT.store(u64::from(seconds), Ordering::Relaxed);
    }
}

/// The counter's frequency in Hz.
pub fn frequency() -> u64 {
    FREQUENCY.load(Ordering::Relaxed)
}

/// Nanoseconds since boot.
pub fn monotonic_ns() -> u64 {
    let ticks = counter().wrapping_sub(COUNTER_AT_BOOT.load(Ordering::Relaxed));
    (u128::from(ticks) * u128::from(NANOS_PER_SEC) / u128::from(frequency())) as u64
}

/// The counter value at `ns` nanoseconds since boot.
pub fn counter_at(ns: u64) -> u64 {
    let ticks = u128::from(ns) * u128::from(frequency()) / u128::from(NANOS_PER_SEC);
    COUNTER_AT_BOOT
        .load(Ordering::Relaxed)
        .wrapping_add(ticks as u64)
}

/// Nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    UNIX_SECONDS_AT_BOOT.load(Ordering::Relaxed) * NANOS_PER_SEC + monotonic_ns()
}
