//! File descriptors: the table of open objects behind the descriptor
//! numbers std and mio pass in. 0, 1 and 2 are the console.

use alloc::collections::BTreeMap;

use crate::drivers::block;
use crate::net::{self, Readiness, TcpSocket, UdpSocket};
use crate::sync::Global;
use crate::syscalls::errno::{EAGAIN, EBADF, EINVAL};
use crate::time;

/// An event counter (`eventfd`), which mio uses to wake its poll loop.
pub struct EventFd {
    count: u64,
    semaphore: bool,
}

impl EventFd {
    /// A counter starting at `initial`; with `semaphore`, reads take 1.
    pub fn new(initial: u64, semaphore: bool) -> Self {
        Self {
            count: initial,
            semaphore,
        }
    }

    /// Takes the count (or 1) as 8 native-endian bytes; `EAGAIN` at 0.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, i32> {
        let out = buf.get_mut(..8).ok_or(EINVAL)?;
        if self.count == 0 {
            return Err(EAGAIN);
        }
        let value = if self.semaphore { 1 } else { self.count };
        self.count -= value;
        out.copy_from_slice(&value.to_ne_bytes());
        Ok(8)
    }

    /// Adds the 8-byte value in `buf` and wakes pollers.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, i32> {
        let bytes: [u8; 8] = buf.get(..8).and_then(|b| b.try_into().ok()).ok_or(EINVAL)?;
        self.count = self.count.saturating_add(u64::from_ne_bytes(bytes));
        net::notify();
        Ok(8)
    }
}

/// The disk opened as a file (`/dev/vda`): a position on it.
pub struct DiskFile {
    position: u64,
}

/// Where a seek counts from (`SEEK_SET`, `SEEK_CUR`, `SEEK_END`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Whence {
    /// From the start.
    Start,
    /// From the current position.
    Current,
    /// From the end.
    End,
}

impl DiskFile {
    /// The disk, positioned at its start.
    pub fn new() -> Self {
        Self { position: 0 }
    }

    /// Reads at the position and moves past what was read.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, i32> {
        let n = block::read_at(self.position, buf)?;
        self.position += n as u64;
        Ok(n)
    }

    /// Writes at the position (durably, see [`block`]) and moves past it.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, i32> {
        let n = block::write_at(self.position, buf)?;
        self.position += n as u64;
        Ok(n)
    }

    /// Moves the position; returns the new one.
    pub fn seek(&mut self, offset: i64, whence: Whence) -> Result<u64, i32> {
        let base = match whence {
            Whence::Start => 0,
            Whence::Current => self.position,
            Whence::End => block::size(),
        };
        self.position = base.checked_add_signed(offset).ok_or(EINVAL)?;
        Ok(self.position)
    }
}

impl Default for DiskFile {
    fn default() -> Self {
        Self::new()
    }
}

/// What a descriptor refers to.
pub enum Kind {
    /// An event counter.
    Event(EventFd),
    /// A TCP socket.
    Tcp(TcpSocket),
    /// A UDP socket.
    Udp(UdpSocket),
    /// The disk.
    Disk(DiskFile),
}

/// Which way a blocking call goes, for its timeout.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// Reading, receiving, accepting.
    Receive,
    /// Writing, sending, connecting.
    Send,
}

/// An open descriptor.
pub struct Object {
    /// What it refers to.
    pub kind: Kind,
    /// `O_NONBLOCK`: calls return `EAGAIN` instead of waiting.
    pub nonblocking: bool,
    /// How long a blocking call waits before it gives up with `EAGAIN`
    /// (`SO_RCVTIMEO`, `SO_SNDTIMEO`), in nanoseconds; `None`: for ever.
    pub timeouts: [Option<u64>; 2],
}

impl Object {
    /// A descriptor for `kind`, blocking unless `nonblocking`, with no timeouts.
    pub fn new(kind: Kind, nonblocking: bool) -> Self {
        Self {
            kind,
            nonblocking,
            timeouts: [None; 2],
        }
    }

