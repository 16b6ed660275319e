//! Context switch between kernel threads.
//!
//! A thread's saved context is its stack pointer; the callee-saved registers
//! (x19-x30, d8-d15) sit on its stack. A new thread's stack is laid out so
//! that the first switch to it "returns" into `kith_thread_trampoline`, which
//! calls `kith_thread_start`.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text
    .global kith_switch_stacks
kith_switch_stacks:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x2, sp
    str x2, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret

    .global kith_thread_trampoline
kith_thread_trampoline:
    bl kith_thread_start
    brk #0
    "#
);

unsafe extern "C" {
    /// Saves the current stack pointer to `*save` and resumes the context whose
    /// stack pointer is `resume`.
    pub fn kith_switch_stacks(save: *mut usize, resume: usize);
    fn kith_thread_trampoline();
}

/// Bytes `kith_switch_stacks` keeps on the stack.
const FRAME: usize = 160;
/// Where x30, the return address, sits in that frame.
const LINK_REGISTER_OFFSET: usize = 88;

/// Prepares a fresh stack whose top is `top` (16-byte aligned) and returns the
/// stack pointer to resume it with.
///
/// # Safety
/// `top` must be the end of a writable stack of at least 160 bytes.
pub unsafe fn initial_stack(top: usize) -> usize {
    let sp = top - FRAME;
    // SAFETY: the caller guarantees the frame below `top` is writable.
    unsafe {
        core::ptr::write_bytes(sp as *mut u8, 0, FRAME);
        ((sp + LINK_REGISTER_OFFSET) as *mut usize)
            .write(kith_thread_trampoline as *const () as usize);
    }
    sp
}
