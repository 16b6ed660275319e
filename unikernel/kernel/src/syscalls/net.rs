//! Sockets: BSD-style calls over [`crate::net`]. Addresses are hermit's
//! `sockaddr_in` (a length byte, a family byte, port and address in network
//! order) and `sockaddr_in6`. TCP and UDP over IPv4 and IPv6; a socket of
//! either family bound to a port answers over both.

use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address, Ipv6Address};

use super::errno::{EAFNOSUPPORT, EINPROGRESS, EINVAL, ENOTSOCK, EOPNOTSUPP};
use super::{ret, ret_size};
use crate::fd::{self, Direction, Kind, Object};
use crate::net::{TcpSocket, UdpSocket};

const AF_INET: i32 = 3;
const AF_INET6: i32 = 1;
const SOCK_STREAM: i32 = 1;
const SOCK_DGRAM: i32 = 2;
const SOCK_NONBLOCK: i32 = 0o4000;
const SOCK_CLOEXEC: i32 = 0o40000;
const SHUT_WR: i32 = 1;
const SHUT_RDWR: i32 = 2;
const SOCKADDR_IN_LEN: u32 = 16;
const SOCKADDR_IN6_LEN: u32 = 28;
const SOL_SOCKET: i32 = 4095;
const SO_SNDTIMEO: i32 = 0x1005;
const SO_RCVTIMEO: i32 = 0x1006;
const SO_ERROR: i32 = 0x1007;
const IPPROTO_TCP: i32 = 6;
const TCP_NODELAY: i32 = 1;

/// Reads the port of a `sockaddr_in`/`sockaddr_in6` (the two share the layout
/// of their first four bytes).
fn port_of(addr: *const u8, len: u32) -> Result<u16, i32> {
    if addr.is_null() || len < 4 {
        return Err(EINVAL);
    }
    // SAFETY: the caller passes `len` >= 4 readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(addr, 4) };
    match i32::from(bytes[1]) {
        AF_INET | AF_INET6 => Ok(u16::from_be_bytes([bytes[2], bytes[3]])),
        _ => Err(EAFNOSUPPORT),
    }
}

/// Reads a `sockaddr_in` or `sockaddr_in6`; an IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is taken as the IPv4 address.
fn endpoint_of(addr: *const u8, len: u32) -> Result<IpEndpoint, i32> {
    let port = port_of(addr, len)?;
    // SAFETY: `len` >= 4 readable bytes, per the caller.
    let family = i32::from(unsafe { *addr.add(1) });
    let needed = if family == AF_INET { 8 } else { 24 };
    if len < needed {
        return Err(EINVAL);
    }
    // SAFETY: `len` >= `needed` readable bytes, per the caller.
    let bytes = unsafe { core::slice::from_raw_parts(addr, needed as usize) };
    let ip: IpAddress = if family == AF_INET {
        Ipv4Address::new(bytes[4], bytes[5], bytes[6], bytes[7]).into()
    } else {
        let octets: [u8; 16] = bytes[8..24].try_into().map_err(|_| EINVAL)?;
        let v6 = Ipv6Address::from(octets);
        v6.to_ipv4_mapped().map_or(v6.into(), IpAddress::from)
    };
    Ok(IpEndpoint::new(ip, port))
}

/// Writes `endpoint` as a `sockaddr_in` or `sockaddr_in6` into `addr` (if
/// non-null), at most `*len` bytes; `*len` becomes the full length.
fn write_sockaddr(endpoint: IpEndpoint, addr: *mut u8, len: *mut u32) {
    if addr.is_null() || len.is_null() {
        return;
    }
    let mut raw = [0u8; SOCKADDR_IN6_LEN as usize];
    raw[2..4].copy_from_slice(&endpoint.port.to_be_bytes());
    let full = match endpoint.addr {
        IpAddress::Ipv4(ip) => {
            raw[1] = AF_INET as u8;
            raw[4..8].copy_from_slice(&ip.octets());
            SOCKADDR_IN_LEN
        }
        IpAddress::Ipv6(ip) => {
            raw[1] = AF_INET6 as u8;
            raw[8..24].copy_from_slice(&ip.octets());
            SOCKADDR_IN6_LEN
        }
    };
    raw[0] = full as u8;
    // SAFETY: `len` says how many bytes `addr` holds; we write at most that.
    unsafe {
        let n = (*len).min(full) as usize;
        core::ptr::copy_nonoverlapping(raw.as_ptr(), addr, n);
        *len = full;
    }
}

