//! The network: smoltcp over virtio-net, and the TCP and UDP sockets behind
//! the socket calls.
//!
//! The addresses come from the kernel command line: `ip=10.0.2.15/24
//! gw=10.0.2.2` and `ip6=fec0::15/64 gw6=fec0::2`, whose defaults match QEMU's
//! user-mode network; `ip=dhcp` asks a DHCP server instead (as on a cloud VM),
//! and `ip6=off` leaves IPv6 out. Sockets bound to a port take connections and
//! datagrams over both IPv4 and IPv6. smoltcp is
//! polled whenever the scheduler runs, and every poll that changes a socket
//! wakes the threads waiting in [`wait`] (blocking socket calls, `sys_poll`).
//! A listening socket is a pool of smoltcp sockets on one port: a few wait
//! in `Listen` state, each connection attempt takes one, and the pool is
//! topped up between received packets (up to the backlog), so a burst of
//! connections queues like a backlog instead of meeting resets. `accept`
//! takes an established connection out of the pool. `connect` opens a
//! connection from an ephemeral port; it is a stream once the handshake is
//! done (or an error, refused or timed out, for `SO_ERROR` to report).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::{AnySocket, dhcpv4, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpCidr, IpEndpoint, Ipv4Address, Ipv4Cidr, Ipv6Address,
    Ipv6Cidr,
};
use virtio_drivers::device::net::{TxBuffer, VirtIONet};
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::mmio::MmioTransport;

use crate::drivers::virtio::{self, KernelHal};
use crate::sched::{self, Tid, Wake};
use crate::sync::Global;
use crate::syscalls::errno::{
    EADDRINUSE, EAGAIN, ECONNREFUSED, EINVAL, EISCONN, EMSGSIZE, ENETDOWN, ENOTCONN, EPIPE,
    ETIMEDOUT,
};
use crate::{log, time};

const QUEUE_SIZE: usize = 16;
const RX_BUFFER_LEN: usize = 2048;
const SOCKET_BUFFER: usize = 64 * 1024;
const MAX_BACKLOG: usize = 128;
/// Datagrams a UDP socket queues each way.
const UDP_QUEUE: usize = 64;
/// First port an unbound UDP socket sends from.
const EPHEMERAL_PORTS: u16 = 49152;
/// Sockets each listener keeps in `Listen` state, ready for new connections.
const SPARE_LISTENERS: usize = 2;
/// How long a connection attempt waits for the peer's answer.
const CONNECT_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(30);

type NetDevice = VirtIONet<KernelHal, MmioTransport<'static>, QUEUE_SIZE>;

/// smoltcp's view of the virtio-net device.
struct Nic(NetDevice);

/// A received frame, already copied out of the device's buffer.
struct Rx(Vec<u8>);

/// Permission to send one frame.
struct Tx<'a>(&'a mut NetDevice);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        if let Err(e) = self.0.send(TxBuffer::from(&frame[..])) {
            log!("virtio-net: send failed: {e:?}");
        }
        result
    }
}

