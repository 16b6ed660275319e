//! The sync service as its own image: opens the Kith store on the virtio-blk disk
//! `/dev/vda` (prepared on a host with `kith disk write`) and serves Kith's sync protocol
//! to the user's other replicas over mutual TLS, with kith-identity's
//! [`sync_service`] exactly as `kith serve sync` does; replicas then `kith sync` with it
//! as with any other. It presents the store's `sync` service certificate with the key
//! `kith disk write` put on the disk's `local/services` branch. The only argument is the
//! port (default 7447); it prints "sync: serving ZONE on port PORT" once it listens.

#[cfg(target_os = "hermit")]
use kith_unikernel as _;

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use kith_identity::enroll::Site;
use kith_identity::link::Credentials;
use kith_identity::sync_service;
use kith_store::{MAIN, Store};

/// The disk holding the store.
const DISK: &str = "/dev/vda";
/// The disk's branch with the service keys (`kith disk write`).
const SERVICE_KEYS: &str = "local/services";
/// The port Kith's sync service listens on by default (`_kith-sync._tcp`).
const PORT: u16 = 7447;

fn main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sync: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve() -> Result<(), Box<dyn Error>> {
    let port = port()?;
    let store = Store::open_disk(Path::new(DISK)).map_err(|e| {
        format!("{e}; attach a disk made with `kith disk write` (kith run --disk FILE)")
    })?;
    let site = Site::new(store.clone(), MAIN, Path::new("/"));
    let origin = site.origin()?;
    let credentials = Credentials::of_service_key(&site, "sync", &sync_key(&store)?)?;
    let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let running = sync_service::start_with(site, credentials, listen)?;
    println!("sync: serving {origin} on port {}", running.addr.port());
    loop {
        std::thread::park();
    }
}

/// The port from the only argument, [`PORT`] without one.
fn port() -> Result<u16, String> {
    match std::env::args().nth(1) {
        Some(port) => port.parse().map_err(|_| format!("not a port: {port}")),
        None => Ok(PORT),
    }
}

/// The sync service's key, from the disk's [`SERVICE_KEYS`] branch.
fn sync_key(store: &Store) -> Result<Vec<u8>, Box<dyn Error>> {
    let missing = "the disk has no sync service key: write it with `kith disk write` on the \
replica that made the zone";
    let keys = store.head(SERVICE_KEYS)?.ok_or(missing)?;
    let key = store.get(&store.commit(&keys)?.tree, "sync.key")?;
    Ok(key.ok_or(missing)?)
}