fn with_tcp<R>(fd: i32, f: impl FnOnce(&mut TcpSocket) -> Result<R, i32>) -> Result<R, i32> {
    fd::with(fd, |o| match &mut o.kind {
        Kind::Tcp(s) => f(s),
        _ => Err(ENOTSOCK),
    })
}

/// Checks that `fd` is a socket of either kind.
fn check_socket(fd: i32) -> Result<i32, i32> {
    fd::with(fd, |o| match o.kind {
        Kind::Tcp(_) | Kind::Udp(_) => Ok(0),
        _ => Err(ENOTSOCK),
    })
}

/// Creates a socket: `SOCK_STREAM` (TCP) or `SOCK_DGRAM` (UDP), in `AF_INET`
/// or `AF_INET6`.
#[unsafe(no_mangle)]
pub extern "C" fn sys_socket(domain: i32, type_: i32, _protocol: i32) -> i32 {
    if domain != AF_INET && domain != AF_INET6 {
        return ret(Err(EAFNOSUPPORT));
    }
    let kind = match type_ & !(SOCK_NONBLOCK | SOCK_CLOEXEC) {
        SOCK_STREAM => Kind::Tcp(TcpSocket::new(domain == AF_INET6)),
        SOCK_DGRAM => Kind::Udp(UdpSocket::Unbound(domain == AF_INET6)),
        _ => return ret(Err(EOPNOTSUPP)),
    };
    ret(Ok(fd::insert(Object::new(
        kind,
        type_ & SOCK_NONBLOCK != 0,
    ))))
}

/// Binds a socket to the port in `name` (any local address).
#[unsafe(no_mangle)]
pub extern "C" fn sys_bind(fd: i32, name: *const u8, namelen: u32) -> i32 {
    ret(port_of(name, namelen)
        .and_then(|port| {
            fd::with(fd, |o| match &mut o.kind {
                Kind::Tcp(s) => s.bind(port),
                Kind::Udp(s) => s.bind(port),
                _ => Err(ENOTSOCK),
            })
        })
        .map(|()| 0))
}

/// Receives one datagram into `buf`; writes its sender to `addr`.
///
/// # Safety
/// `buf` must point to `len` writable bytes; `addr` is null or holds
/// `*addrlen` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_recvfrom(
    fd: i32,
    buf: *mut u8,
    len: usize,
    _flags: i32,
    addr: *mut u8,
    addrlen: *mut u32,
) -> isize {
    // SAFETY: the caller provides `len` writable bytes.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let received = fd::blocking(fd, Direction::Receive, |o| match &mut o.kind {
        Kind::Udp(s) => s.recv_from(buf),
        _ => Err(ENOTSOCK),
    });
    ret_size(received.map(|(n, from)| {
        write_sockaddr(from, addr, addrlen);
        n
    }))
}

/// Sends one datagram to `to`.
///
/// # Safety
/// `buf` must point to `len` readable bytes and `to` to `tolen`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_sendto(
    fd: i32,
    buf: *const u8,
    len: usize,
    _flags: i32,
    to: *const u8,
    tolen: u32,
) -> isize {
    // SAFETY: the caller provides `len` readable bytes.
    let buf = unsafe { core::slice::from_raw_parts(buf, len) };
    let sent = endpoint_of(to, tolen).and_then(|to| {
        fd::blocking(fd, Direction::Send, |o| match &mut o.kind {
            Kind::Udp(s) => s.send_to(buf, to),
            _ => Err(ENOTSOCK),
        })
    });
    ret_size(sent)
}