impl Device for Nic {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx<'_>)> {
        if !self.0.can_recv() {
            return None;
        }
        let buffer = self.0.receive().ok()?;
        let frame = buffer.packet().to_vec();
        if let Err(e) = self.0.recycle_rx_buffer(buffer) {
            log!("virtio-net: recycle failed: {e:?}");
        }
        Some((Rx(frame), Tx(&mut self.0)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        self.0.can_send().then_some(Tx(&mut self.0))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

struct Stack {
    iface: Interface,
    nic: Nic,
    sockets: SocketSet<'static>,
    /// Closed streams still sending their last data and FIN.
    closing: Vec<SocketHandle>,
    /// The listening pools, by port.
    listeners: BTreeMap<u16, Pool>,
    /// The next ephemeral port to try for an unbound UDP socket or a connection.
    next_ephemeral: u16,
    /// The DHCP client, when the IPv4 address comes from `ip=dhcp`.
    dhcp: Option<SocketHandle>,
}

/// The smoltcp sockets of one listening port: listening, connecting, or
/// connected and waiting for `accept`.
struct Pool {
    sockets: Vec<SocketHandle>,
    backlog: usize,
}

static STACK: Global<Option<Stack>> = Global::new(None);
/// Whether the NIC's interrupts wake an idle CPU (else it must be polled).
static NIC_WAKES_CPU: AtomicBool = AtomicBool::new(false);
static WAITERS: Global<Vec<Tid>> = Global::new(Vec::new());

fn now() -> Instant {
    Instant::from_micros((time::monotonic_ns() / 1000) as i64)
}

/// The interface's addresses, from the kernel command line.
struct Addresses {
    /// The IPv4 address and gateway; `None` when DHCP provides them.
    ipv4: Option<(Ipv4Cidr, Ipv4Address)>,
    /// The IPv6 address and gateway; `None` with `ip6=off`.
    ipv6: Option<(Ipv6Cidr, Ipv6Address)>,
}

impl Addresses {
    /// Reads `ip=A.B.C.D/N|dhcp`, `gw=A.B.C.D`, `ip6=ADDR/N|off` and `gw6=ADDR`
    /// from the kernel's part of the command line (before `--`).
    fn parse(cmdline: &str) -> Self {
        let mut v4 = Some(Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24));
        let mut gw4 = Ipv4Address::new(10, 0, 2, 2);
        let mut v6 = Some(Ipv6Cidr::new(
            Ipv6Address::new(0xfec0, 0, 0, 0, 0, 0, 0, 0x15),
            64,
        ));
        let mut gw6 = Ipv6Address::new(0xfec0, 0, 0, 0, 0, 0, 0, 2);
        let kernel_args = cmdline.split("--").next().unwrap_or("");
        for arg in kernel_args.split_whitespace() {
            let Some((key, value)) = arg.split_once('=') else {
                continue;
            };
            let understood = match (key, value) {
                ("ip", "dhcp") => {
                    v4 = None;
                    true
                }
                ("ip6", "off") => {
                    v6 = None;
                    true
                }
                ("ip", v) => v.parse().map(|c| v4 = Some(c)).is_ok(),
                ("gw", v) => v.parse().map(|g| gw4 = g).is_ok(),
                ("ip6", v) => v.parse().map(|c| v6 = Some(c)).is_ok(),
                ("gw6", v) => v.parse().map(|g| gw6 = g).is_ok(),
                _ => true,
            };
            if !understood {
                log!("ignoring bad {arg}");
            }
        }
        Self {
            ipv4: v4.map(|c| (c, gw4)),
            ipv6: v6.map(|c| (c, gw6)),
        }
    }
}

/// Brings up the first virtio-net device, if there is one.
pub fn init(cmdline: &str) {
    let Some((transport, window)) = virtio::find(DeviceType::Network) else {
        return;
    };
    let device = match NetDevice::new(transport, RX_BUFFER_LEN) {
        Ok(d) => d,
        Err(e) => return log!("virtio-net: {e:?}"),
    };
    let mac = EthernetAddress(device.mac_address());
    let mut nic = Nic(device);
    let mut config = Config::new(HardwareAddress::Ethernet(mac));
    config.random_seed = time::monotonic_ns();
    let mut iface = Interface::new(config, &mut nic, now());
    let addresses = Addresses::parse(cmdline);
    if let Some((cidr, gateway)) = addresses.ipv4 {
        set_ipv4(&mut iface, Some((cidr, Some(gateway))));
    }
    if let Some((cidr, gateway)) = addresses.ipv6 {
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(cidr.into());
        });
        let _ = iface.routes_mut().add_default_ipv6_route(gateway);
        log!("net: {cidr} via {gateway}");
    }
    let mut sockets = SocketSet::new(Vec::new());
    let dhcp = addresses
        .ipv4
        .is_none()
        .then(|| sockets.add(dhcpv4::Socket::new()));
    let interrupts = crate::arch::enable_device_interrupt(window);
    NIC_WAKES_CPU.store(interrupts, Ordering::Relaxed);
    log!(
        "net: {mac}{}{}",
        if dhcp.is_some() { ", IPv4 by DHCP" } else { "" },
        if interrupts { ", interrupts" } else { "" }
    );
    STACK.with(|s| {
        *s = Some(Stack {
            iface,
            nic,
            sockets,
            closing: Vec::new(),
            listeners: BTreeMap::new(),
            next_ephemeral: EPHEMERAL_PORTS,
            dhcp,
        })
    });
}

