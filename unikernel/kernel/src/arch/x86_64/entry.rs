//! The PVH entry point.
//!
//! A PVH boot loader (QEMU, Firecracker, cloud-hypervisor) finds the 32-bit
//! entry in the ELF note `XEN_ELFNOTE_PHYS32_ENTRY` and jumps there in flat
//! protected mode, paging off, with `ebx` holding the physical address of the
//! `hvm_start_info`. The code below identity-maps the first 4 GiB with 2 MiB
//! pages, enables long mode and SSE, loads a boot GDT, switches to the boot
//! stack and calls `kith_kernel_start(start_info)`.

use core::arch::global_asm;

/// Where QEMU microvm's virtio-mmio windows start.
pub const VIRTIO_MMIO_BASE: usize = 0xfeb0_0000;

/// Size of the stack the boot CPU runs on until the first thread starts.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .p2align 2
    .long pvh_start32
    .p2align 2

    .section .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    mov esi, ebx

    mov edi, offset boot_pd
    mov eax, 0x83
    mov ecx, 2048
2:  mov [edi], eax
    mov dword ptr [edi + 4], 0
    add eax, 0x200000
    add edi, 8
    loop 2b

    mov edi, offset boot_pdpt
    mov eax, offset boot_pd
    or eax, 3
    mov ecx, 4
3:  mov [edi], eax
    add eax, 4096
    add edi, 8
    loop 3b

    mov eax, offset boot_pdpt
    or eax, 3
    mov [boot_pml4], eax

    mov eax, cr4
    or eax, (1 << 5) | (1 << 9) | (1 << 10)
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    and eax, ~(1 << 2)
    or eax, (1 << 31) | (1 << 5) | (1 << 1) | 1
    mov cr0, eax

    lgdt [boot_gdt_ptr]
    mov eax, offset start64
    push 0x08
    push eax
    retf

    .code64
start64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, offset boot_stack_top
    fninit
    mov edi, esi
    call kith_kernel_start
4:  hlt
    jmp 4b

    .section .rodata.boot, "a"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_ptr:
    .word 23
    .quad boot_gdt

    .section .bss.boot, "aw", @nobits
    .p2align 12
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
    .p2align 4
boot_stack:
    .skip {stack_size}
boot_stack_top:
    "#,
    stack_size = const BOOT_STACK_SIZE,
);

/// The `hvm_start_info` a PVH boot loader hands over (version 1 layout).
#[repr(C)]
pub struct StartInfo {
    /// 0x336ec578 for a valid structure.
    pub magic: u32,
    /// 0 or 1; version 1 adds the memory map.
    pub version: u32,
    /// Flags (unused).
    pub flags: u32,
    /// Number of modules (unused).
    pub nr_modules: u32,
    /// Physical address of the module list (unused).
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated kernel command line, or 0.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP, or 0.
    pub rsdp_paddr: u64,
    /// Physical address of the memory map (version 1).
    pub memmap_paddr: u64,
    /// Entries in the memory map (version 1).
    pub memmap_entries: u32,
    /// Reserved.
    pub reserved: u32,
}

/// One entry of the PVH memory map.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MemmapEntry {
    /// Start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// 1 for usable RAM.
    pub kind: u32,
    /// Reserved.
    pub reserved: u32,
}

/// The magic number of a valid [`StartInfo`].
pub const START_INFO_MAGIC: u32 = 0x336e_c578;

/// Memory map entry type for usable RAM.
pub const MEMMAP_RAM: u32 = 1;
