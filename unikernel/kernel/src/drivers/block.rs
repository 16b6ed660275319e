//! The first virtio-blk device, as one byte-addressed disk.
//!
//! Requests are synchronous: a write returns once the device has completed
//! it and, when the device offers a write cache, flushed it. So a write that
//! returned survives the guest crashing and QEMU being killed (the data is in
//! the host's disk image), which is what an append-only pack needs from
//! `write` (std's `File::sync_all` always fails on hermit, so it cannot be
//! the durability point there).

use alloc::vec;

use virtio_drivers::device::blk::{SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::mmio::MmioTransport;

use super::virtio::{self, KernelHal};
use crate::log;
use crate::sync::Global;
use crate::syscalls::errno::{EINVAL, EIO, EROFS};

type Device = VirtIOBlk<KernelHal, MmioTransport<'static>>;

static DISK: Global<Option<Device>> = Global::new(None);

/// Brings up the first virtio-blk device, if there is one.
pub fn init() {
    let Some((transport, _)) = virtio::find(DeviceType::Block) else {
        return;
    };
    match Device::new(transport) {
        Ok(device) => {
            log!(
                "disk: {} KiB{}",
                device.capacity() * SECTOR_SIZE as u64 / 1024,
                if device.readonly() { ", read-only" } else { "" }
            );
            DISK.with(|d| *d = Some(device));
        }
        Err(e) => log!("virtio-blk: {e:?}"),
    }
}

/// Whether there is a disk.
pub fn present() -> bool {
    DISK.with(|d| d.is_some())
}

/// The disk's size in bytes (0 without a disk).
pub fn size() -> u64 {
    DISK.with(|d| d.as_ref().map_or(0, |d| d.capacity() * SECTOR_SIZE as u64))
}

/// The sectors a byte range touches: the first, and how many.
fn sectors(offset: u64, len: usize) -> (usize, usize) {
    let first = offset / SECTOR_SIZE as u64;
    let end = (offset + len as u64).div_ceil(SECTOR_SIZE as u64);
    (first as usize, (end - first) as usize)
}

/// Reads up to `buf.len()` bytes at `offset`; fewer at the end of the disk.
pub fn read_at(offset: u64, buf: &mut [u8]) -> Result<usize, i32> {
    let len = buf.len().min(size().saturating_sub(offset) as usize);
    if len == 0 {
        return Ok(0);
    }
    let (first, count) = sectors(offset, len);
    let mut bounce = vec![0u8; count * SECTOR_SIZE];
    DISK.with(|d| {
        d.as_mut()
            .ok_or(EIO)?
            .read_blocks(first, &mut bounce)
            .map_err(|_| EIO)
    })?;
    let skip = (offset % SECTOR_SIZE as u64) as usize;
    buf[..len].copy_from_slice(&bounce[skip..skip + len]);
    Ok(len)
}

/// Writes `buf` at `offset` (partial sectors are read, changed and written
/// back), then flushes; fewer bytes at the end of the disk.
pub fn write_at(offset: u64, buf: &[u8]) -> Result<usize, i32> {
    let len = buf.len().min(size().saturating_sub(offset) as usize);
    if len == 0 {
        return if buf.is_empty() { Ok(0) } else { Err(EINVAL) };
    }
    let (first, count) = sectors(offset, len);
    let mut bounce = vec![0u8; count * SECTOR_SIZE];
    let skip = (offset % SECTOR_SIZE as u64) as usize;
    DISK.with(|d| {
        let d = d.as_mut().ok_or(EIO)?;
        if d.readonly() {
            return Err(EROFS);
        }
        if skip != 0 || len % SECTOR_SIZE != 0 {
            d.read_blocks(first, &mut bounce).map_err(|_| EIO)?;
        }
        bounce[skip..skip + len].copy_from_slice(&buf[..len]);
        d.write_blocks(first, &bounce).map_err(|_| EIO)?;
        d.flush().map_err(|_| EIO)
    })?;
    Ok(len)
}
