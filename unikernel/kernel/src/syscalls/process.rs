//! The program as a whole: exit, abort, errno, entropy.

use crate::arch::{self, cycle_counter, random_u64};
use crate::{console, sched};

/// Exit status the VM reports when the kernel itself fails (a CPU exception).
pub const EXIT_KERNEL_FAULT: u8 = 125;
/// Exit status the VM reports after `sys_abort` (a panic, usually).
const EXIT_ABORT: u8 = 134;

/// Ends the program, and with it the VM, with `status` (its low byte).
#[unsafe(no_mangle)]
pub extern "C" fn sys_exit(status: i32) -> ! {
    arch::exit_vm(status as u8)
}

/// Ends the program abnormally.
#[unsafe(no_mangle)]
pub extern "C" fn sys_abort() -> ! {
    console::write(b"[kith] aborted\n");
    arch::exit_vm(EXIT_ABORT)
}

/// The running thread's last error number.
#[unsafe(no_mangle)]
pub extern "C" fn sys_get_errno() -> i32 {
    sched::errno()
}

/// Fills `buf` with random bytes from the CPU (RDRAND, RNDR) or, without it, a counter-seeded
/// mixer (enough for hash seeds, not for keys), and returns `len`.
///
/// # Safety
/// `buf` must point to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_read_entropy(buf: *mut u8, len: usize, _flags: u32) -> isize {
    // SAFETY: the caller provides `len` writable bytes.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let mut fallback = cycle_counter();
    for chunk in out.chunks_mut(8) {
        let word = random_u64().unwrap_or_else(|| {
            fallback = splitmix64(fallback ^ cycle_counter());
            fallback
        });
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
    len as isize
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
