//! From the PVH entry to std's `runtime_entry`: descriptor tables, clocks,
//! heap, network, then the program's main thread.

use alloc::ffi::CString;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_char;

use crate::arch::entry::{MEMMAP_RAM, MemmapEntry, START_INFO_MAGIC, StartInfo};
use crate::arch::{self, apic, cpu, serial};
use crate::syscalls::process::EXIT_KERNEL_FAULT;
use crate::{log, mm, net, sched, time};

unsafe extern "C" {
    static __kernel_end: u8;
    fn runtime_entry(argc: i32, argv: *const *const c_char, env: *const *const c_char) -> !;
}

/// The identity map built at entry covers the first 4 GiB.
const MAPPED_LIMIT: u64 = 1 << 32;
/// Heap size assumed when the boot loader gives no memory map.
const FALLBACK_HEAP: u64 = 32 << 20;
/// Stack of the program's main thread.
const MAIN_STACK: usize = 2 << 20;

/// The program's arguments and environment, as std's `runtime_entry` takes them.
struct ProgramArgs {
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

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

/// Splits the command line into kernel options and program arguments (those
/// after `--`), and builds argv/envp for std.
fn program_args(cmdline: &str) -> ProgramArgs {
    let app = cmdline.split_once("--").map_or("", |(_, app)| app);
    let argv = core::iter::once("kith")
        .chain(app.split_whitespace())
        .map(|arg| {
            CString::new(arg)
                .unwrap_or_default()
                .into_raw()
                .cast_const()
        })
        .chain(core::iter::once(core::ptr::null()))
        .collect();
    ProgramArgs {
        argv,
        envp: alloc::vec![core::ptr::null()],
    }
}

extern "C" fn main_thread(args: usize) {
    // SAFETY: `args` is the `ProgramArgs` leaked by `kith_kernel_start`.
    let args = unsafe { &*(args as *const ProgramArgs) };
    let argc = (args.argv.len() - 1) as i32;
    // SAFETY: argv and envp are NUL-terminated arrays of C strings that live
    // for the rest of the run.
    unsafe { runtime_entry(argc, args.argv.as_ptr(), args.envp.as_ptr()) }
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
    time::init();
    apic::init(time::tsc_hz());
    let (heap_start, heap_end) = heap_range(info);
    // SAFETY: the range is RAM above the kernel image that nothing else uses.
    if !unsafe { mm::init(heap_start as usize, heap_end as usize) } {
        log!("no usable RAM for the heap ({heap_start:#x}..{heap_end:#x})");
        arch::exit_vm(EXIT_KERNEL_FAULT);
    }
    if !sched::init() {
        log!("no memory for the boot thread's TLS");
        arch::exit_vm(EXIT_KERNEL_FAULT);
    }
    let cmdline = command_line(info);
    log!(
        "booting: {} MiB heap, TSC {} MHz, cmdline {:?}",
        (heap_end - heap_start) >> 20,
        time::tsc_hz() / 1_000_000,
        cmdline
    );
    net::init(&cmdline);
    let args = alloc::boxed::Box::leak(alloc::boxed::Box::new(program_args(&cmdline)));
    if sched::spawn(main_thread, args as *const ProgramArgs as usize, MAIN_STACK).is_none() {
        log!(
            "not enough memory for the main thread's {} KiB stack",
            MAIN_STACK >> 10
        );
        arch::exit_vm(EXIT_KERNEL_FAULT);
    }
    sched::block(None);
    unreachable!("the boot context was resumed")
}
