//! Memory: std's global allocator (`System`) calls these.

use core::alloc::Layout;

use crate::mm;

/// Allocates `size` bytes aligned to `align`; null on failure.
#[unsafe(no_mangle)]
pub extern "C" fn sys_malloc(size: usize, align: usize) -> *mut u8 {
    Layout::from_size_align(size, align).map_or(core::ptr::null_mut(), mm::alloc)
}

/// Frees a block from `sys_malloc` or `sys_realloc`.
///
/// # Safety
/// `ptr` must come from `sys_malloc`/`sys_realloc` with this size and alignment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_free(ptr: *mut u8, size: usize, align: usize) {
    if let Ok(layout) = Layout::from_size_align(size, align) {
        // SAFETY: forwarded from the caller.
        unsafe { mm::free(ptr, layout) }
    }
}

/// Resizes a block, moving it if needed; null on failure (the old block stays).
///
/// # Safety
/// As for `sys_free`, and `new_size` must be nonzero.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_realloc(
    ptr: *mut u8,
    size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    match Layout::from_size_align(size, align) {
        // SAFETY: forwarded from the caller.
        Ok(layout) => unsafe { mm::realloc(ptr, layout, new_size) },
        Err(_) => core::ptr::null_mut(),
    }
}