/// Replaces the interface's IPv4 address and default route (`None`: removes them).
fn set_ipv4(iface: &mut Interface, config: Option<(Ipv4Cidr, Option<Ipv4Address>)>) {
    let had_address = iface.ipv4_addr().is_some();
    iface.update_ip_addrs(|addrs| {
        addrs.retain(|a| !matches!(a, IpCidr::Ipv4(_)));
        if let Some((cidr, _)) = config {
            let _ = addrs.push(cidr.into());
        }
    });
    iface.routes_mut().remove_default_ipv4_route();
    match config {
        Some((cidr, Some(gateway))) => {
            let _ = iface.routes_mut().add_default_ipv4_route(gateway);
            log!("net: {cidr} via {gateway}");
        }
        Some((cidr, None)) => log!("net: {cidr}, no gateway"),
        None if had_address => log!("net: IPv4 address lost"),
        None => {}
    }
}

/// Moves packets between the device and the sockets, and wakes waiters when
/// a socket changed.
pub fn poll() {
    let changed = STACK.with(|s| {
        let Some(stack) = s else { return false };
        stack.poll()
    });
    if changed {
        notify();
    }
}

/// Whether a received packet wakes a halted CPU (the NIC's interrupt is
/// wired), so an idle CPU need not wake up to poll it.
pub fn wakes_cpu() -> bool {
    NIC_WAKES_CPU.load(Ordering::Relaxed)
}

/// When smoltcp next needs polling for its own timers (retransmissions,
/// delayed ACKs), in nanoseconds since boot.
pub fn poll_at() -> Option<u64> {
    STACK.with(|s| {
        let stack = s.as_mut()?;
        let at = stack.iface.poll_at(now(), &stack.sockets)?;
        Some(u64::try_from(at.total_micros()).unwrap_or(0) * 1000)
    })
}

/// Wakes every thread waiting for network (or event fd) activity.
pub fn notify() {
    let waiters = WAITERS.with(core::mem::take);
    for tid in waiters {
        sched::wake(tid);
    }
}

/// Blocks until network activity or `deadline` (monotonic nanoseconds).
pub fn wait(deadline: Option<u64>) -> Wake {
    let me = sched::current();
    WAITERS.with(|w| w.push(me));
    let wake = sched::block(deadline);
    WAITERS.with(|w| w.retain(|&t| t != me));
    wake
}

impl Stack {
    fn reap_closing(&mut self) {
        let sockets = &mut self.sockets;
        self.closing.retain(|&h| {
            let done = matches!(
                sockets.get::<tcp::Socket>(h).state(),
                tcp::State::Closed | tcp::State::TimeWait
            );
            if done {
                sockets.remove(h);
            }
            !done
        });
    }

    /// Runs smoltcp: received packets one at a time (topping the listening
    /// pools up in between), then timers and sending. True if a socket may
    /// have changed.
    fn poll(&mut self) -> bool {
        let now = now();
        let mut changed = false;
        self.nic.0.ack_interrupt();
        loop {
            self.top_up_listeners();
            match self
                .iface
                .poll_ingress_single(now, &mut self.nic, &mut self.sockets)
            {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed => {}
                PollIngressSingleResult::SocketStateChanged => changed = true,
            }
        }
        changed |= self.iface.poll(now, &mut self.nic, &mut self.sockets)
            == PollResult::SocketStateChanged;
        self.apply_dhcp();
        self.reap_closing();
        changed
    }

