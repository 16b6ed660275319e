//! Memory: one heap (talc) over the largest RAM region the boot loader
//! reports. Memory is identity-mapped, so heap addresses are also physical
//! addresses (which the virtio driver relies on for DMA).

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use talc::DefaultBinning;
use talc::base::Talc;
use talc::source::Manual;

use crate::sync::Global;

static HEAP: Global<Talc<Manual, DefaultBinning>> = Global::new(Talc::new(Manual));

/// Hands the RAM in `[start, end)` to the heap; false if it is too small.
///
/// # Safety
/// The range must be RAM that nothing else uses, for the rest of the run.
pub unsafe fn init(start: usize, end: usize) -> bool {
    // SAFETY: the caller gives us exclusive use of the range.
    HEAP.with(|heap| unsafe { heap.claim(start as *mut u8, end - start) })
        .is_some()
}

/// Allocates memory for `layout`; null when out of memory.
pub fn alloc(layout: Layout) -> *mut u8 {
    // SAFETY: talc accepts any layout; a zero size is rounded up by talc.
    HEAP.with(|heap| unsafe { heap.allocate(layout) })
        .map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// Frees memory from [`alloc`].
///
/// # Safety
/// `ptr` must come from [`alloc`] or [`realloc`] with this `layout`.
pub unsafe fn free(ptr: *mut u8, layout: Layout) {
    // SAFETY: forwarded from the caller.
    HEAP.with(|heap| unsafe { heap.deallocate(ptr, layout) })
}

/// Resizes an allocation, in place when talc can, else by moving it.
///
/// # Safety
/// `ptr` must come from [`alloc`] or [`realloc`] with this `layout`, and
/// `new_size` must be nonzero.
pub unsafe fn realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    if HEAP.with(|heap| unsafe { heap.try_realloc_in_place(ptr, layout, new_size) }) {
        return ptr;
    }
    let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
        return ptr::null_mut();
    };
    let new = alloc(new_layout);
    if !new.is_null() {
        // SAFETY: both blocks are live and at least min(old, new) bytes long.
        unsafe {
            ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            free(ptr, layout);
        }
    }
    new
}
