//! The hermit ABI: the `sys_*` functions std calls on the hermit targets.
//!
//! Functions that can fail return a negative errno and also record it for
//! `sys_get_errno`. One module per group of calls.

pub mod errno;
pub mod fs;
pub mod futex;
pub mod io;
pub mod mem;
pub mod net;
pub mod process;
pub mod thread;
pub mod time;

use crate::sched;

/// The ABI's convention for `i32` results: the value, or `-errno` (recorded
/// for `sys_get_errno`).
fn ret(result: Result<i32, i32>) -> i32 {
    result.unwrap_or_else(|errno| {
        sched::set_errno(errno);
        -errno
    })
}

/// The ABI's convention for byte counts: the count, or `-errno`.
fn ret_size(result: Result<usize, i32>) -> isize {
    match result {
        Ok(n) => n as isize,
        Err(errno) => ret(Err(errno)) as isize,
    }
}