    /// Takes on the address the DHCP client was given, or drops a lost one.
    fn apply_dhcp(&mut self) {
        let Some(handle) = self.dhcp else { return };
        let lease = match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(c)) => Some((c.address, c.router)),
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        set_ipv4(&mut self.iface, lease);
    }

    /// Keeps `SPARE_LISTENERS` sockets listening on every port (within its
    /// backlog), re-arming those whose connection died before `accept`.
    fn top_up_listeners(&mut self) {
        let sockets = &mut self.sockets;
        for (&port, pool) in &mut self.listeners {
            let mut spare = 0;
            for &h in &pool.sockets {
                let socket = sockets.get_mut::<tcp::Socket>(h);
                if socket.state() == tcp::State::Closed {
                    let _ = socket.listen(port);
                }
                spare += usize::from(socket.state() == tcp::State::Listen);
            }
            while spare < SPARE_LISTENERS && pool.sockets.len() < pool.backlog {
                let handle = sockets.add(new_tcp_socket());
                if sockets.get_mut::<tcp::Socket>(handle).listen(port).is_err() {
                    sockets.remove(handle);
                    break;
                }
                pool.sockets.push(handle);
                spare += 1;
            }
        }
    }

    fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }
}

fn new_tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
    )
}

fn is_connected(state: tcp::State) -> bool {
    matches!(state, tcp::State::Established | tcp::State::CloseWait)
}

/// `port` on the unspecified address of the socket's family (`0.0.0.0` or `::`), as
/// a socket bound to any address (it takes both families).
fn any_address(port: u16, ipv6: bool) -> IpEndpoint {
    match ipv6 {
        true => IpEndpoint::new(Ipv6Address::UNSPECIFIED.into(), port),
        false => IpEndpoint::new(Ipv4Address::UNSPECIFIED.into(), port),
    }
}

fn with_stack<R>(f: impl FnOnce(&mut Stack) -> Result<R, i32>) -> Result<R, i32> {
    STACK.with(|s| s.as_mut().map_or(Err(ENETDOWN), f))
}

/// A TCP socket as a file descriptor sees it.
pub enum TcpSocket {
    /// Created, maybe bound to a port.
    Unconnected {
        /// The bound port (0: not bound).
        port: u16,
        /// Made as `AF_INET6` (what `getsockname` reports).
        ipv6: bool,
    },
    /// Listening on `port` (its pool lives in the stack).
    Listener {
        /// The listening port.
        port: u16,
        /// Made as `AF_INET6`.
        ipv6: bool,
    },
    /// A connection on its way (`connect` was called), since `started`.
    Connecting {
        /// The smoltcp socket.
        handle: SocketHandle,
        /// When the attempt started.
        started: Instant,
    },
    /// A connection.
    Stream(SocketHandle),
}

/// What a socket is ready for, for `sys_poll`.
#[derive(Default)]
pub struct Readiness {
    /// Data (or end of stream, or a connection to accept) is there.
    pub readable: bool,
    /// There is room to send.
    pub writable: bool,
    /// The connection is gone.
    pub hung_up: bool,
}

impl TcpSocket {
    /// A new, unbound socket of the family `AF_INET6` (`ipv6`) or `AF_INET`.
    pub fn new(ipv6: bool) -> Self {
        Self::Unconnected { port: 0, ipv6 }
    }