/// Makes a bound socket listen.
#[unsafe(no_mangle)]
pub extern "C" fn sys_listen(fd: i32, backlog: i32) -> i32 {
    ret(with_tcp(fd, |s| s.listen(backlog)).map(|()| 0))
}

/// Connects a TCP socket to the address in `name`: blocks until connected, or
/// returns `EINPROGRESS` for a non-blocking socket (whose `SO_ERROR` then tells
/// how the attempt ended once it polls writable).
#[unsafe(no_mangle)]
pub extern "C" fn sys_connect(fd: i32, name: *const u8, namelen: u32) -> i32 {
    let started = endpoint_of(name, namelen).and_then(|remote| {
        fd::with(fd, |o| match &mut o.kind {
            Kind::Tcp(s) => s.connect(remote).map(|()| o.nonblocking),
            _ => Err(EOPNOTSUPP),
        })
    });
    ret(match started {
        Ok(true) => Err(EINPROGRESS),
        Ok(false) => fd::blocking(fd, Direction::Send, |o| match &mut o.kind {
            Kind::Tcp(s) => s.finish_connect().map(|()| 0),
            _ => Err(ENOTSOCK),
        }),
        Err(e) => Err(e),
    })
}

/// Accepts a connection; writes the peer's address to `addr`.
#[unsafe(no_mangle)]
pub extern "C" fn sys_accept(fd: i32, addr: *mut u8, addrlen: *mut u32) -> i32 {
    let accepted = fd::blocking(fd, Direction::Receive, |o| match &mut o.kind {
        Kind::Tcp(s) => s.accept(),
        _ => Err(ENOTSOCK),
    });
    ret(accepted.map(|(stream, peer)| {
        write_sockaddr(peer, addr, addrlen);
        fd::insert(Object::new(Kind::Tcp(stream), false))
    }))
}

/// Receives up to `len` bytes.
///
/// # Safety
/// `buf` must point to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_recv(fd: i32, buf: *mut u8, len: usize, _flags: i32) -> isize {
    // SAFETY: forwarded from the caller.
    unsafe { super::io::sys_read(fd, buf, len) }
}

/// Sends up to `len` bytes.
///
/// # Safety
/// `buf` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_send(fd: i32, buf: *const u8, len: usize, _flags: i32) -> isize {
    // SAFETY: forwarded from the caller.
    unsafe { super::io::sys_write(fd, buf, len) }
}

/// Shuts down the sending side (`SHUT_WR`, `SHUT_RDWR`); `SHUT_RD` is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sys_shutdown(fd: i32, how: i32) -> i32 {
    ret(match how {
        SHUT_WR | SHUT_RDWR => with_tcp(fd, TcpSocket::shutdown_write).map(|()| 0),
        _ => with_tcp(fd, |_| Ok(0)),
    })
}

/// hermit's `timeval`, the value of `SO_RCVTIMEO` and `SO_SNDTIMEO`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Timeval {
    tv_sec: i64,
    tv_usec: i32,
}

/// The direction a timeout option sets, if `(level, optname)` is one.
fn timeout_option(level: i32, optname: i32) -> Option<Direction> {
    match (level, optname) {
        (SOL_SOCKET, SO_RCVTIMEO) => Some(Direction::Receive),
        (SOL_SOCKET, SO_SNDTIMEO) => Some(Direction::Send),
        _ => None,
    }
}

