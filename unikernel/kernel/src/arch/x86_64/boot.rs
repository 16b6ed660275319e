//! The PVH boot path: from `entry`'s jump to the kernel's common start
//! ([`crate::boot::start`]) with the heap range and command line the PVH start
//! info gives.

use alloc::string::String;
use alloc::vec::Vec;

use super::entry::{MEMMAP_RAM, MemmapEntry, START_INFO_MAGIC, StartInfo};
use super::{apic, clock, cpu, serial};
use crate::log;

unsafe extern "C" {
    static __kernel_end: u8;
}

/// The identity map built at entry covers the first 4 GiB.
const MAPPED_LIMIT: u64 = 1 << 32;
/// Heap size assumed when the boot loader gives no memory map.
const FALLBACK_HEAP: u64 = 32 << 20;
/// Returns the usable RAM range `[start, end)` above the kernel image.
fn heap_range(info: &StartInfo) -> (u64, u64) {
    let kernel_end = (&raw const __kernel_end as u64).next_multiple_of(4096);
    if info.version < 1 || info.memmap_entries == 0 {
        return (kernel_end, kernel_end + FALLBACK_HEAP);
    }
    let base = info.memmap_paddr as *const MemmapEntry;
    (0..info.memmap_entries as usize)
        // SAFETY: the boot loader provides `memmap_entries` entries at
        // `memmap_paddr`. Volatile reads, because under KVM this area can be
        // emulated memory, where KVM cannot emulate vector instructions.
        .map(|i| unsafe { core::ptr::read_volatile(base.add(i)) })
        .filter(|e| e.kind == MEMMAP_RAM)
        .map(|e| (e.addr.max(kernel_end), (e.addr + e.size).min(MAPPED_LIMIT)))
        .filter(|(start, end)| start < end)
        .max_by_key(|(start, end)| end - start)
        .unwrap_or((kernel_end, kernel_end + FALLBACK_HEAP))
}

/// Copies the command line out of boot-loader memory (byte by byte, with
/// volatile reads, for the same reason as the memory map).
fn command_line(info: &StartInfo) -> String {
    let mut bytes = Vec::new();
    let mut p = info.cmdline_paddr as *const u8;
    // SAFETY: the boot loader provides a NUL-terminated string.
    while !p.is_null() && unsafe { core::ptr::read_volatile(p) } != 0 {
        // SAFETY: as above; `p` is before the terminating NUL.
        bytes.push(unsafe { core::ptr::read_volatile(p) });
        p = p.wrapping_add(1);
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// The kernel's Rust entry, called by the PVH entry code on the boot stack.
#[unsafe(no_mangle)]
extern "C" fn kith_kernel_start(start_info: u32) -> ! {
    serial::init();
    cpu::init();
    // SAFETY: the PVH entry passes the boot loader's start info pointer.
    let info = unsafe { &*(start_info as usize as *const StartInfo) };
    if info.magic != START_INFO_MAGIC {
        log!("bad PVH start info magic {:#x}", info.magic);
    }
    clock::init();
    apic::init(clock::tsc_hz());
    let (heap_start, heap_end) = heap_range(info);
    crate::boot::start(heap_start as usize, heap_end as usize, || {
        command_line(info)
    })
}