    /// Binds to `port` (the address is the interface's).
    pub fn bind(&mut self, port: u16) -> Result<(), i32> {
        match self {
            Self::Unconnected { port: p, .. } => {
                *p = port;
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    /// Starts listening with room for `backlog` pending connections.
    pub fn listen(&mut self, backlog: i32) -> Result<(), i32> {
        let Self::Unconnected { port, ipv6 } = *self else {
            return Err(EINVAL);
        };
        if port == 0 {
            return Err(EINVAL);
        }
        let backlog = usize::try_from(backlog).unwrap_or(1).clamp(1, MAX_BACKLOG);
        with_stack(|stack| {
            if stack.listeners.contains_key(&port) {
                return Err(EADDRINUSE);
            }
            stack.listeners.insert(
                port,
                Pool {
                    sockets: Vec::new(),
                    backlog,
                },
            );
            stack.top_up_listeners();
            Ok(())
        })?;
        *self = Self::Listener { port, ipv6 };
        Ok(())
    }

    /// Takes an established connection from a listener's pool, with its
    /// peer's address; `EAGAIN` when none is there yet.
    pub fn accept(&mut self) -> Result<(TcpSocket, IpEndpoint), i32> {
        let Self::Listener { port, .. } = *self else {
            return Err(EINVAL);
        };
        with_stack(|stack| {
            let pool = stack.listeners.get_mut(&port).ok_or(EINVAL)?;
            let sockets = &mut stack.sockets;
            let i = pool
                .sockets
                .iter()
                .position(|&h| is_connected(sockets.get::<tcp::Socket>(h).state()))
                .ok_or(EAGAIN)?;
            let peer = sockets
                .get::<tcp::Socket>(pool.sockets[i])
                .remote_endpoint()
                .ok_or(ENOTCONN)?;
            let handle = pool.sockets.remove(i);
            stack.top_up_listeners();
            Ok((TcpSocket::Stream(handle), peer))
        })
    }

    /// Starts connecting to `remote` from the bound port, or else an ephemeral one.
    pub fn connect(&mut self, remote: IpEndpoint) -> Result<(), i32> {
        let port = match *self {
            Self::Unconnected { port, .. } => port,
            Self::Connecting { .. } | Self::Stream(_) => return Err(EISCONN),
            Self::Listener { .. } => return Err(EINVAL),
        };
        let handle = with_stack(|stack| {
            let local = if port == 0 {
                stack.ephemeral_port()
            } else {
                port
            };
            let handle = stack.sockets.add(new_tcp_socket());
            let socket = stack.sockets.get_mut::<tcp::Socket>(handle);
            socket.set_timeout(Some(CONNECT_TIMEOUT));
            if socket
                .connect(stack.iface.context(), remote, local)
                .is_err()
            {
                stack.sockets.remove(handle);
                return Err(EINVAL);
            }
            Ok(handle)
        })?;
        *self = Self::Connecting {
            handle,
            started: now(),
        };
        poll();
        Ok(())
    }

    /// Where a connection attempt stands: done (and now a stream), `EAGAIN`
    /// while the handshake runs, or why it failed. A stream is done.
    pub fn finish_connect(&mut self) -> Result<(), i32> {
        match *self {
            Self::Stream(_) => Ok(()),
            Self::Connecting { handle, started } => {
                with_stack(|stack| connect_outcome(stack.tcp(handle), started))?;
                // The same smoltcp socket goes on as the stream: no drop, no close.
                core::mem::forget(core::mem::replace(self, Self::Stream(handle)));
                Ok(())
            }
            _ => Err(ENOTCONN),
        }
    }

    /// The error a connection attempt ended in (`SO_ERROR`), 0 if none.
    pub fn pending_error(&self) -> i32 {
        let Self::Connecting { handle, started } = *self else {
            return 0;
        };
        match with_stack(|stack| connect_outcome(stack.tcp(handle), started)) {
            Err(EAGAIN) | Ok(()) => 0,
            Err(e) => e,
        }
    }

    /// Receives into `buf`; 0 at end of stream, `EAGAIN` when nothing is there.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, i32> {
        self.finish_connect()?;
        let Self::Stream(handle) = *self else {
            return Err(ENOTCONN);
        };
        with_stack(|stack| {
            let socket = stack.tcp(handle);
            if socket.can_recv() {
                socket.recv_slice(buf).map_err(|_| ENOTCONN)
            } else if !socket.may_recv() {
                Ok(0)
            } else {
                Err(EAGAIN)
            }
        })
    }

    /// Queues `buf` for sending; `EAGAIN` when the send buffer is full.
    pub fn send(&mut self, buf: &[u8]) -> Result<usize, i32> {
        self.finish_connect()?;
        let Self::Stream(handle) = *self else {
            return Err(ENOTCONN);
        };
        let sent = with_stack(|stack| {
            let socket = stack.tcp(handle);
            if !socket.may_send() {
                Err(EPIPE)
            } else if !socket.can_send() {
                Err(EAGAIN)
            } else {
                socket.send_slice(buf).map_err(|_| EPIPE)
            }
        })?;
        poll();
        Ok(sent)
    }

    /// `TCP_NODELAY`: whether small writes go out at once instead of waiting for the
    /// peer's ACK (Nagle). Takes effect on a connection; a socket not yet connected
    /// keeps smoltcp's default (Nagle on), as std and tokio set it on the stream.
    pub fn set_nodelay(&mut self, nodelay: bool) -> Result<(), i32> {
        match *self {
            Self::Connecting { handle, .. } | Self::Stream(handle) => with_stack(|stack| {
                stack.tcp(handle).set_nagle_enabled(!nodelay);
                Ok(())
            }),
            _ => Ok(()),
        }
    }

    /// Sends FIN after the queued data.
    pub fn shutdown_write(&mut self) -> Result<(), i32> {
        let Self::Stream(handle) = *self else {
            return Err(ENOTCONN);
        };
        with_stack(|stack| {
            stack.tcp(handle).close();
            Ok(())
        })?;
        poll();
        Ok(())
    }

    /// The local address (`getsockname`): the connection's own end, else the bound
    /// port on the unspecified address.
    pub fn local_endpoint(&self) -> Result<IpEndpoint, i32> {
        match *self {
            Self::Unconnected { port, ipv6 } | Self::Listener { port, ipv6 } => {
                Ok(any_address(port, ipv6))
            }
            Self::Connecting { handle, .. } | Self::Stream(handle) => {
                with_stack(|stack| stack.tcp(handle).local_endpoint().ok_or(ENOTCONN))
            }
        }
    }

    /// The peer's address (`getpeername`); `ENOTCONN` unless connected.
    pub fn peer_endpoint(&self) -> Result<IpEndpoint, i32> {
        let handle = match *self {
            Self::Stream(handle) => handle,
            Self::Connecting { handle, .. } => {
                with_stack(|stack| match is_connected(stack.tcp(handle).state()) {
                    true => Ok(handle),
                    false => Err(ENOTCONN),
                })?
            }
            _ => return Err(ENOTCONN),
        };
        with_stack(|stack| stack.tcp(handle).remote_endpoint().ok_or(ENOTCONN))
    }

    /// What the socket is ready for.
    pub fn readiness(&self) -> Readiness {
        with_stack(|stack| {
            Ok(match self {
                Self::Unconnected { .. } => Readiness::default(),
                Self::Listener { port, .. } => Readiness {
                    readable: stack.listeners.get(port).is_some_and(|pool| {
                        pool.sockets
                            .iter()
                            .any(|&h| is_connected(stack.sockets.get::<tcp::Socket>(h).state()))
                    }),
                    ..Readiness::default()
                },
                Self::Connecting { handle, .. } if !stack.tcp(*handle).is_open() => Readiness {
                    readable: true,
                    writable: true,
                    hung_up: true,
                },
                Self::Connecting { handle, .. } | Self::Stream(handle) => {
                    let socket = stack.tcp(*handle);
                    Readiness {
                        readable: socket.can_recv() || !socket.may_recv(),
                        writable: socket.can_send(),
                        hung_up: !socket.is_open(),
                    }
                }
            })
        })
        .unwrap_or_default()
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        let _ = with_stack(|stack| {
            match self {
                Self::Unconnected { .. } => {}
                Self::Listener { port, .. } => {
                    for h in stack
                        .listeners
                        .remove(port)
                        .map(|p| p.sockets)
                        .unwrap_or_default()
                    {
                        stack.sockets.remove(h);
                    }
                }
                Self::Connecting { handle, .. } | Self::Stream(handle) => {
                    stack.tcp(*handle).close();
                    stack.closing.push(*handle);
                }
            }
            Ok(())
        });
    }
}

/// How a connection attempt started at `started` stands: `Ok` once connected
/// (its timeout lifted), `EAGAIN` during the handshake, `ETIMEDOUT` if the peer
/// never answered, `ECONNREFUSED` if it refused.
fn connect_outcome(socket: &mut tcp::Socket<'static>, started: Instant) -> Result<(), i32> {
    let state = socket.state();
    if is_connected(state) {
        socket.set_timeout(None);
        Ok(())
    } else if state != tcp::State::Closed {
        Err(EAGAIN)
    } else if now() - started >= CONNECT_TIMEOUT {
        Err(ETIMEDOUT)
    } else {
        Err(ECONNREFUSED)
    }
}

/// A UDP socket as a file descriptor sees it: unbound, or a smoltcp socket
/// bound to a port of the interface.
pub enum UdpSocket {
    /// Not bound yet (sending binds it to an ephemeral port); made as `AF_INET6`
    /// (`ipv6`) or `AF_INET`.
    Unbound(bool),
    /// Bound, and the family it was made with.
    Bound(SocketHandle, bool),
}

fn new_udp_socket() -> udp::Socket<'static> {
    let buffer = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; UDP_QUEUE],
            vec![0; SOCKET_BUFFER],
        )
    };
    udp::Socket::new(buffer(), buffer())
}

