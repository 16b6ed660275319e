//! The I/O shell: UDP and TCP listeners on tokio around [`Server::handle`].
//!
//! UDP is served by one blocking thread per core on the shared socket, each answer
//! passing the response rate limiter; TCP takes at most a set number of
//! connections and closes one idle for too long. A thread follows the store's watch,
//! reloads the zone when the branch moves and sends NOTIFY to the secondaries when the
//! serial changes. Everything stops when [`Running::stop`] is called or dropped.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::rrl::{RateLimiter, Verdict};
use super::{Server, Transport, notify, truncated};
use crate::error::Result;

/// How the shell listens and what it limits.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address for both UDP and TCP (port 0: a free port, the same for both).
    pub listen: SocketAddr,
    /// The most TCP connections open at once.
    pub tcp_max_connections: usize,
    /// How long a TCP connection may sit idle.
    pub tcp_idle: Duration,
    /// UDP response rate limit: (responses a second per prefix, burst, slip); `None`: off.
    pub rrl: Option<(u32, u32, u32)>,
    /// Secondaries to NOTIFY (RFC 1996) when the serial changes.
    pub notify: Vec<SocketAddr>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 53)),
            tcp_max_connections: 128,
            tcp_idle: Duration::from_secs(10),
            rrl: Some((1000, 2000, 2)),
            notify: Vec::new(),
        }
    }
}

/// A running server; stops when dropped.
pub struct Running {
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    stop_flag: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops the listeners and the reload thread.
    pub async fn stop(mut self) {
        self.halt();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    fn halt(&self) {
        let _ = self.stop.send(true);
        self.stop_flag.store(true, Ordering::Relaxed);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.halt();
    }
}

/// How often blocked UDP workers look whether to stop.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Binds UDP and TCP on `config.listen` and starts serving.
pub async fn start(server: Arc<Server>, config: Config) -> Result<Running> {
    let (udp, tcp) = bind(config.listen).await?;
    let addr = udp.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let stop_flag = Arc::new(AtomicBool::new(false));
    let udp = udp.into_std()?;
    udp.set_nonblocking(false)?;
    udp.set_read_timeout(Some(STOP_POLL))?;
    let rrl = config
        .rrl
        .map(|(rate, burst, slip)| Arc::new(Mutex::new(RateLimiter::new(rate, burst, slip))));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    for i in 0..workers {
        let (server, udp, rrl, stop) = (
            Arc::clone(&server),
            udp.try_clone()?,
            rrl.clone(),
            Arc::clone(&stop_flag),
        );
        std::thread::Builder::new()
            .name(format!("kith-dns-udp-{i}"))
            .spawn(move || serve_udp(&server, &udp, rrl.as_deref(), &stop))?;
    }
    let tasks = vec![tokio::spawn(serve_tcp(
        Arc::clone(&server),
        tcp,
        config.clone(),
        stopped,
    ))];
    follow_store(server, config.notify, Arc::clone(&stop_flag));
    tracing::info!("dns: listening on {addr} (udp and tcp)");
    Ok(Running {
        addr,
        stop,
        stop_flag,
        tasks,
    })
}

/// Binds UDP, then TCP on the same port (retrying when port 0 picked one TCP has taken).
async fn bind(listen: SocketAddr) -> Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(listen).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if listen.port() == 0 => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.expect("at least one try").into())
}

/// One UDP worker thread: plain blocking sockets, which beat an async task per datagram
/// for small request-response exchanges.
fn serve_udp(
    server: &Server,
    udp: &StdUdpSocket,
    rrl: Option<&Mutex<RateLimiter>>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65_535];
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match udp.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => {
                tracing::debug!("dns udp: {e}");
                continue;
            }
        };
        let Some(response) = server.handle(&buf[..len], Transport::Udp) else {
            continue;
        };
        let verdict = match rrl {
            Some(rrl) => rrl
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .check(peer.ip(), Instant::now()),
            None => Verdict::Send,
        };
        let out = match verdict {
            Verdict::Send => Some(response),
            Verdict::Slip => truncated(&response),
            Verdict::Drop => None,
        };
        if let Some(out) = out
            && let Err(e) = udp.send_to(&out, peer)
        {
            tracing::debug!("dns udp to {peer}: {e}");
        }
    }
}

async fn serve_tcp(
    server: Arc<Server>,
    tcp: TcpListener,
    config: Config,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(config.tcp_max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(x) => x,
                Err(e) => { tracing::debug!("dns tcp accept: {e}"); continue }
            },
            _ = stopped.changed() => return,
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(
                "dns tcp: refusing {peer}, {} connections open",
                config.tcp_max_connections
            );
            continue;
        };
        let (server, idle, stopped) = (Arc::clone(&server), config.tcp_idle, stopped.clone());
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                r = connection(server, stream, idle) => if let Err(e) = r {
                    tracing::debug!("dns tcp {peer}: {e}");
                },
                _ = wait_stop(stopped) => {}
            }
        });
    }
}

async fn wait_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// One TCP connection: length-prefixed messages (RFC 1035 §4.2.2) until idle or closed.
async fn connection(server: Arc<Server>, mut stream: TcpStream, idle: Duration) -> Result<()> {
    loop {
        let len = match tokio::time::timeout(idle, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            Ok(Err(_)) | Err(_) => return Ok(()),
        };
        let mut buf = vec![0u8; len];
        match tokio::time::timeout(idle, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return Ok(()),
        }
        let Some(response) = server.handle(&buf, Transport::Tcp) else {
            continue;
        };
        let Ok(len) = u16::try_from(response.len()) else {
            continue;
        };
        stream.write_u16(len).await?;
        stream.write_all(&response).await?;
    }
}

/// Reloads the zone whenever the store's branch moves, and NOTIFYs on a new serial.
fn follow_store(server: Arc<Server>, secondaries: Vec<SocketAddr>, stop: Arc<AtomicBool>) {
    let Some(site) = server.site.clone() else {
        return;
    };
    let events = site.store.watch();
    let mut notified = current_serial(&server);
    std::thread::Builder::new()
        .name("kith-dns-reload".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match events.recv_timeout(Duration::from_millis(100)) {
                    Ok(event) if event.name == site.branch => {
                        if let Err(e) = server.reload() {
                            tracing::warn!("dns: reloading the zone: {e}");
                        }
                    }
                    Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(_) => return,
                }
                let serial = current_serial(&server);
                if serial != notified {
                    notified = serial;
                    for zone in server.zones() {
                        notify::send(&zone, &secondaries);
                    }
                }
            }
        })
        .expect("spawning the dns reload thread");
}

fn current_serial(server: &Server) -> Option<u32> {
    server.zones().first().map(|z| z.serial())
}
