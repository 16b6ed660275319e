//! The sync service (`kith serve sync`, part of `kith up`, and the sync unikernel's
//! one job): other replicas fetch from and push to this one over mutual TLS, one thread
//! per connection.
//!
//! Every connection must present a certificate from the user's root that the store's
//! `/identity/revoked` does not list (re-read for each connection, so a revocation that
//! arrives by sync takes effect at once). Pushes move branches only by fast-forward.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use kith_store::sync::{self, Server, TransportError};

use crate::link::{self, Credentials, ServerConfig, ServerStream};
use crate::{Error, Result, Site};

/// How long a connection may stay silent.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Most sessions served at once; more connections are closed at once.
const MAX_SESSIONS: usize = 64;

/// A running sync service; stops when [`Running::stop`] is called.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
}

/// Starts serving `site`'s store on `listen` as device `device`.
pub fn start(site: Site, device: &str, listen: SocketAddr) -> Result<Running> {
    let credentials = Credentials::of_service(&site, "sync", device)?;
    start_with(site, credentials, listen)
}

/// Starts serving `site`'s store on `listen`, presenting `credentials` (the sync
/// unikernel's, whose key comes from its disk).
pub fn start_with(site: Site, credentials: Credentials, listen: SocketAddr) -> Result<Running> {
    let config = credentials.server_config()?;
    let listener = TcpListener::bind(listen).map_err(|source| Error::Io {
        path: format!("listening on {listen}").into(),
        source,
    })?;
    let addr = listener.local_addr()?;
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stopping);
    let acceptor = std::thread::Builder::new()
        .name("sync-accept".into())
        .spawn(move || accept_loop(listener, site, credentials, config, flag))?;
    tracing::info!("sync service listening on {addr}");
    Ok(Running {
        addr,
        stopping,
        acceptor,
    })
}

impl Running {
    /// Stops accepting connections (sessions under way finish on their own threads).
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = self.acceptor.join();
    }
}

fn accept_loop(
    listener: TcpListener,
    site: Site,
    credentials: Credentials,
    config: Arc<ServerConfig>,
    stopping: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for tcp in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let tcp = match tcp {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.load(Ordering::SeqCst) >= MAX_SESSIONS {
            tracing::warn!("{MAX_SESSIONS} sessions under way; closing a new connection");
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (site, credentials, active) = (site.clone(), credentials.clone(), Arc::clone(&active));
        let config = Arc::clone(&config);
        let spawned = std::thread::Builder::new()
            .name("sync-session".into())
            .spawn(move || {
                session(tcp, &site, &credentials, config);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            tracing::warn!("starting a session thread: {e}");
        }
    }
}

/// Serves one connection: handshake, then fetches and pushes until the peer hangs up.
fn session(tcp: TcpStream, site: &Site, credentials: &Credentials, config: Arc<ServerConfig>) {
    let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    // The TLS config's verifier reads this shared list, so one config serves every link.
    if let Ok(revoked) = site.revoked() {
        credentials.set_revoked(revoked);
    }
    let mut stream = match link::accept(tcp, config, TIMEOUT) {
        Ok(s) => s,
        Err(e) => return tracing::warn!("refused {peer}: {e}"),
    };
    let who = peer_name(&stream).unwrap_or(peer);
    let mut server = Server::new(site.store.clone());
    match sync::run(&mut server, &mut stream, &mut |_, _| {}) {
        Ok(_) | Err(TransportError::Closed { mid_message: false }) => {
            tracing::info!("session with {who} done");
        }
        Err(e) => tracing::warn!("session with {who} failed: {e}"),
    }
    stream.conn.send_close_notify();
    let _ = std::io::Write::flush(&mut stream);
}

/// The first DNS name of the peer's certificate (its device's host name).
fn peer_name(stream: &ServerStream) -> Option<String> {
    let cert = stream.conn.peer_certificates()?.first()?;
    crate::keys::dns_names(cert).ok()?.into_iter().next()
}
