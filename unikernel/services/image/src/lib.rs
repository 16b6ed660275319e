//! What every service image shares (`kith-dns-image`, the DAV images, `kith-sync-image`,
//! `kith-mail-image`): the kernel linked in, the store opened on the virtio-blk disk
//! `/dev/vda` that `kith disk write` prepared on a host, the secrets that command put on
//! the disk's [`SERVICE_KEYS`] branch, the arguments, a `main` that prints an error as
//! `NAME: error` and exits with status 1, and the [`replica`] thread that syncs the disk's
//! store with the sync VM's. Each image is then a thin binary that starts its service the
//! way `kith serve NAME` does.

pub mod replica;

#[cfg(target_os = "hermit")]
use kith_unikernel as _;

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use kith_identity::enroll::Site;
use kith_identity::link::Credentials;
use kith_identity::local::{self, Local};
use kith_store::{MAIN, Store};

/// The disk holding the store.
pub const DISK: &str = "/dev/vda";
/// The disk's branch with the replica's secrets (`kith disk write`), laid out as a local
/// folder: `services/NAME.key`, `dkim.key`, `tsig/DEVICE.key`.
pub const SERVICE_KEYS: &str = "local/services";

/// What an image's `serve` returns.
pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Runs the image `name`'s `serve`, which returns only on an error: prints it as
/// "NAME: error" and exits with status 1.
pub fn main(name: &str, serve: impl FnOnce() -> Result<()>) -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(1)
        }
    }
}

/// The store on [`DISK`] and the site of its `main` branch, whose secrets are those on
/// the disk's [`SERVICE_KEYS`] branch.
pub fn open_site() -> Result<(Store, Site)> {
    let store = Store::open_disk(Path::new(DISK)).map_err(|e| {
        format!("{e}; attach a disk made with `kith disk write` (kith run --disk FILE)")
    })?;
    let mut site = Site::new(store.clone(), MAIN, Path::new("/"));
    site.local = Local::on_branch(store.clone(), SERVICE_KEYS);
    Ok((store, site))
}

/// The service key of `service` from the disk, or an error saying how to put it there.
pub fn service_key(site: &Site, service: &str) -> Result<Vec<u8>> {
    let missing = format!(
        "the disk has no {service} service key: write it with `kith disk write --key \
{service}` on the replica that made the zone"
    );
    Ok(site
        .local
        .read(&local::service_key(service))?
        .ok_or(missing)?)
}

/// What the image presents as `service`: the stored certificate with the disk's key.
pub fn credentials(site: &Site, service: &str) -> Result<Credentials> {
    let key = service_key(site, service)?;
    Ok(Credentials::of_service_key(site, service, &key)?)
}

/// The option naming the sync service to keep the replica in step with.
const SYNC_OPTION: &str = "--sync";

/// The `n`th (from 0) program argument that is not `--sync HOST:PORT`.
pub fn argument(n: usize) -> Option<String> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        if arg == SYNC_OPTION {
            args.next();
        } else {
            positional.push(arg);
        }
    }
    positional.into_iter().nth(n)
}

/// The first argument as a port, `default` without one.
pub fn port_argument(default: u16) -> Result<u16> {
    match argument(0) {
        Some(port) => Ok(port.parse().map_err(|_| format!("not a port: {port}"))?),
        None => Ok(default),
    }
}

/// The sync service of `--sync HOST:PORT`, if given.
pub fn sync_argument() -> Result<Option<(String, u16)>> {
    let mut args = std::env::args().skip_while(|a| a != SYNC_OPTION);
    if args.next().is_none() {
        return Ok(None);
    }
    let peer = args.next().ok_or("--sync takes HOST:PORT")?;
    let bad = || format!("--sync takes HOST:PORT, not {peer:?}");
    let (host, port) = peer.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    Ok(Some((host.trim_matches(['[', ']']).to_string(), port)))
}
