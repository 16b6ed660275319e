//! Futexes, the base of std's locks and thread parking.

use core::sync::atomic::AtomicU32;

use super::errno::{EAGAIN, EINVAL, ETIMEDOUT};
use super::ret;
use super::time::Timespec;
use crate::sync::futex::{self, WaitError};
use crate::time;

/// `flags` bit: the timeout is relative to now (std always sets it).
const FUTEX_RELATIVE_TIMEOUT: u32 = 1;

/// Blocks while `*address == expected`, until woken or `timeout` passes
/// (relative with `FUTEX_RELATIVE_TIMEOUT`, else absolute monotonic; null
/// means no timeout). Returns 0, -EAGAIN or -ETIMEDOUT.
///
/// # Safety
/// `address` must point to a live, aligned u32; `timeout` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_futex_wait(
    address: *mut u32,
    expected: u32,
    timeout: *const Timespec,
    flags: u32,
) -> i32 {
    if address.is_null() || flags & !FUTEX_RELATIVE_TIMEOUT != 0 {
        return ret(Err(EINVAL));
    }
    // SAFETY: a non-null timeout is valid per the contract.
    let deadline = match unsafe { timeout.as_ref() }.map(Timespec::to_ns) {
        None => None,
        Some(None) => return ret(Err(EINVAL)),
        Some(Some(ns)) if flags & FUTEX_RELATIVE_TIMEOUT != 0 => {
            Some(time::monotonic_ns().saturating_add(ns))
        }
        Some(Some(ns)) => Some(ns),
    };
    // SAFETY: the caller guarantees a live, aligned u32.
    let word = unsafe { AtomicU32::from_ptr(address) };
    ret(match futex::wait(word, expected, deadline) {
        Ok(()) => Ok(0),
        Err(WaitError::ValueChanged) => Err(EAGAIN),
        Err(WaitError::TimedOut) => Err(ETIMEDOUT),
    })
}

/// Wakes up to `count` waiters on `address` (`i32::MAX`: all); returns how
/// many woke.
#[unsafe(no_mangle)]
pub extern "C" fn sys_futex_wake(address: *mut u32, count: i32) -> i32 {
    let Ok(count) = usize::try_from(count) else {
        return ret(Err(EINVAL));
    };
    if address.is_null() {
        return ret(Err(EINVAL));
    }
    let woken = futex::wake(address as usize, count);
    i32::try_from(woken).unwrap_or(i32::MAX)
}
