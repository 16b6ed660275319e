//! The sync service as its own image: opens the Kith store on the virtio-blk disk
//! `/dev/vda` (prepared on a host with `kith disk write`) and serves Kith's sync protocol
//! to the user's other replicas over mutual TLS, with kith-identity's
//! [`sync_service`] exactly as `kith serve sync` does; replicas then `kith sync` with it
//! as with any other. It presents the store's `sync` service certificate with the key
//! `kith disk write` put on the disk. The only argument is the port (default 7447); it
//! prints "sync: serving ZONE on port PORT" once it listens.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use kith_identity::sync_service;

/// The port Kith's sync service listens on by default (`_kith-sync._tcp`).
const PORT: u16 = 7447;

fn main() -> ExitCode {
    kith_image::main("sync", serve)
}

fn serve() -> kith_image::Result<()> {
    let port = kith_image::port_argument(PORT)?;
    let (_, site) = kith_image::open_site()?;
    let origin = site.origin()?;
    let credentials = kith_image::credentials(&site, "sync")?;
    let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let running = sync_service::start_with(site, credentials, listen)?;
    println!("sync: serving {origin} on port {}", running.addr.port());
    loop {
        std::thread::park();
    }
}
