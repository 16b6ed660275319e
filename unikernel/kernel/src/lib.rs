//! kith-unikernel: the no_std library kernel that turns a Kith service into a
//! bootable VM image.
//!
//! A service is an ordinary std Rust program. Built for Rust's own unikernel
//! targets `x86_64-unknown-hermit` and `aarch64-unknown-hermit` (std comes
//! from `-Zbuild-std`), std calls the `sys_*` functions of the hermit ABI
//! instead of a libc. This crate provides those functions, so linking it into
//! the program yields an image that QEMU boots directly: a PVH ELF on x86_64
//! (`-M microvm` or q35, also Firecracker and cloud-hypervisor), an ELF for
//! `-M virt` on aarch64.
//!
//! Where it fits (ARCHITECTURE.md, row `unikernel/`): it depends on nothing of
//! Kith; services depend on it only when built for the hermit targets. The
//! image builder is `scripts/build-image.sh` (driven by `kith build`);
//! `examples/` holds the programs the tests boot.
//!
//! The layers, bottom up:
//! - [`arch`]: per architecture, the entry, exception handling, console,
//!   clocks, idle halt and context switch (x86_64: PVH, APIC, TSC; aarch64:
//!   device tree, GICv2, generic timer).
//! - [`mm`]: the heap (talc) over the RAM the boot loader reports.
//! - [`sched`]: cooperative threads on one CPU, each with its own TLS block.
//! - [`sync`]: the kernel's global cell and the futexes std's locks sit on.
//! - [`time`], [`console`]: clocks and the serial console.
//! - [`drivers`] and [`net`]: virtio-net under smoltcp, with BSD-style
//!   sockets; virtio-blk as one raw disk.
//! - [`fd`]: the descriptor table (sockets, event counters, the disk).
//! - [`syscalls`]: the `sys_*` ABI itself, one module per group.
//! - [`boot`]: the start common to both architectures.
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
