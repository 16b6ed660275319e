//! What the DAV service images share (`kith-contacts-image`, `kith-calendar-image`): each
//! is a thin binary that hands its collection kind to [`main`], which opens the Kith store
//! on the virtio-blk disk `/dev/vda` (prepared on a host with `kith disk write`) and serves
//! that one kind over HTTPS on the port given as the only argument (default 443), with the
//! same server as `kith serve contacts|calendar`: kith-dav's [`server::start`]. The
//! certificate is the store's `dav` service certificate with the zone's root after it, and
//! its key comes from the disk's `local/services` branch, where `kith disk write` puts the
//! replica's service keys. Accounts are those of `kith user add`. With `--sync HOST:PORT`
//! the disk's store syncs with that sync service ([`kith_image::replica`]), merging with
//! the kind's merge functions.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use kith_dav::{CollectionKind, Dav, server, tls};
use kith_identity::enroll::{Site, service_path};
use kith_image::replica::Replica;
use kith_store::{MAIN, Mergers, Store};

/// Serves `kind` as the service `name` ("contacts", "calendar"; it names the log lines and
/// the commits' author, `NAME-image`), whose files `register` registers the merge
/// functions of, and prints "NAME: serving ZONE on port PORT" once it listens; returns
/// only on an error, which it prints.
pub fn main(
    name: &'static str,
    kind: Arc<dyn CollectionKind>,
    register: fn(&mut Mergers),
) -> ExitCode {
    kith_image::main(name, || serve(name, kind, register))
}

fn serve(
    name: &'static str,
    kind: Arc<dyn CollectionKind>,
    register: fn(&mut Mergers),
) -> kith_image::Result<()> {
    let port = kith_image::port_argument(443)?;
    let (store, site) = kith_image::open_site()?;
    let origin = site.origin()?;
    let tls = server_tls(&store, &site)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Inside the runtime: the handler starts its commit writer task.
        let dav = Arc::new(Dav::new(kith_dav::Config {
            store,
            branch: MAIN.to_string(),
            author: format!("{name}-image"),
            kinds: vec![kind],
        }));
        let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        let running = server::start(dav, tls, listen).await?;
        println!("{name}: serving {origin} on port {}", running.addr.port());
        let mut mergers = Mergers::new();
        register(&mut mergers);
        Replica {
            name,
            site,
            service: "dav",
            mergers,
        }
        .start()?;
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// The TLS config of `kith serve contacts|calendar` on a replica without the root key: the
/// stored `dav` certificate followed by the root, with the `dav` key from the disk.
fn server_tls(store: &Store, site: &Site) -> kith_image::Result<Arc<tls::ServerConfig>> {
    let cert = store
        .get(&store.head_tree(MAIN)?, &service_path("dav"))?
        .ok_or("the store has no dav service certificate")?;
    let key = kith_image::service_key(site, "dav")?;
    let chain = format!("{}{}", String::from_utf8(cert)?, site.root_cert()?);
    let provider = kith_identity::verify::ed25519_provider();
    Ok(tls::server_config_with(
        provider,
        &chain,
        &String::from_utf8(key)?,
    )?)
}
