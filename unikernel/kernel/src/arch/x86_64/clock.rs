//! x86_64 clocks: a monotonic clock from the TSC (its rate from KVM's clock, else
//! measured against the PIT at boot) and a wall clock from the CMOS RTC read at boot.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{kvmclock, pit, rdtsc, rtc};
use crate::time::NANOS_PER_SEC;

/// Assumed TSC frequency when the PIT cannot be used to measure it.
const FALLBACK_TSC_HZ: u64 = 2_000_000_000;

static TSC_HZ: AtomicU64 = AtomicU64::new(FALLBACK_TSC_HZ);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static UNIX_SECONDS_AT_BOOT: AtomicU64 = AtomicU64::new(0);

/// Calibrates the TSC and reads the wall clock.
pub fn init() {
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
    let measured = kvmclock::tsc_hz().or_else(pit::tsc_hz);
    if let Some(hz) = measured.filter(|&hz| hz > 1_000_000) {
        TSC_HZ.store(hz, Ordering::Relaxed);
    }
    UNIX_SECONDS_AT_BOOT.store(rtc::unix_seconds(), Ordering::Relaxed);
}

/// The measured TSC frequency in Hz.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since boot.
pub fn monotonic_ns() -> u64 {
    let ticks = rdtsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    (u128::from(ticks) * u128::from(NANOS_PER_SEC) / u128::from(tsc_hz())) as u64
}

/// The TSC value at `ns` nanoseconds since boot.
pub fn tsc_at(ns: u64) -> u64 {
    let ticks = u128::from(ns) * u128::from(tsc_hz()) / u128::from(NANOS_PER_SEC);
    TSC_AT_BOOT
        .load(Ordering::Relaxed)
        .wrapping_add(ticks as u64)
}

/// Nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    UNIX_SECONDS_AT_BOOT.load(Ordering::Relaxed) * NANOS_PER_SEC + monotonic_ns()
}
