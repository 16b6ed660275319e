//! The IMAP service: implicit TLS (RFC 8314) on one port, one thread per connection.
//!
//! Each connection subscribes to the store's watch; while its client idles, every move
//! of the branch (a delivery, another connection's STORE, a sync from another replica)
//! is turned into untagged responses at once. The socket is read with a short timeout
//! so one thread can wait for both.
//!
//! Once a connection has been quiet for [`SETTLE`], and when it ends, the memory its
//! commands freed goes back to the system (see [`crate::memory`]).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::session::{Config, Session};
use crate::memory::{self, SETTLE};

/// How often an idle connection looks for store changes.
const TICK: Duration = Duration::from_millis(50);
/// How long a client may stay silent (RFC 9051 asks at least 30 minutes).
const AUTOLOGOUT: Duration = Duration::from_secs(31 * 60);
/// Most connections served at once.
const MAX_CONNECTIONS: usize = 256;

/// Binds `listen` and serves in background threads; returns the bound address.
pub fn start(
    config: Config,
    tls: Arc<ServerConfig>,
    listen: SocketAddr,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("imap-accept".into())
        .spawn(move || {
            for tcp in listener.incoming().flatten() {
                if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    continue;
                }
                active.fetch_add(1, Ordering::SeqCst);
                let (config, tls, active) = (config.clone(), Arc::clone(&tls), Arc::clone(&active));
                let store = config.store.clone();
                let _ = std::thread::Builder::new()
                    .name("imap".into())
                    .spawn(move || {
                        if let Err(e) = serve(config, tls, tcp) {
                            tracing::debug!("imap connection ended: {e}");
                        }
                        active.fetch_sub(1, Ordering::SeqCst);
                        memory::give_back(&store);
                    });
            }
        })?;
    tracing::info!("IMAP listening on {addr}");
    Ok(addr)
}

fn serve(config: Config, tls: Arc<ServerConfig>, tcp: TcpStream) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    tcp.set_write_timeout(Some(AUTOLOGOUT))?;
    let mut conn = ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut tcp = tcp;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    tcp.set_read_timeout(Some(TICK))?;
    let mut stream = StreamOwned::new(conn, tcp);
    let branch = config.branch.clone();
    let watch = config.store.watch();
    let store = config.store.clone();
    let mut session = Session::new(config);
    send(&mut stream, &session.greeting())?;
    let mut buffer = vec![0u8; 64 << 10];
    let mut last = Instant::now();
    let mut settled = false;
    while !session.is_closed() {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                last = Instant::now();
                settled = false;
                session.feed(&buffer[..n], &mut stream)?;
                stream.flush()?;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if last.elapsed() > AUTOLOGOUT {
                    send(&mut stream, b"* BYE autologout; idle for too long\r\n")?;
                    return Ok(());
                }
                if !settled && last.elapsed() > SETTLE {
                    memory::give_back(&store);
                    settled = true;
                }
            }
            Err(e) => return Err(e),
        }
        if moved(&watch, &branch) {
            session.changed(&mut stream)?;
            stream.flush()?;
        }
    }
    stream.conn.send_close_notify();
    stream.flush()
}

/// Whether `branch` moved since the last look.
fn moved(watch: &std::sync::mpsc::Receiver<kith_store::watch::RefEvent>, branch: &str) -> bool {
    let mut any = false;
    loop {
        match watch.try_recv() {
            Ok(event) => any |= event.name == branch,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return any,
        }
    }
}

fn send(
    stream: &mut StreamOwned<ServerConnection, TcpStream>,
    bytes: &[u8],
) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    stream.write_all(bytes)?;
    stream.flush()
}