impl Stack {
    fn udp(&mut self, handle: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(handle)
    }

    /// A new UDP socket bound to `port` (0: the next free ephemeral port).
    fn bind_udp(&mut self, port: u16) -> Result<SocketHandle, i32> {
        let port = if port == 0 {
            self.ephemeral_port()
        } else {
            port
        };
        let in_use = self
            .sockets
            .iter()
            .any(|(_, s)| udp::Socket::downcast(s).is_some_and(|u| u.endpoint().port == port));
        if in_use {
            return Err(EADDRINUSE);
        }
        let handle = self.sockets.add(new_udp_socket());
        self.udp(handle).bind(port).map_err(|_| EINVAL)?;
        Ok(handle)
    }

    fn ephemeral_port(&mut self) -> u16 {
        let port = self.next_ephemeral;
        self.next_ephemeral = port.checked_add(1).unwrap_or(EPHEMERAL_PORTS);
        port
    }
}

impl UdpSocket {
    /// Binds to `port` (the address is the interface's).
    pub fn bind(&mut self, port: u16) -> Result<(), i32> {
        let Self::Unbound(ipv6) = *self else {
            return Err(EINVAL);
        };
        *self = Self::Bound(with_stack(|stack| stack.bind_udp(port))?, ipv6);
        Ok(())
    }