/// Sets `SO_RCVTIMEO` and `SO_SNDTIMEO` (a zero `timeval`: no timeout) and
/// `TCP_NODELAY`; accepts and ignores the other options (SO_REUSEADDR, ...).
///
/// # Safety
/// `optval` holds `optlen` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_setsockopt(
    fd: i32,
    level: i32,
    optname: i32,
    optval: *const u8,
    optlen: u32,
) -> i32 {
    if (level, optname) == (IPPROTO_TCP, TCP_NODELAY) {
        if optval.is_null() || (optlen as usize) < size_of::<i32>() {
            return ret(Err(EINVAL));
        }
        // SAFETY: `optlen` readable bytes, at least an `i32`, per the contract.
        let on = unsafe { optval.cast::<i32>().read_unaligned() } != 0;
        return ret(with_tcp(fd, |s| s.set_nodelay(on)).map(|()| 0));
    }
    let Some(direction) = timeout_option(level, optname) else {
        return ret(check_socket(fd));
    };
    if optval.is_null() || (optlen as usize) < size_of::<Timeval>() {
        return ret(Err(EINVAL));
    }
    // SAFETY: `optlen` readable bytes, at least a `Timeval`, per the contract.
    let value = unsafe { optval.cast::<Timeval>().read_unaligned() };
    let nanos = u64::try_from(value.tv_sec)
        .ok()
        .zip(u64::try_from(value.tv_usec).ok())
        .map(|(s, us)| s.saturating_mul(1_000_000_000).saturating_add(us * 1000));
    let Some(nanos) = nanos else {
        return ret(Err(EINVAL));
    };
    ret(fd::with(fd, |o| match o.kind {
        Kind::Tcp(_) | Kind::Udp(_) => {
            *o.timeout(direction) = (nanos > 0).then_some(nanos);
            Ok(0)
        }
        _ => Err(ENOTSOCK),
    }))
}

/// Reads a socket option: `SO_ERROR` is how a connection attempt ended (0 if
/// it has not failed), `SO_RCVTIMEO` and `SO_SNDTIMEO` the timeouts; every
/// other option reads as 0.
///
/// # Safety
/// `optval` must hold `*optlen` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_getsockopt(
    fd: i32,
    level: i32,
    optname: i32,
    optval: *mut u8,
    optlen: *mut u32,
) -> i32 {
    let value = fd::with(fd, |o| {
        let timeout = timeout_option(level, optname).map(|d| *o.timeout(d));
        match &o.kind {
            Kind::Tcp(s) if (level, optname) == (SOL_SOCKET, SO_ERROR) => {
                Ok(s.pending_error().to_ne_bytes().to_vec())
            }
            Kind::Tcp(_) | Kind::Udp(_) => Ok(match timeout {
                Some(t) => timeval_bytes(t.unwrap_or(0)),
                None => 0i32.to_ne_bytes().to_vec(),
            }),
            _ => Err(ENOTSOCK),
        }
    });
    ret(value.map(|bytes| {
        if !optval.is_null() && !optlen.is_null() {
            // SAFETY: per the contract.
            unsafe {
                let len = *optlen as usize;
                optval.write_bytes(0, len);
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), optval, len.min(bytes.len()));
            }
        }
        0
    }))
}

/// A timeout of `nanos` nanoseconds as a `timeval`'s bytes.
fn timeval_bytes(nanos: u64) -> alloc::vec::Vec<u8> {
    let value = Timeval {
        tv_sec: i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX),
        tv_usec: (nanos % 1_000_000_000 / 1000) as i32,
    };
    let mut bytes = alloc::vec![0u8; size_of::<Timeval>()];
    // SAFETY: `bytes` holds exactly one `Timeval`.
    unsafe { bytes.as_mut_ptr().cast::<Timeval>().write_unaligned(value) };
    bytes
}

/// Writes the socket's own address (`getsockname`): a connection's local end,
/// else the bound port on the unspecified address of its family.
///
/// # Safety
/// `addr` holds `*addrlen` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_getsockname(fd: i32, addr: *mut u8, addrlen: *mut u32) -> i32 {
    let local = fd::with(fd, |o| match &o.kind {
        Kind::Tcp(s) => s.local_endpoint(),
        Kind::Udp(s) => s.local_endpoint(),
        _ => Err(ENOTSOCK),
    });
    ret(local.and_then(|endpoint| sockaddr_out(endpoint, addr, addrlen)))
}

