//! The DNS service as its own image: opens the Kith store on the virtio-blk disk
//! `/dev/vda` (prepared on a host with `kith disk write`) and serves the zone held on its
//! `main` branch with kith-identity's authoritative server ([`Server::handle`]), over UDP
//! and TCP on the port given as the argument (default 53). It prints
//! "dns: serving ZONE on port PORT" once it listens, and reloads the zone when the branch
//! moves: with `--sync HOST:PORT`, also when a record changed on another replica reaches
//! it through that sync service (its `dns` service key on the disk proves it). Devices
//! change their own records with RFC 2136 updates signed by their TSIG keys, whose
//! secrets `kith disk write --key dns` puts on the disk; each update is a commit by the
//! device, which the sync thread then sends on.
//!
//! The network shell is plain blocking std sockets, one thread per TCP connection, not
//! kith-identity's tokio shell (`dns::net`): that one needs `getsockname`, `FIONBIO` and
//! `dup`, which the kernel does not offer yet; it also drops RRL and the TCP idle limit.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;

use kith_identity::dns::{Server, Transport};
use kith_image::replica::Replica;
use kith_store::{MAIN, Mergers, Store};

fn main() -> ExitCode {
    kith_image::main("dns", serve)
}

fn serve() -> kith_image::Result<()> {
    let port = kith_image::port_argument(53)?;
    let (store, site) = kith_image::open_site()?;
    let origin = site.origin()?;
    let server = Arc::new(Server::open(site.clone())?);
    let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
    let tcp = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?;
    follow(&store, Arc::clone(&server));
    let tcp_server = Arc::clone(&server);
    std::thread::spawn(move || accept(&tcp_server, &tcp));
    println!("dns: serving {origin} on port {port}");
    // Zone files merge only when the sides agree: this replica never writes them.
    Replica {
        name: "dns",
        site,
        service: "dns",
        mergers: Mergers::new(),
    }
    .start()?;
    let mut buf = vec![0; 65_535];
    loop {
        let (len, peer) = udp.recv_from(&mut buf)?;
        if let Some(response) = server.handle(&buf[..len], Transport::Udp) {
            udp.send_to(&response, peer)?;
        }
    }
}

/// Reloads the zone whenever the branch moves (a signed update was committed).
fn follow(store: &Store, server: Arc<Server>) {
    let events = store.watch();
    std::thread::spawn(move || {
        for event in events {
            if event.name == MAIN
                && let Err(e) = server.reload()
            {
                eprintln!("dns: reloading the zone: {e}");
            }
        }
    });
}

/// Serves each TCP connection on its own thread.
fn accept(server: &Arc<Server>, tcp: &TcpListener) {
    for stream in tcp.incoming().flatten() {
        let server = Arc::clone(server);
        std::thread::spawn(move || connection(&server, stream));
    }
}

/// One TCP connection: length-prefixed messages (RFC 1035 §4.2.2) until it closes.
fn connection(server: &Server, mut stream: TcpStream) {
    let mut len = [0; 2];
    while stream.read_exact(&mut len).is_ok() {
        let mut request = vec![0; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        let Some(response) = server.handle(&request, Transport::Tcp) else {
            continue;
        };
        let Ok(size) = u16::try_from(response.len()) else {
            continue;
        };
        let mut out = size.to_be_bytes().to_vec();
        out.extend_from_slice(&response);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}
