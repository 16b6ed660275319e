//! Context switch between kernel threads.
//!
//! A thread's saved context is its stack pointer; the callee-saved registers
//! sit on its stack. A new thread's stack is laid out so that the first switch
//! to it "returns" into `kith_thread_trampoline`, which calls
//! `kith_thread_start` on a 16-byte aligned stack.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text
    .global kith_switch_stacks
kith_switch_stacks:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    .global kith_thread_trampoline
kith_thread_trampoline:
    call kith_thread_start
    ud2
    "#
);

unsafe extern "C" {
    /// Saves the current stack pointer to `*save` and resumes the context whose
    /// stack pointer is `resume`.
    pub fn kith_switch_stacks(save: *mut usize, resume: usize);
    fn kith_thread_trampoline();
}

/// Number of callee-saved registers `kith_switch_stacks` pops.
const SAVED_REGISTERS: usize = 6;

/// Prepares a fresh stack whose top is `top` (16-byte aligned) and returns the
/// stack pointer to resume it with.
///
/// # Safety
/// `top` must be the end of a writable stack of at least 64 bytes.
pub unsafe fn initial_stack(top: usize) -> usize {
    let words = top as *mut usize;
    // SAFETY: the caller guarantees the words below `top` are writable.
    unsafe {
        words
            .sub(1)
            .write(kith_thread_trampoline as *const () as usize);
        for i in 2..=SAVED_REGISTERS + 1 {
            words.sub(i).write(0);
        }
    }
    top - (SAVED_REGISTERS + 1) * size_of::<usize>()
}
