//! Threads: spawn, join, yield, sleep.

use super::errno::ESRCH;
use super::ret;
use crate::sched::{self, Tid};

/// Starts a thread running `func(arg)` with at least `stack_size` bytes of
/// stack; returns its id, or 0 on failure. Priority and core are ignored
/// (one CPU, one priority).
#[unsafe(no_mangle)]
pub extern "C" fn sys_spawn2(
    func: extern "C" fn(usize),
    arg: usize,
    _prio: u8,
    stack_size: usize,
    _core_id: isize,
) -> Tid {
    sched::spawn(func, arg, stack_size).unwrap_or(0)
}

/// Waits for thread `id` to finish.
#[unsafe(no_mangle)]
pub extern "C" fn sys_join(id: Tid) -> i32 {
    ret(if sched::join(id) { Ok(0) } else { Err(ESRCH) })
}

/// Lets other ready threads run.
#[unsafe(no_mangle)]
pub extern "C" fn sys_yield() {
    sched::yield_now();
}

/// Sleeps for at least `usecs` microseconds.
#[unsafe(no_mangle)]
pub extern "C" fn sys_usleep(usecs: u64) {
    sched::sleep_ns(usecs.saturating_mul(1000));
}

/// The number of CPUs threads can run on.
#[unsafe(no_mangle)]
pub extern "C" fn sys_available_parallelism() -> usize {
    1
}

/// The running thread's id.
#[unsafe(no_mangle)]
pub extern "C" fn sys_getpid() -> i32 {
    sched::current() as i32
}
