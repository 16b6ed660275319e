//! The SMTP services: TCP, STARTTLS or implicit TLS, and delivery into the store, one
//! thread per connection. The same server runs the inbound port and the submission ports;
//! the session's [`Mode`] makes the difference.
//!
//! Delivery adds `Received:` (RFC 5321, section 4.4) and `Authentication-Results:`
//! headers in front of the bytes the client sent, signs the copy for other domains with
//! DKIM, and hands both to the [`super::writer`], which puts the message in each local
//! recipient's INBOX with its UID (this service is the replica that serves the mailbox),
//! queues it for the remote ones ([`crate::queue`]) and commits; only then does the
//! client hear `250`. A crash before the commit loses nothing the client was told was
//! kept.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kith_store::Store;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::auth::{Checker, Disposition};
use super::session::{Action, Config, Directory, Envelope, Failure, Recipient, Session};
use super::writer::{Busy, Delivery, INBOX, JUNK, Writer};
use crate::Accounts;
use crate::queue::Dkim;

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
    /// TLS for STARTTLS and implicit TLS.
    pub tls: Arc<ServerConfig>,
    /// Session settings.
    pub config: Config,
    /// The accounts users sign in with (submission).
    pub accounts: Arc<dyn Accounts>,
    /// Signs mail queued for other domains.
    pub dkim: Option<Arc<Dkim>>,
    /// Checks SPF, DKIM and DMARC of inbound mail (none: no `Authentication-Results`).
    pub checker: Option<Arc<Checker>>,
    /// Commits deliveries, shared by every listener on the store.
    pub writer: Arc<Writer>,
}

/// Whether a connection starts in TLS (port 465) or may upgrade with STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// STARTTLS when the session offers it (ports 25 and 587).
    Upgrade,
    /// TLS from the first byte (port 465, RFC 8314).
    Implicit,
}

/// Binds `listen` and serves in background threads; returns the bound address.
pub fn start(service: Service, listen: SocketAddr, tls: Tls) -> std::io::Result<SocketAddr> {
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
                        if let Err(e) = serve(&service, tcp, tls) {
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

fn serve(service: &Service, tcp: TcpStream, tls: Tls) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(TIMEOUT))?;
    tcp.set_write_timeout(Some(TIMEOUT))?;
    let peer = tcp.peer_addr()?.ip();
    let mut conn = Conn::Plain(tcp);
    if tls == Tls::Implicit {
        conn = conn.start_tls(Arc::clone(&service.tls))?;
    }
    let mut session = Session::new(service.config.clone(), tls == Tls::Implicit);
    conn.send(&session.banner())?;
    let is_user = Users(service);
    let mut buffer = vec![0u8; 64 << 10];
    let mut input: Vec<u8> = Vec::new();
    let mut busy = None;
    loop {
        let mut actions: VecDeque<Action> = session.feed(&input, &is_user).into();
        input.clear();
        track(&mut busy, &session, &service.writer);
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Send(bytes) => conn.send(&bytes)?,
                Action::Close => return Ok(()),
                Action::StartTls => conn = conn.start_tls(Arc::clone(&service.tls))?,
                Action::Deliver(envelope) => {
                    let result = deliver(service, &envelope, peer);
                    let reply = session.delivered(result);
                    track(&mut busy, &session, &service.writer);
                    conn.send(&reply)?;
                    actions.extend(session.feed(&[], &is_user));
                    track(&mut busy, &session, &service.writer);
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

/// Keeps `busy` held exactly while the session is mid-transaction, so the writer knows
/// whose messages are coming.
fn track(busy: &mut Option<Busy>, session: &Session, writer: &Writer) {
    match (session.in_transaction(), busy.is_some()) {
        (true, false) => *busy = Some(writer.busy()),
        (false, true) => *busy = None,
        _ => {}
    }
}

/// The service's users: mailboxes in the store, passwords from the accounts.
struct Users<'a>(&'a Service);

impl Directory for Users<'_> {
    /// Whether `user` has mail in the store (a folder under `/mail/`).
    fn is_user(&self, user: &str) -> bool {
        let store = &self.0.store;
        let Ok(root) = store.head_tree(&self.0.branch) else {
            return false;
        };
        matches!(
            store.find(&root, &format!("/mail/{user}")),
            Ok(Some((kith_store::EntryKind::Dir, _)))
        )
    }

    fn authenticate(&self, user: &str, password: &str) -> bool {
        self.0.accounts.verify(user, password)
    }
}

/// Hands the message to the writer, which puts it in every local recipient's INBOX with
/// its UID and queues it, DKIM-signed, for the remote ones; returns the commit's short
/// hash once the message is in the store.
pub fn deliver(service: &Service, envelope: &Envelope, peer: IpAddr) -> Result<String, Failure> {
    let (stored, disposition) = with_trace(service, envelope, peer);
    let folder = match disposition {
        Disposition::Deliver => INBOX,
        Disposition::Quarantine => JUNK,
        Disposition::Reject(domain) => return Err(Failure::Refused(domain)),
    };
    let remote = envelope
        .to
        .iter()
        .any(|r| matches!(r, Recipient::Remote(_)));
    let outgoing = match (&service.dkim, remote) {
        (Some(dkim), true) => (dkim.sign(&stored)).map_err(|e| Failure::Store(e.to_string()))?,
        (None, true) => stored.clone(),
        (_, false) => Vec::new(),
    };
    service
        .writer
        .deliver(Delivery {
            folder,
            to: envelope.to.clone(),
            from: envelope.from.clone(),
            user: envelope.user.clone(),
            sent: envelope.data.clone(),
            stored,
            outgoing,
        })
        .map_err(Failure::Store)
}

/// The message with `Received:` and `Authentication-Results:` headers in front, and what
/// the checks say to do with it.
fn with_trace(service: &Service, envelope: &Envelope, peer: IpAddr) -> (Vec<u8>, Disposition) {
    let with = match (envelope.tls, envelope.user.is_some()) {
        (true, true) => "ESMTPSA",
        (true, false) => "ESMTPS",
        (false, _) => "ESMTP",
    };
    let when = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let mut header = format!(
        "Received: from {} ([{peer}]) by {} with {with}; {when}\r\n",
        envelope.helo.replace(['\r', '\n'], ""),
        service.config.host
    );
    let mut disposition = Disposition::Deliver;
    if let Some(checker) = &service.checker {
        let (checked, asked) = checker.check(envelope, peer);
        header.push_str(&checked);
        disposition = asked;
    }
    let mut out = header.into_bytes();
    out.extend_from_slice(&envelope.data);
    (out, disposition)
}
