//! File descriptors: reads, writes and close. Descriptors 1 and 2 are the
//! console; 0 reads as end of file.

use core::ffi::c_void;

use super::errno::EBADF;
use super::ret_size;
use crate::console;

/// hermit's `iovec`.
#[repr(C)]
pub struct Iovec {
    /// Start of the buffer.
    pub base: *mut c_void,
    /// Length of the buffer.
    pub len: usize,
}

fn write_fd(fd: i32, bytes: &[u8]) -> Result<usize, i32> {
    match fd {
        1 | 2 => {
            console::write(bytes);
            Ok(bytes.len())
        }
        _ => Err(EBADF),
    }
}

fn read_fd(fd: i32, _buf: &mut [u8]) -> Result<usize, i32> {
    match fd {
        0 => Ok(0),
        _ => Err(EBADF),
    }
}

/// Writes `len` bytes from `buf` to `fd`.
///
/// # Safety
/// `buf` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_write(fd: i32, buf: *const u8, len: usize) -> isize {
    // SAFETY: the caller provides `len` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(buf, len) };
    ret_size(write_fd(fd, bytes))
}

/// Writes the `iovcnt` buffers of `iov` to `fd`, in order.
///
/// # Safety
/// `iov` must point to `iovcnt` valid iovecs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_writev(fd: i32, iov: *const Iovec, iovcnt: usize) -> isize {
    // SAFETY: the caller provides `iovcnt` iovecs, each valid.
    let iovs = unsafe { core::slice::from_raw_parts(iov, iovcnt) };
    let mut total = 0;
    for v in iovs {
        // SAFETY: as above.
        let bytes = unsafe { core::slice::from_raw_parts(v.base.cast::<u8>(), v.len) };
        match write_fd(fd, bytes) {
            Ok(n) => total += n,
            Err(e) if total == 0 => return ret_size(Err(e)),
            Err(_) => break,
        }
        if total < v.len {
            break;
        }
    }
    total as isize
}

/// Reads up to `len` bytes from `fd` into `buf`.
///
/// # Safety
/// `buf` must point to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_read(fd: i32, buf: *mut u8, len: usize) -> isize {
    // SAFETY: the caller provides `len` writable bytes.
    let bytes = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    ret_size(read_fd(fd, bytes))
}