    /// The timeout of calls going `direction`.
    pub fn timeout(&mut self, direction: Direction) -> &mut Option<u64> {
        &mut self.timeouts[direction as usize]
    }

    /// Readiness for `sys_poll`.
    pub fn readiness(&self) -> Readiness {
        match &self.kind {
            Kind::Event(e) => Readiness {
                readable: e.count > 0,
                writable: true,
                hung_up: false,
            },
            Kind::Tcp(s) => s.readiness(),
            Kind::Udp(s) => s.readiness(),
            Kind::Disk(_) => Readiness {
                readable: true,
                writable: true,
                hung_up: false,
            },
        }
    }
}

/// The descriptors and the open objects behind them: `dup` makes a second descriptor
/// for the same object (sharing its state and `O_NONBLOCK`), which is closed when its
/// last descriptor is.
struct Table {
    next: i32,
    next_object: u64,
    descriptors: BTreeMap<i32, u64>,
    objects: BTreeMap<u64, Shared>,
}

/// An open object and how many descriptors refer to it.
struct Shared {
    object: Object,
    descriptors: usize,
}

impl Table {
    fn add_descriptor(&mut self, object: u64) -> i32 {
        let fd = self.next;
        self.next += 1;
        self.descriptors.insert(fd, object);
        fd
    }
}

static TABLE: Global<Table> = Global::new(Table {
    next: 3,
    next_object: 0,
    descriptors: BTreeMap::new(),
    objects: BTreeMap::new(),
});

/// Opens `object` under a new descriptor.
pub fn insert(object: Object) -> i32 {
    TABLE.with(|t| {
        let id = t.next_object;
        t.next_object += 1;
        t.objects.insert(
            id,
            Shared {
                object,
                descriptors: 1,
            },
        );
        t.add_descriptor(id)
    })
}

/// A second descriptor for the object behind `fd`.
pub fn dup(fd: i32) -> Result<i32, i32> {
    TABLE.with(|t| {
        let id = *t.descriptors.get(&fd).ok_or(EBADF)?;
        t.objects.get_mut(&id).ok_or(EBADF)?.descriptors += 1;
        Ok(t.add_descriptor(id))
    })
}

/// Closes `fd`; the object goes when no other descriptor refers to it.
pub fn remove(fd: i32) -> Result<(), i32> {
    let last = TABLE.with(|t| {
        let id = t.descriptors.remove(&fd).ok_or(EBADF)?;
        let shared = t.objects.get_mut(&id).ok_or(EBADF)?;
        shared.descriptors -= 1;
        Ok::<_, i32>(if shared.descriptors == 0 {
            t.objects.remove(&id)
        } else {
            None
        })
    })?;
    drop(last);
    Ok(())
}

/// Runs `f` on the object behind `fd`.
pub fn with<R>(fd: i32, f: impl FnOnce(&mut Object) -> Result<R, i32>) -> Result<R, i32> {
    TABLE.with(|t| {
        let id = *t.descriptors.get(&fd).ok_or(EBADF)?;
        t.objects
            .get_mut(&id)
            .map_or(Err(EBADF), |s| f(&mut s.object))
    })
}

/// Runs `op` on `fd` until it stops returning `EAGAIN`, waiting for network
/// or event activity in between, unless the descriptor is non-blocking; past
/// the descriptor's timeout for `direction` it gives up with `EAGAIN`.
pub fn blocking<R>(
    fd: i32,
    direction: Direction,
    mut op: impl FnMut(&mut Object) -> Result<R, i32>,
) -> Result<R, i32> {
    let mut deadline = None;
    loop {
        let (result, nonblocking, timeout) =
            with(fd, |o| Ok((op(o), o.nonblocking, *o.timeout(direction))))?;
        match result {
            Err(EAGAIN) if !nonblocking => {
                let until = *deadline
                    .get_or_insert_with(|| timeout.map(|t| time::monotonic_ns().saturating_add(t)));
                if until.is_some_and(|d| time::monotonic_ns() >= d) {
                    return Err(EAGAIN);
                }
                net::wait(until);
            }
            other => return other,
        }
    }
}
