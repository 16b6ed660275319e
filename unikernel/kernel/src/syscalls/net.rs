//! Sockets: BSD-style calls over [`crate::net`]. Addresses are hermit's
//! `sockaddr_in` (a length byte, a family byte, port and address in network
//! order). TCP and UDP over IPv4.

use smoltcp::wire::IpEndpoint;

use super::errno::{EAFNOSUPPORT, EINVAL, ENOTSOCK, EOPNOTSUPP};
use super::{ret, ret_size};
use crate::fd::{self, Kind, Object};
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

/// Reads a `sockaddr_in` (IPv4 only: smoltcp runs IPv4 here).
fn endpoint_of(addr: *const u8, len: u32) -> Result<IpEndpoint, i32> {
    let port = port_of(addr, len)?;
    if len < 8 {
        return Err(EINVAL);
    }
    // SAFETY: `len` >= 8 readable bytes, per the caller.
    let bytes = unsafe { core::slice::from_raw_parts(addr, 8) };
    if i32::from(bytes[1]) != AF_INET {
        return Err(EAFNOSUPPORT);
    }
    let ip = smoltcp::wire::Ipv4Address::new(bytes[4], bytes[5], bytes[6], bytes[7]);
    Ok(IpEndpoint::new(ip.into(), port))
}

/// Writes `endpoint` as a `sockaddr_in` into `addr` (if non-null).
fn write_sockaddr(endpoint: IpEndpoint, addr: *mut u8, len: *mut u32) {
    if addr.is_null() || len.is_null() {
        return;
    }
    let mut raw = [0u8; SOCKADDR_IN_LEN as usize];
    raw[0] = SOCKADDR_IN_LEN as u8;
    raw[1] = AF_INET as u8;
    raw[2..4].copy_from_slice(&endpoint.port.to_be_bytes());
    let smoltcp::wire::IpAddress::Ipv4(ip) = endpoint.addr;
    raw[4..8].copy_from_slice(&ip.octets());
    // SAFETY: `len` says how many bytes `addr` holds; we write at most that.
    unsafe {
        let n = (*len).min(SOCKADDR_IN_LEN) as usize;
        core::ptr::copy_nonoverlapping(raw.as_ptr(), addr, n);
        *len = SOCKADDR_IN_LEN;
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
        SOCK_STREAM => Kind::Tcp(TcpSocket::new()),
        SOCK_DGRAM => Kind::Udp(UdpSocket::Unbound),
        _ => return ret(Err(EOPNOTSUPP)),
    };
    ret(Ok(fd::insert(Object {
        kind,
        nonblocking: type_ & SOCK_NONBLOCK != 0,
    })))
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
    let received = fd::blocking(fd, |o| match &mut o.kind {
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
        fd::blocking(fd, |o| match &mut o.kind {
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

/// Accepts a connection; writes the peer's address to `addr`.
#[unsafe(no_mangle)]
pub extern "C" fn sys_accept(fd: i32, addr: *mut u8, addrlen: *mut u32) -> i32 {
    let accepted = fd::blocking(fd, |o| match &mut o.kind {
        Kind::Tcp(s) => s.accept(),
        _ => Err(ENOTSOCK),
    });
    ret(accepted.map(|(stream, peer)| {
        write_sockaddr(peer, addr, addrlen);
        fd::insert(Object {
            kind: Kind::Tcp(stream),
            nonblocking: false,
        })
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

/// Accepts and ignores socket options (TCP_NODELAY, SO_REUSEADDR, ...).
#[unsafe(no_mangle)]
pub extern "C" fn sys_setsockopt(
    fd: i32,
    _level: i32,
    _optname: i32,
    _optval: *const u8,
    _optlen: u32,
) -> i32 {
    ret(check_socket(fd))
}

/// Reads a socket option: every option reads as 0 (no pending error).
///
/// # Safety
/// `optval` must hold `*optlen` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sys_getsockopt(
    fd: i32,
    _level: i32,
    _optname: i32,
    optval: *mut u8,
    optlen: *mut u32,
) -> i32 {
    ret(check_socket(fd).map(|_| {
        if !optval.is_null() && !optlen.is_null() {
            // SAFETY: per the contract.
            unsafe { optval.write_bytes(0, *optlen as usize) };
        }
        0
    }))
}

/// Writes the socket's own address (`getsockname`): a connection's local end,
/// else the bound port on `0.0.0.0`.
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
    pub ai_addr: *mut [u8; SOCKADDR_IN_LEN as usize],
    /// Next entry (always null: one address per name).
    pub ai_next: *mut AddrInfo,
}

/// `EAI_NONAME`: the name does not resolve.
const EAI_NONAME: i32 = 8;

/// Resolves `node` without DNS: numeric IPv4 addresses and `localhost`.
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
    let ip = match name {
        "localhost" => smoltcp::wire::Ipv4Address::new(127, 0, 0, 1),
        _ => match name.parse() {
            Ok(ip) => ip,
            Err(_) => return EAI_NONAME,
        },
    };
    let mut sockaddr = [0u8; SOCKADDR_IN_LEN as usize];
    let mut len = SOCKADDR_IN_LEN;
    write_sockaddr((ip, 0).into(), sockaddr.as_mut_ptr(), &mut len);
    let info = alloc::boxed::Box::new(AddrInfo {
        ai_flags: 0,
        ai_family: AF_INET,
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
