//! File descriptors: reads, writes, close, flags, event counters and poll.
//! Descriptors 1 and 2 are the console; 0 reads as end of file; the others
//! are in [`crate::fd`].

use core::ffi::c_void;

use super::errno::{EBADF, EINVAL};
use super::{ret, ret_size};
use crate::fd::{self, Direction, EventFd, Kind, Object};
use crate::sched::Wake;
use crate::{console, time};

/// hermit's `iovec`.
#[repr(C)]
pub struct Iovec {
    /// Start of the buffer.
    pub base: *mut c_void,
    /// Length of the buffer.
    pub len: usize,
}

/// Reads from a descriptor of the table (a socket, an event counter, the disk).
fn read_object(fd: i32, buf: &mut [u8]) -> isize {
    ret_size(fd::blocking(fd, Direction::Receive, |o| {
        match &mut o.kind {
            Kind::Tcp(s) => s.recv(buf),
            Kind::Udp(s) => s.recv_from(buf).map(|(n, _)| n),
            Kind::Event(e) => e.read(buf),
            Kind::Disk(d) => d.read(buf),
        }
    }))
}

/// Writes to a descriptor of the table (a socket, an event counter, the disk).
fn write_object(fd: i32, buf: &[u8]) -> isize {
    ret_size(fd::blocking(fd, Direction::Send, |o| match &mut o.kind {
        Kind::Tcp(s) => s.send(buf),
        Kind::Udp(_) => Err(super::errno::ENOTCONN),
        Kind::Event(e) => e.write(buf),
        Kind::Disk(d) => d.write(buf),
    }))
}

fn write_fd(fd: i32, bytes: &[u8]) -> isize {
    match fd {
        1 | 2 => {
            console::write(bytes);
            bytes.len() as isize
        }
        0 => ret_size(Err(EBADF)),
        _ => write_object(fd, bytes),
    }
}

fn read_fd(fd: i32, buf: &mut [u8]) -> isize {
    match fd {
        0 => 0,
        1 | 2 => ret_size(Err(EBADF)),
        _ => read_object(fd, buf),
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
    write_fd(fd, bytes)
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
        let n = write_fd(fd, bytes);
        if n < 0 {
            return if total == 0 { n } else { total as isize };
        }
        total += n as usize;
        if (n as usize) < v.len {
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
    read_fd(fd, bytes)
}

/// Closes `fd` (a connection is closed gracefully in the background).
#[unsafe(no_mangle)]
pub extern "C" fn sys_close(fd: i32) -> i32 {
    match fd {
        0..=2 => 0,
        _ => ret(fd::remove(fd).map(|()| 0)),
    }
}

const F_GETFD: i32 = 1;
const F_SETFD: i32 = 2;
const F_GETFL: i32 = 3;
const F_SETFL: i32 = 4;
const O_NONBLOCK: i32 = 0o4000;

/// File descriptor flags: `F_GETFL`/`F_SETFL` read and set `O_NONBLOCK`;
/// `F_GETFD`/`F_SETFD` (close-on-exec) are accepted and mean nothing here.
#[unsafe(no_mangle)]
pub extern "C" fn sys_fcntl(fd: i32, cmd: i32, arg: i32) -> i32 {
    ret(fd::with(fd, |o| match cmd {
        F_GETFD | F_SETFD => Ok(0),
        F_GETFL => Ok(if o.nonblocking { O_NONBLOCK } else { 0 }),
        F_SETFL => {
            o.nonblocking = arg & O_NONBLOCK != 0;
            Ok(0)
        }
        _ => Err(EINVAL),
    }))
}

/// `FIONBIO`: set (`*argp != 0`) or clear non-blocking mode, as std's
/// `set_nonblocking` does on hermit.
const FIONBIO: i32 = 0x8008_667e_u32 as i32;

/// Device control: only `FIONBIO` (on any descriptor of the table).
///
/// # Safety
/// For `FIONBIO`, `argp` must point to a readable `i32`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_ioctl(fd: i32, cmd: i32, argp: *mut c_void) -> i32 {
    if cmd != FIONBIO || argp.is_null() {
        return ret(Err(EINVAL));
    }
    // SAFETY: per the contract.
    let on = unsafe { argp.cast::<i32>().read() } != 0;
    ret(fd::with(fd, |o| {
        o.nonblocking = on;
        Ok(0)
    }))
}

/// A second descriptor for the same open object (`try_clone`): both share its
/// state and flags; the object closes with its last descriptor.
#[unsafe(no_mangle)]
pub extern "C" fn sys_dup(fd: i32) -> i32 {
    ret(fd::dup(fd))
}

const EFD_SEMAPHORE: i16 = 0o1;
const EFD_NONBLOCK: i16 = 0o4000;

/// Creates an event counter starting at `initval`.
#[unsafe(no_mangle)]
pub extern "C" fn sys_eventfd(initval: u64, flags: i16) -> i32 {
    let event = EventFd::new(initval, flags & EFD_SEMAPHORE != 0);
    fd::insert(Object::new(Kind::Event(event), flags & EFD_NONBLOCK != 0))
}

/// hermit's `pollfd`.
#[repr(C)]
pub struct PollFd {
    /// The descriptor.
    pub fd: i32,
    /// Requested events.
    pub events: i16,
    /// Returned events.
    pub revents: i16,
}

const POLLIN: i16 = 0x1;
const POLLOUT: i16 = 0x4;
const POLLHUP: i16 = 0x10;
const POLLNVAL: i16 = 0x20;

fn revents(p: &PollFd) -> i16 {
    let Ok(ready) = fd::with(p.fd, |o| Ok(o.readiness())) else {
        return POLLNVAL;
    };
    let mut r = 0;
    if ready.readable {
        r |= POLLIN & p.events;
    }
    if ready.writable {
        r |= POLLOUT & p.events;
    }
    if ready.hung_up {
        r |= POLLHUP;
    }
    r
}

/// Waits until one of `fds` is ready or `timeout` ms pass (negative: no
/// limit); returns how many are ready.
///
/// # Safety
/// `fds` must point to `nfds` valid pollfds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_poll(fds: *mut PollFd, nfds: usize, timeout: i32) -> i32 {
    // SAFETY: the caller provides `nfds` pollfds.
    let fds = unsafe { core::slice::from_raw_parts_mut(fds, nfds) };
    let deadline = u64::try_from(timeout)
        .ok()
        .map(|ms| time::monotonic_ns().saturating_add(ms * 1_000_000));
    let mut timed_out = false;
    loop {
        crate::net::poll();
        let mut ready = 0;
        for p in fds.iter_mut() {
            p.revents = if p.fd < 0 { 0 } else { revents(p) };
            ready += i32::from(p.revents != 0);
        }
        if ready > 0 || timeout == 0 || timed_out {
            return ready;
        }
        timed_out = crate::net::wait(deadline) == Wake::TimedOut;
    }
}