    /// Receives one datagram into `buf` (the rest of a longer one is
    /// dropped), with its sender; `EAGAIN` when none is there.
    pub fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, IpEndpoint), i32> {
        let Self::Bound(handle, _) = *self else {
            return Err(EAGAIN);
        };
        with_stack(|stack| {
            let (data, meta) = stack.udp(handle).recv().map_err(|_| EAGAIN)?;
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            Ok((n, meta.endpoint))
        })
    }

    /// The local address (`getsockname`): the bound port (0 while unbound) on the bound
    /// address, else the unspecified one.
    pub fn local_endpoint(&self) -> Result<IpEndpoint, i32> {
        let (handle, ipv6) = match *self {
            Self::Bound(handle, ipv6) => (handle, ipv6),
            Self::Unbound(ipv6) => return Ok(any_address(0, ipv6)),
        };
        with_stack(|stack| {
            let bound = stack.udp(handle).endpoint();
            Ok(match bound.addr {
                Some(addr) => IpEndpoint::new(addr, bound.port),
                None => any_address(bound.port, ipv6),
            })
        })
    }

    /// Queues one datagram to `to`; `EAGAIN` when the send queue is full.
    pub fn send_to(&mut self, buf: &[u8], to: IpEndpoint) -> Result<usize, i32> {
        if let Self::Unbound(_) = self {
            self.bind(0)?;
        }
        let Self::Bound(handle, _) = *self else {
            return Err(EINVAL);
        };
        with_stack(|stack| {
            let socket = stack.udp(handle);
            if buf.len() > socket.payload_send_capacity() {
                return Err(EMSGSIZE);
            }
            socket.send_slice(buf, to).map_err(|_| EAGAIN)
        })?;
        poll();
        Ok(buf.len())
    }

    /// What the socket is ready for.
    pub fn readiness(&self) -> Readiness {
        let Self::Bound(handle, _) = *self else {
            return Readiness {
                writable: true,
                ..Readiness::default()
            };
        };
        with_stack(|stack| {
            let socket = stack.udp(handle);
            Ok(Readiness {
                readable: socket.can_recv(),
                writable: socket.can_send(),
                hung_up: false,
            })
        })
        .unwrap_or_default()
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        if let Self::Bound(handle, _) = *self {
            let _ = with_stack(|stack| {
                stack.sockets.remove(handle);
                Ok(())
            });
        }
    }
}
