//! The unpacking stub of a compressed image (`kith build` packs x86_64 images).
//!
//! A packed image is one segment loaded just above the kernel's end: this stub, an
//! 8-byte header (the block's length, then the address to decode to: the kernel's
//! start; little-endian `u32`s), and the kernel's memory image compressed as one LZ4
//! block. Its PVH note names `kith_unpack32` as the entry. The stub runs in the same
//! flat 32-bit protected mode as the PVH entry, with no stack: it decodes the block,
//! zeroes what follows up to `__kernel_end` (the `.bss`), and jumps to
//! `pvh_start32` with the start info pointer back in `ebx`, as if the boot loader had
//! loaded the kernel itself. The stub sits above `__kernel_end`, so the decoded
//! kernel never overwrites it, and the heap later takes its memory back.
//!
//! An unpacked image carries the stub too (a few hundred bytes, never run).

use core::arch::global_asm;

global_asm!(
    r#"
    .section .unpack, "ax"
    .code32
    .global kith_unpack32
kith_unpack32:
    cli
    cld
    mov ebp, ebx
    mov esi, offset __unpack_blob
    mov edx, [esi]
    mov edi, [esi + 4]
    add esi, 8
    add edx, esi
2:
    movzx eax, byte ptr [esi]
    inc esi
    mov ecx, eax
    shr ecx, 4
    cmp ecx, 15
    jne 4f
3:
    movzx ebx, byte ptr [esi]
    inc esi
    add ecx, ebx
    cmp ebx, 255
    je 3b
4:
    rep movsb
    cmp esi, edx
    jae 7f
    movzx ebx, word ptr [esi]
    add esi, 2
    and eax, 15
    cmp eax, 15
    jne 6f
5:
    movzx ecx, byte ptr [esi]
    inc esi
    add eax, ecx
    cmp ecx, 255
    je 5b
6:
    lea ecx, [eax + 4]
    mov eax, esi
    mov esi, edi
    sub esi, ebx
    rep movsb
    mov esi, eax
    jmp 2b
7:
    mov ecx, offset __kernel_end
    sub ecx, edi
    xor eax, eax
    rep stosb
    mov ebx, ebp
    jmp pvh_start32
    .code64
"#
);
