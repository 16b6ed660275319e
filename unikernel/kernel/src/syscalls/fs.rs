//! Files. The only file is the disk, `/dev/vda` (the first virtio-blk
//! device), opened as a raw byte range: programs read, write and seek it, and
//! `fstat` gives its size. A write that returned is durable (see
//! [`crate::drivers::block`]).

use core::ffi::{CStr, c_char};

use super::errno::{EINVAL, ENOENT};
use super::time::Timespec;
use super::{ret, ret_size};
use crate::drivers::block;
use crate::fd::{self, DiskFile, Kind, Object, Whence};

/// The disk's path.
pub const DISK_PATH: &CStr = c"/dev/vda";

const O_ACCMODE: i32 = 0o3;
const O_EXCL: i32 = 0o200;
const O_TRUNC: i32 = 0o1000;
const O_APPEND: i32 = 0o2000;
const S_IFBLK: u32 = 0o6_0000;
const SECTOR: i64 = 512;

/// hermit's `stat`.
#[repr(C)]
pub struct Stat {
    /// Device.
    pub st_dev: u64,
    /// Inode.
    pub st_ino: u64,
    /// Links.
    pub st_nlink: u64,
    /// Type and permissions.
    pub st_mode: u32,
    /// Owner.
    pub st_uid: u32,
    /// Group.
    pub st_gid: u32,
    /// Device number, for device files.
    pub st_rdev: u64,
    /// Size in bytes.
    pub st_size: i64,
    /// Preferred I/O size.
    pub st_blksize: i64,
    /// Size in 512-byte blocks.
    pub st_blocks: i64,
    /// Last access.
    pub st_atim: Timespec,
    /// Last modification.
    pub st_mtim: Timespec,
    /// Last status change.
    pub st_ctim: Timespec,
}

fn open(path: &CStr, flags: i32) -> Result<i32, i32> {
    if path != DISK_PATH || !block::present() {
        return Err(ENOENT);
    }
    // A device cannot be truncated, created exclusively or appended to.
    if flags & (O_TRUNC | O_EXCL | O_APPEND) != 0 || flags & O_ACCMODE == O_ACCMODE {
        return Err(EINVAL);
    }
    Ok(fd::insert(Object::new(Kind::Disk(DiskFile::new()), false)))
}

/// Opens `name`: only `/dev/vda`, the disk, exists.
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_open(name: *const c_char, flags: i32, _mode: i32) -> i32 {
    // SAFETY: the caller passes a C string.
    let path = unsafe { CStr::from_ptr(name) };
    ret(open(path, flags))
}

/// Moves the position of the disk file `fd`; returns the new position.
#[unsafe(no_mangle)]
pub extern "C" fn sys_lseek(fd: i32, offset: isize, whence: i32) -> isize {
    let whence = match whence {
        0 => Whence::Start,
        1 => Whence::Current,
        2 => Whence::End,
        _ => return ret_size(Err(EINVAL)),
    };
    ret_size(fd::with(fd, |o| match &mut o.kind {
        Kind::Disk(d) => d.seek(offset as i64, whence).map(|p| p as usize),
        _ => Err(super::errno::ESPIPE),
    }))
}

/// Describes the disk file `fd` (a block device of the disk's size).
///
/// # Safety
/// `stat` must point to writable memory for a `Stat`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_fstat(fd: i32, stat: *mut Stat) -> i32 {
    let is_disk = fd::with(fd, |o| Ok(matches!(o.kind, Kind::Disk(_))));
    ret(is_disk.and_then(|disk| {
        if !disk {
            return Err(EINVAL);
        }
        let size = block::size() as i64;
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: the caller provides a writable Stat.
        unsafe {
            stat.write(Stat {
                st_dev: 0,
                st_ino: 1,
                st_nlink: 1,
                st_mode: S_IFBLK | 0o600,
                st_uid: 0,
                st_gid: 0,
                st_rdev: 0,
                st_size: size,
                st_blksize: SECTOR,
                st_blocks: size / SECTOR,
                st_atim: zero,
                st_mtim: zero,
                st_ctim: zero,
            })
        };
        Ok(0)
    }))
}
