//! kith-unikernel: the no_std library kernel that turns a Kith service into a
//! bootable VM image.
//!
//! A service is an ordinary std Rust program. Built for Rust's own unikernel
//! target `x86_64-unknown-hermit` (std comes from `-Zbuild-std`), std calls the
//! `sys_*` functions of the hermit ABI instead of a libc. This crate provides
//! those functions, so linking it into the program yields a PVH ELF image that
//! QEMU (`-M microvm` or q35), Firecracker or cloud-hypervisor boot directly.
//!
//! Where it fits (ARCHITECTURE.md, row `unikernel/`): it depends on nothing of
//! Kith; services depend on it only when built for the hermit target. The
//! image builder is `scripts/build-image.sh`; `examples/` holds the programs
//! the tests boot.
//!
//! The layers, bottom up:
//! - [`arch`]: the PVH entry, descriptor tables, port I/O, TSC, APIC timer and
//!   context switch.
//! - [`mm`]: the heap (talc) over the RAM the boot loader reports.
//! - [`sched`]: cooperative threads on one CPU, each with its own TLS block.
//! - [`sync`]: the kernel's global cell and the futexes std's locks sit on.
//! - [`time`], [`console`]: clocks and the serial console.
//! - [`drivers`] and [`net`]: virtio-net under smoltcp, with BSD-style sockets.
//! - [`fd`]: the descriptor table (sockets, event counters).
//! - [`syscalls`]: the `sys_*` ABI itself, one module per group.
//!
//! The kernel is cooperative: a thread runs until it blocks (futex, join,
//! sleep, poll, a blocking socket call) or yields. Interrupts stay disabled
//! except while the idle CPU halts; when no thread is ready the kernel polls
//! the network and its timers, halting until the next deadline or tick.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod arch;
pub mod console;
pub mod drivers;
pub mod fd;
pub mod mm;
pub mod net;
pub mod sched;
pub mod sync;
pub mod syscalls;
pub mod time;

pub mod boot;
