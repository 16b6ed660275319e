//! The entry point and exception vectors for QEMU `-M virt`.
//!
//! QEMU loads the image at its link address and starts the boot CPU at
//! `_start` in EL1 (or EL2, which the code leaves for EL1) with the MMU off.
//! `_start` opens with the arm64 Image header (Linux's `booting.rst`), so the
//! same bytes boot as an ELF or, flattened and gzipped by `kith build`, as an
//! `Image.gz` that the boot loader unpacks. The code zeroes the page table,
//! enables the FPU, builds an identity map with 1 GiB blocks (the
//! first GiB, where the devices are, as device memory; the next seven as
//! normal cacheable memory, so unaligned and exclusive accesses work),
//! zeroes the rest of `.bss` (an Image loader does not), installs the
//! vectors, and calls `kith_kernel_start(x0)` on the boot stack.
//!
//! Threads run on SP_EL0; exceptions switch to SP_EL1, a stack of their own,
//! so a thread's stack overflow is still reported.

use core::arch::global_asm;

/// Size of the stack the boot CPU runs on until the first thread starts.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;
/// Size of the stack exception handlers run on.
pub const EXCEPTION_STACK_SIZE: usize = 16 * 1024;

/// MAIR_EL1: attribute 0 device nGnRE, attribute 1 normal write-back.
const MAIR: u64 = 0x04 | (0xff << 8);
/// TCR_EL1: 39-bit addresses through TTBR0 (walks start at level 1), 4 KiB
/// granule, write-back inner-shareable walks, 40-bit physical addresses,
/// no TTBR1 walks.
const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (2 << 32);
/// A level-1 block of device memory: valid, attribute 0, access flag, never
/// executable.
const DEVICE_BLOCK: u64 = 0x1 | (1 << 10) | (3 << 53);
/// A level-1 block of normal memory: valid, attribute 1, inner shareable,
/// access flag.
const NORMAL_BLOCK: u64 = 0x1 | (1 << 2) | (3 << 8) | (1 << 10);
/// Gigabytes identity-mapped as normal memory, after the device gigabyte.
const NORMAL_GIB: u64 = 7;
/// Where the Image header asks to be loaded: 2 MiB into RAM (the link address).
const IMAGE_TEXT_OFFSET: u64 = 0x20_0000;
/// The Image header's flags: little-endian, 4 KiB pages, at the 2 MiB-aligned base
/// nearest the start of RAM.
const IMAGE_FLAGS: u64 = 0b010;

global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    b 0f
    .long 0
    .quad {text_offset}
    .quad 0
    .quad {image_flags}
    .quad 0, 0, 0
    .ascii "ARM\x64"
    .long 0
0:
    mov x19, x0
    mrs x1, CurrentEL
    cmp x1, #(2 << 2)
    b.ne 1f
    // EL2: let EL1 use the counters, run EL1 in AArch64, and drop to it.
    mov x1, #3
    msr cnthctl_el2, x1
    msr cntvoff_el2, xzr
    mov x1, #(1 << 31)
    msr hcr_el2, x1
    mov x1, #0x3c5
    msr spsr_el2, x1
    adr x1, 1f
    msr elr_el2, x1
    eret
1:
    // FP/SIMD on: Rust code uses the vector registers.
    mov x1, #(3 << 20)
    msr cpacr_el1, x1
    isb

    // The level-1 table: zeroed, then entry 0 device, entries 1..=NORMAL_GIB
    // normal.
    ldr x1, =boot_l1
    mov x3, #512
5:  sub x3, x3, #1
    str xzr, [x1, x3, lsl #3]
    cbnz x3, 5b
    ldr x2, ={device}
    str x2, [x1]
    ldr x2, ={normal}
    mov x3, #1
2:  orr x4, x2, x3, lsl #30
    str x4, [x1, x3, lsl #3]
    add x3, x3, #1
    cmp x3, #{normal_gib}
    b.ls 2b

    ldr x2, ={mair}
    msr mair_el1, x2
    ldr x2, ={tcr}
    msr tcr_el1, x2
    msr ttbr0_el1, x1
    dsb ish
    isb
    tlbi vmalle1
    dsb ish
    isb
    mrs x2, sctlr_el1
    // M (MMU), C (data cache), I (instruction cache) on; A (alignment
    // checks) and WXN off.
    ldr x3, =((1 << 0) | (1 << 2) | (1 << 12))
    orr x2, x2, x3
    ldr x3, =((1 << 1) | (1 << 19))
    bic x2, x2, x3
    msr sctlr_el1, x2
    isb

    // The rest of .bss, with the caches on.
    ldr x1, =boot_l1 + 4096
    ldr x2, =__kernel_end
6:  stp xzr, xzr, [x1], #16
    cmp x1, x2
    b.lo 6b

    ldr x1, =kith_vectors
    msr vbar_el1, x1
    ldr x1, =exception_stack_top
    mov sp, x1
    msr spsel, #0
    ldr x1, =boot_stack_top
    mov sp, x1
    isb
    mov x0, x19
    bl kith_kernel_start
3:  wfi
    b 3b

    .section .text
    .balign 0x800
    .global kith_vectors
kith_vectors:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 0x80
    mov x0, #\n
    b kith_vector_common
    .endr

kith_vector_common:
    mrs x1, esr_el1
    mrs x2, elr_el1
    mrs x3, far_el1
    mrs x4, sp_el0
    bl kith_exception
4:  wfi
    b 4b

    .section .bss.boot, "aw", @nobits
    .p2align 12
boot_l1:
    .skip 4096
    .p2align 4
boot_stack:
    .skip {boot_stack}
boot_stack_top:
    .p2align 4
exception_stack:
    .skip {exception_stack}
exception_stack_top:
    "#,
    device = const DEVICE_BLOCK,
    normal = const NORMAL_BLOCK,
    normal_gib = const NORMAL_GIB,
    text_offset = const IMAGE_TEXT_OFFSET,
    image_flags = const IMAGE_FLAGS,
    mair = const MAIR,
    tcr = const TCR,
    boot_stack = const BOOT_STACK_SIZE,
    exception_stack = const EXCEPTION_STACK_SIZE,
);

/// Reports an exception (which group of the vector table, the syndrome and
/// the addresses involved) and ends the VM.
#[unsafe(no_mangle)]
extern "C" fn kith_exception(vector: u64, esr: u64, elr: u64, far: u64, sp: u64) -> ! {
    crate::log!(
        "CPU exception (vector {vector}, ESR {esr:#x}, class {:#x}) at pc {elr:#x}, sp {sp:#x}, \
address {far:#x}",
        esr >> 26
    );
    super::exit_vm(crate::syscalls::process::EXIT_KERNEL_FAULT)
}
