//! The `-M virt` boot path: from `entry`'s jump to the kernel's common start
//! ([`crate::boot::start`]), with the RAM, command line and devices the
//! device tree lists.

use alloc::string::{String, ToString};
use core::sync::atomic::{AtomicUsize, Ordering};

use fdt::Fdt;

use super::{clock, gic, serial};
use crate::log;
use crate::syscalls::process::EXIT_KERNEL_FAULT;

unsafe extern "C" {
    static __kernel_end: u8;
}

/// Where QEMU puts the device tree of an ELF kernel: the start of RAM.
const RAM_START_DTB: usize = 0x4000_0000;
/// The end of the identity map built at entry (8 GiB).
const MAPPED_LIMIT: usize = 8 << 30;

/// The device tree's address, once found.
static DEVICE_TREE: AtomicUsize = AtomicUsize::new(0);

fn device_tree() -> Option<Fdt<'static>> {
    let addr = DEVICE_TREE.load(Ordering::Relaxed);
    // SAFETY: `addr` is a checked device tree that stays in place (below the
    // kernel image, outside the heap) for the whole run.
    (addr != 0).then(|| unsafe { Fdt::from_ptr(addr as *const u8) }.ok())?
}

/// Finds the device tree: at `x0` when the boot loader passed it, else at the
/// start of RAM.
fn find_device_tree(x0: usize) -> Option<Fdt<'static>> {
    [x0, RAM_START_DTB].into_iter().find_map(|addr| {
        // SAFETY: both candidates are mapped; `from_ptr` checks the magic and
        // the header before trusting the sizes.
        let fdt = (addr != 0).then(|| unsafe { Fdt::from_ptr(addr as *const u8) }.ok())??;
        DEVICE_TREE.store(addr, Ordering::Relaxed);
        Some(fdt)
    })
}

/// The first register window of the first node compatible with `names`.
fn device(fdt: &Fdt<'_>, names: &[&str]) -> Option<(usize, usize)> {
    let region = fdt.find_compatible(names)?.reg()?.next()?;
    Some((region.starting_address as usize, region.size.unwrap_or(0)))
}

/// The virtio-mmio transports in the device tree, as (address, size).
pub fn virtio_mmio_windows() -> impl Iterator<Item = (usize, usize)> {
    let fdt = device_tree();
    fdt.into_iter().flat_map(|fdt| {
        fdt.all_nodes()
            .filter(|node| {
                node.compatible()
                    .is_some_and(|c| c.all().any(|name| name == "virtio,mmio"))
            })
            .filter_map(|node| {
                let region = node.reg()?.next()?;
                Some((
                    region.starting_address as usize,
                    region.size.unwrap_or(0x200),
                ))
            })
            .collect::<alloc::vec::Vec<_>>()
    })
}

/// The GIC interrupt id of the device whose registers start at `window`:
/// its `interrupts` property's SPI number (cells: type 0 = SPI, number,
/// flags) plus 32.
pub fn device_spi(window: usize) -> Option<u32> {
    let fdt = device_tree()?;
    let node = fdt.all_nodes().find(|node| {
        node.reg()
            .and_then(|mut r| r.next())
            .is_some_and(|r| r.starting_address as usize == window)
    })?;
    let cells = node.property("interrupts")?.value;
    let cell = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(
            cells.get(i * 4..i * 4 + 4)?.try_into().ok()?,
        ))
    };
    (cell(0)? == 0).then_some(cell(1)? + 32)
}

/// The RAM range `[start, end)` above the kernel image.
fn heap_range(fdt: &Fdt<'_>) -> Option<(usize, usize)> {
    let kernel_end = (&raw const __kernel_end as usize).next_multiple_of(4096);
    fdt.memory()
        .regions()
        .filter_map(|r| {
            let start = r.starting_address as usize;
            let end = (start + r.size?).min(MAPPED_LIMIT);
            (start..end)
                .contains(&kernel_end)
                .then_some((kernel_end, end))
        })
        .next()
}

/// Sets up the console, clocks and GIC the device tree lists.
fn init_devices(fdt: &Fdt<'_>) {
    if let Some((uart, _)) = device(fdt, &["arm,pl011"]) {
        serial::init(uart);
    }
    clock::init(device(fdt, &["arm,pl031"]).map(|(rtc, _)| rtc));
    let gic = fdt.find_compatible(&["arm,cortex-a15-gic", "arm,gic-400"]);
    let mut regions = gic.and_then(|g| g.reg()).into_iter().flatten();
    match (regions.next(), regions.next()) {
        (Some(dist), Some(cpu)) => gic::init(
            dist.starting_address as usize,
            cpu.starting_address as usize,
        ),
        _ => log!("no GICv2 in the device tree: an idle CPU will spin"),
    }
}

/// The kernel's Rust entry, called by `_start` on the boot stack with the
/// boot loader's `x0`.
#[unsafe(no_mangle)]
extern "C" fn kith_kernel_start(x0: usize) -> ! {
    let Some(fdt) = find_device_tree(x0) else {
        log!("no device tree at x0 ({x0:#x}) or {RAM_START_DTB:#x}");
        super::exit_vm(EXIT_KERNEL_FAULT);
    };
    init_devices(&fdt);
    let Some((heap_start, heap_end)) = heap_range(&fdt) else {
        log!("no RAM above the kernel image in the device tree");
        super::exit_vm(EXIT_KERNEL_FAULT);
    };
    crate::boot::start(heap_start, heap_end, || {
        fdt.chosen()
            .bootargs()
            .map_or_else(String::new, ToString::to_string)
    })
}
