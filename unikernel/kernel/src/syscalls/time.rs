//! Clocks.

use super::errno::EINVAL;
use super::ret;
use crate::time::{self, NANOS_PER_SEC};

/// hermit's `timespec`: 64-bit seconds, 32-bit nanoseconds.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Timespec {
    /// Seconds.
    pub tv_sec: i64,
    /// Nanoseconds, below one second.
    pub tv_nsec: i32,
}

impl Timespec {
    fn from_ns(ns: u64) -> Self {
        Self {
            tv_sec: (ns / NANOS_PER_SEC) as i64,
            tv_nsec: (ns % NANOS_PER_SEC) as i32,
        }
    }

    /// The length in nanoseconds; `None` if negative or malformed.
    pub fn to_ns(&self) -> Option<u64> {
        let secs = u64::try_from(self.tv_sec).ok()?;
        let nanos = u64::try_from(self.tv_nsec)
            .ok()
            .filter(|&n| n < NANOS_PER_SEC)?;
        Some(secs.saturating_mul(NANOS_PER_SEC).saturating_add(nanos))
    }
}

const CLOCK_REALTIME: i32 = 1;
const CLOCK_MONOTONIC: i32 = 4;

/// Reads `CLOCK_REALTIME` or `CLOCK_MONOTONIC` into `*tp`.
///
/// # Safety
/// `tp` must point to writable memory for a `Timespec`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_clock_gettime(clock: i32, tp: *mut Timespec) -> i32 {
    let ns = match clock {
        CLOCK_REALTIME => time::realtime_ns(),
        CLOCK_MONOTONIC => time::monotonic_ns(),
        _ => return ret(Err(EINVAL)),
    };
    if tp.is_null() {
        return ret(Err(EINVAL));
    }
    // SAFETY: the caller provides a writable Timespec.
    unsafe { tp.write(Timespec::from_ns(ns)) };
    0
}