/// Writes a connected socket's peer address (`getpeername`).
///
/// # Safety
/// `addr` holds `*addrlen` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_getpeername(fd: i32, addr: *mut u8, addrlen: *mut u32) -> i32 {
    let peer = with_tcp(fd, |s| s.peer_endpoint());
    ret(peer.and_then(|endpoint| sockaddr_out(endpoint, addr, addrlen)))
}

/// Writes `endpoint` for a caller that must get it: `EINVAL` on null pointers.
fn sockaddr_out(endpoint: IpEndpoint, addr: *mut u8, addrlen: *mut u32) -> Result<i32, i32> {
    if addr.is_null() || addrlen.is_null() {
        return Err(EINVAL);
    }
    write_sockaddr(endpoint, addr, addrlen);
    Ok(0)
}

/// hermit's `addrinfo`.
#[repr(C)]
pub struct AddrInfo {
    /// Flags (unused).
    pub ai_flags: i32,
    /// Address family.
    pub ai_family: i32,
    /// Socket type.
    pub ai_socktype: i32,
    /// Protocol.
    pub ai_protocol: i32,
    /// Length of `ai_addr`.
    pub ai_addrlen: u32,
    /// Canonical name (always null).
    pub ai_canonname: *mut u8,
    /// The address.
    pub ai_addr: *mut [u8; SOCKADDR_IN6_LEN as usize],
    /// Next entry (always null: one address per name).
    pub ai_next: *mut AddrInfo,
}

/// `EAI_NONAME`: the name does not resolve.
const EAI_NONAME: i32 = 8;

/// Resolves `node` without DNS: numeric IPv4 and IPv6 addresses and `localhost`.
/// The port is left 0 (std sets it). Returns 0 or `EAI_NONAME`.
///
/// # Safety
/// `node` is null or a NUL-terminated string; `res` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_getaddrinfo(
    node: *const core::ffi::c_char,
    _service: *const core::ffi::c_char,
    _hints: *const AddrInfo,
    res: *mut *mut AddrInfo,
) -> i32 {
    if node.is_null() || res.is_null() {
        return EAI_NONAME;
    }
    // SAFETY: a NUL-terminated string per the contract.
    let name = unsafe { core::ffi::CStr::from_ptr(node) }
        .to_str()
        .unwrap_or("");
    let ip: IpAddress = match name {
        "localhost" => Ipv4Address::new(127, 0, 0, 1).into(),
        _ => match name.parse() {
            Ok(ip) => ip,
            Err(_) => return EAI_NONAME,
        },
    };
    let mut sockaddr = [0u8; SOCKADDR_IN6_LEN as usize];
    let mut len = SOCKADDR_IN6_LEN;
    write_sockaddr((ip, 0).into(), sockaddr.as_mut_ptr(), &mut len);
    let family = match ip {
        IpAddress::Ipv4(_) => AF_INET,
        IpAddress::Ipv6(_) => AF_INET6,
    };
    let info = alloc::boxed::Box::new(AddrInfo {
        ai_flags: 0,
        ai_family: family,
        ai_socktype: SOCK_STREAM,
        ai_protocol: 0,
        ai_addrlen: len,
        ai_canonname: core::ptr::null_mut(),
        ai_addr: alloc::boxed::Box::into_raw(alloc::boxed::Box::new(sockaddr)),
        ai_next: core::ptr::null_mut(),
    });
    // SAFETY: `res` is writable per the contract.
    unsafe { res.write(alloc::boxed::Box::into_raw(info)) };
    0
}

/// Frees a result of `sys_getaddrinfo`.
///
/// # Safety
/// `ai` must come from `sys_getaddrinfo` and not be freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_freeaddrinfo(ai: *mut AddrInfo) {
    if ai.is_null() {
        return;
    }
    // SAFETY: both boxes were leaked by `sys_getaddrinfo`.
    unsafe {
        let info = alloc::boxed::Box::from_raw(ai);
        drop(alloc::boxed::Box::from_raw(info.ai_addr));
    }
}
