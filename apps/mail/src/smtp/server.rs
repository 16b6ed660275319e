//! The inbound SMTP service: TCP, STARTTLS, and delivery into the store, one thread per
//! connection.
//!
//! Delivery adds a `Received:` trace header (RFC 5321, section 4.4) in front of the bytes
//! the client sent, puts the message in each recipient's INBOX, gives it its UID (this
//! service is the replica that serves the mailbox) and commits; only then does the client
//! hear `250`. A crash before the commit loses nothing the client was told was kept.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kith_store::Store;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::session::{Action, Config, Envelope, Session};
use crate::mailbox::{Error, Mailbox};

/// How long a client may stay silent.
const TIMEOUT: Duration = Duration::from_secs(300);
/// Most connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// What the service needs: the store branch it delivers to, its TLS configuration and
/// the session settings.
#[derive(Clone)]
pub struct Service {
    /// The store.
    pub store: Store,
    /// The branch mail lands on.
    pub branch: String,
    /// The author of delivery commits.
    pub author: String,
    /// TLS for STARTTLS.
    pub tls: Arc<ServerConfig>,
    /// Session settings.
    pub config: Config,
}

/// Binds `listen` and serves in background threads; returns the bound address.
pub fn start(service: Service, listen: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("smtp-accept".into())
        .spawn(move || {
            for tcp in listener.incoming().flatten() {
                if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    let _ = (&tcp).write_all(b"421 4.7.0 Too many connections, try later\r\n");
                    continue;
                }
                active.fetch_add(1, Ordering::SeqCst);
                let (service, active) = (service.clone(), Arc::clone(&active));
                let _ = std::thread::Builder::new()
                    .name("smtp".into())
                    .spawn(move || {
                        if let Err(e) = serve(&service, tcp) {
                            tracing::info!("smtp connection ended: {e}");
                        }
                        active.fetch_sub(1, Ordering::SeqCst);
                    });
            }
        })?;
    Ok(addr)
}

/// The connection, before and after STARTTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buffer),
            Conn::Tls(s) => s.read(buffer),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(bytes),
            Conn::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        }
    }

    fn start_tls(self, config: Arc<ServerConfig>) -> std::io::Result<Conn> {
        let Conn::Plain(mut tcp) = self else {
            return Ok(self);
        };
        let mut conn = ServerConnection::new(config).map_err(std::io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        Ok(Conn::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }
}

fn serve(service: &Service, tcp: TcpStream) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(TIMEOUT))?;
    tcp.set_write_timeout(Some(TIMEOUT))?;
    let mut conn = Conn::Plain(tcp);
    let mut session = Session::new(service.config.clone(), false);
    conn.send(&session.banner())?;
    let is_user = |user: &str| has_mail(service, user);
    let mut buffer = vec![0u8; 64 << 10];
    let mut input: Vec<u8> = Vec::new();
    loop {
        let mut actions: VecDeque<Action> = session.feed(&input, &is_user).into();
        input.clear();
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Send(bytes) => conn.send(&bytes)?,
                Action::Close => return Ok(()),
                Action::StartTls => conn = conn.start_tls(Arc::clone(&service.tls))?,
                Action::Deliver(envelope) => {
                    let result = deliver(service, &envelope).map_err(|e| e.to_string());
                    conn.send(&session.delivered(result))?;
                    actions.extend(session.feed(&[], &is_user));
                }
            }
        }
        if session.is_closed() {
            return Ok(());
        }
        let n = conn.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&buffer[..n]);
    }
}

/// Whether `user` has mail in the store (a folder under `/mail/`).
fn has_mail(service: &Service, user: &str) -> bool {
    let Ok(root) = service.store.head_tree(&service.branch) else {
        return false;
    };
    matches!(
        service.store.find(&root, &format!("/mail/{user}")),
        Ok(Some((kith_store::EntryKind::Dir, _)))
    )
}

/// Puts the message in every recipient's INBOX with its UID, as one commit; returns the
/// commit's short hash.
pub fn deliver(service: &Service, envelope: &Envelope) -> Result<String, Error> {
    let bytes = with_trace(service, envelope);
    for attempt in 0.. {
        let mut tx = service.store.transaction(&service.branch)?;
        for user in &envelope.to {
            let inbox = Mailbox::of(user, "INBOX")?;
            let seconds = (kith_store::now_millis() / 1000) as u32;
            inbox.create(&service.store, &mut tx, seconds)?;
            inbox.add(&mut tx, &bytes, &Default::default())?;
            inbox.assign_uids(&service.store, &mut tx)?;
        }
        let message = format!("mail: deliver to {}", envelope.to.join(", "));
        match tx.commit(&service.author, &message) {
            Ok(commit) => return Ok(commit.map(|h| h.short()).unwrap_or_default()),
            Err(kith_store::Error::BranchMoved { .. }) if attempt < 10 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}

/// The message with a `Received:` header in front.
fn with_trace(service: &Service, envelope: &Envelope) -> Vec<u8> {
    let with = if envelope.tls { "ESMTPS" } else { "ESMTP" };
    let when = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let header = format!(
        "Received: from {} by {} with {with}; {when}\r\n",
        envelope.helo.replace(['\r', '\n'], ""),
        service.config.host
    );
    let mut out = header.into_bytes();
    out.extend_from_slice(&envelope.data);
    out
}
