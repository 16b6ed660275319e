//! virtio over MMIO, through the `virtio-drivers` crate.
//!
//! Memory is identity-mapped, so the HAL hands out heap memory as DMA memory
//! and shares buffers by their own address.

use core::alloc::Layout;
use core::ptr::NonNull;

use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};

use crate::mm;

/// The kernel's glue for `virtio-drivers`.
pub struct KernelHal;

fn dma_layout(pages: usize) -> Layout {
    Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).expect("DMA layout")
}

// SAFETY: DMA memory comes zeroed from the heap, stays allocated until
// `dma_dealloc`, and physical addresses equal virtual ones.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let ptr = NonNull::new(mm::alloc(dma_layout(pages))).expect("out of DMA memory");
        // SAFETY: the block is `pages` pages long.
        unsafe { ptr.as_ptr().write_bytes(0, pages * PAGE_SIZE) };
        (ptr.as_ptr() as PhysAddr, ptr)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: `vaddr` came from `dma_alloc` with this many pages.
        unsafe { mm::free(vaddr.as_ptr(), dma_layout(pages)) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).expect("null MMIO address")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr().cast::<u8>() as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// The device type number in the virtio-mmio header at `base`, if there is
/// a header (its magic) and a device (a nonzero id). Read directly, because
/// dropping an `MmioTransport` resets its device: only the transport that is
/// kept may be made.
fn device_id(base: usize) -> Option<u32> {
    const MAGIC: u32 = 0x7472_6976;
    // SAFETY: the machine has a virtio-mmio register window at `base`,
    // identity-mapped; offsets 0 and 8 are its magic and device id.
    let (magic, id) = unsafe {
        (
            (base as *const u32).read_volatile(),
            ((base + 8) as *const u32).read_volatile(),
        )
    };
    (magic == MAGIC && id != 0).then_some(id)
}

/// Finds the first virtio-mmio transport whose device is of type `kind`,
/// with the address of its register window.
pub fn find(kind: DeviceType) -> Option<(MmioTransport<'static>, usize)> {
    crate::arch::virtio_mmio_windows()
        .filter(|&(base, _)| {
            device_id(base).and_then(|id| DeviceType::try_from(id).ok()) == Some(kind)
        })
        .find_map(|(base, size)| {
            let header = NonNull::new(base as *mut VirtIOHeader)?;
            // SAFETY: a virtio-mmio register window of `kind`, identity-mapped
            // and used by nothing else.
            unsafe { MmioTransport::new(header, size) }
                .ok()
                .map(|t| (t, base))
        })
}
