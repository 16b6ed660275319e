//! The boot path common to every architecture: heap, scheduler, network, then
//! std's `runtime_entry` on the program's main thread. The architecture's
//! entry (`arch::*::boot`) sets up the CPU and clocks and calls [`start`].

use alloc::ffi::CString;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_char;

use crate::drivers::block;
use crate::syscalls::process::EXIT_KERNEL_FAULT;
use crate::{arch, log, mm, net, sched};

unsafe extern "C" {
    fn runtime_entry(argc: i32, argv: *const *const c_char, env: *const *const c_char) -> !;
}

/// Stack of the program's main thread.
const MAIN_STACK: usize = 2 << 20;

/// The program's arguments and environment, as std's `runtime_entry` takes them.
struct ProgramArgs {
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
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

/// Starts the kernel on the RAM in `[heap_start, heap_end)`, with the command
/// line `cmdline` returns once the heap works.
pub fn start(heap_start: usize, heap_end: usize, cmdline: impl FnOnce() -> String) -> ! {
    // SAFETY: the architecture's entry passes RAM above the kernel image that
    // nothing else uses.
    if !unsafe { mm::init(heap_start, heap_end) } {
        log!("no usable RAM for the heap ({heap_start:#x}..{heap_end:#x})");
        arch::exit_vm(EXIT_KERNEL_FAULT);
    }
    if !sched::init() {
        log!("no memory for the boot thread's TLS");
        arch::exit_vm(EXIT_KERNEL_FAULT);
    }
    let cmdline = cmdline();
    log!(
        "booting: {} MiB heap, cmdline {:?}",
        (heap_end - heap_start) >> 20,
        cmdline
    );
    net::init(&cmdline);
    block::init();
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
