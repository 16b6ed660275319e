//! Links between Kith parts: TCP with mutual TLS, each side proving a certificate from
//! the user's root that is not revoked.
//!
//! [`Credentials`] are what one replica presents and trusts: the root certificate (kept
//! in its local state when it joined with a bundle, else read from the store), its own
//! certificate and key, and the revocation list of the store. [`connect`] dials a peer
//! and [`accept`] answers one; both finish the handshake before returning, so a peer
//! that fails verification never gets to send a byte of protocol. Plain blocking
//! sockets, like [`crate::resolve`]: the sync protocol runs one thread per link.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

pub use rustls::ServerConfig;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection, StreamOwned};

use crate::enroll::{Revoked, Site, device_path, service_path};
use crate::error::{Error, Result};
use crate::local;
use crate::verify::{self, Revocations};

/// The root certificate a replica that joined with a bundle keeps in its local state.
pub const ROOT_CERT: &str = "root.pem";
/// This device's certificate, kept in the local state by a replica that joined with a
/// bundle (a partial replica may not hold `/identity/devices/`).
pub const DEVICE_CERT: &str = "device.pem";

/// A client's end of a link.
pub type ClientStream = StreamOwned<ClientConnection, TcpStream>;
/// A server's end of a link.
pub type ServerStream = StreamOwned<ServerConnection, TcpStream>;

/// What one replica presents and trusts.
#[derive(Clone)]
pub struct Credentials {
    root_pem: String,
    cert_pem: String,
    key_pem: String,
    revocations: Revocations,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

impl Credentials {
    /// Credentials from their parts.
    pub fn new(root_pem: &str, cert_pem: &str, key_pem: &str, revoked: Revoked) -> Credentials {
        Credentials {
            root_pem: root_pem.into(),
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            revocations: Revocations::new(revoked),
        }
    }

    /// This device's credentials on `site`.
    pub fn of_device(site: &Site, device: &str) -> Result<Credentials> {
        let key = site.local.require(local::DEVICE_KEY, "this device's key")?;
        let cert = match site.local.read(DEVICE_CERT)? {
            Some(pem) => pem,
            None => stored(site, &device_path(device), "this device's certificate")?,
        };
        Credentials::from_site(site, &cert, &key)
    }

    /// What a server of `service` presents: the service's certificate when this replica
    /// holds its key (the one that created the identity), else this device's own.
    pub fn of_service(site: &Site, service: &str, device: &str) -> Result<Credentials> {
        match site.local.read(&local::service_key(service))? {
            Some(key) => Credentials::of_service_key(site, service, &key),
            None => Credentials::of_device(site, device),
        }
    }

    /// What a server of `service` presents when its key is held outside this replica's
    /// local state (on a unikernel's disk): the stored service certificate with `key`.
    pub fn of_service_key(site: &Site, service: &str, key: &[u8]) -> Result<Credentials> {
        let cert = stored(site, &service_path(service), "the service certificate")?;
        Credentials::from_site(site, &cert, key)
    }

    fn from_site(site: &Site, cert: &[u8], key: &[u8]) -> Result<Credentials> {
        let root = match site.local.read(ROOT_CERT)? {
            Some(pem) => String::from_utf8_lossy(&pem).into_owned(),
            None => site.root_cert()?,
        };
        let revoked = site.revoked().unwrap_or_default();
        Ok(Credentials::new(
            &root,
            &String::from_utf8_lossy(cert),
            &String::from_utf8_lossy(key),
            revoked,
        ))
    }

    /// The local-state files a new replica of this device keeps them in (key,
    /// certificate, root), as `(name, bytes)` for [`crate::local::Local::write`].
    pub fn local_files(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (local::DEVICE_KEY.into(), self.key_pem.clone().into_bytes()),
            (DEVICE_CERT.into(), self.cert_pem.clone().into_bytes()),
            (ROOT_CERT.into(), self.root_pem.clone().into_bytes()),
        ]
    }

    /// Replaces the revocation list (links made later see it).
    pub fn set_revoked(&self, revoked: Revoked) {
        self.revocations.set(revoked);
    }

    /// The client side's TLS configuration.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let config = verify::client_config(
            &self.root_pem,
            self.revocations.clone(),
            &self.cert_pem,
            &self.key_pem,
        )?;
        Ok(Arc::new(config))
    }

    /// A server configuration for clients outside the user's devices (mail from the
    /// internet, apps): this certificate, no client certificate asked for.
    pub fn public_server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        self.public_server_config_with(provider)
    }

    /// [`Credentials::public_server_config`] on another provider (a unikernel image's
    /// [`verify::ed25519_provider`], which leaves the other algorithms' code out).
    pub fn public_server_config_with(
        &self,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Arc<rustls::ServerConfig>> {
        let config = verify::public_server_config(provider, &self.cert_pem, &self.key_pem)?;
        Ok(Arc::new(config))
    }

    /// The server side's TLS configuration.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let config = verify::server_config(
            &self.root_pem,
            self.revocations.clone(),
            &self.cert_pem,
            &self.key_pem,
        )?;
        Ok(Arc::new(config))
    }
}

fn stored(site: &Site, path: &str, what: &str) -> Result<Vec<u8>> {
    let root = site.store.head_tree(&site.branch)?;
    site.store
        .get(&root, path)?
        .ok_or_else(|| Error::Cert(format!("{what} is not in the store at {path}")))
}

/// Dials `host:port` and completes a mutual-TLS handshake; reads and writes then time
/// out after `timeout` of silence.
pub fn connect(
    host: &str,
    port: u16,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<ClientStream> {
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|e| Error::Cert(format!("{host} is not a host name or address: {e}")))?
        .to_owned();
    let tcp = dial(host, port, timeout)?;
    let connection = ClientConnection::new(config, name)
        .map_err(|e| Error::Cert(format!("starting TLS: {e}")))?;
    handshake(StreamOwned::new(connection, tcp))
}

/// Completes the server side of a mutual-TLS handshake on an accepted connection.
/// Small writes go out at once (no Nagle), as on the dialling side: the protocol is
/// request and answer, and Nagle would hold an answer for the peer's delayed ACK.
pub fn accept(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
) -> Result<ServerStream> {
    set_timeouts(&tcp, timeout)?;
    tcp.set_nodelay(true)?;
    let connection =
        ServerConnection::new(config).map_err(|e| Error::Cert(format!("starting TLS: {e}")))?;
    handshake(StreamOwned::new(connection, tcp))
}

fn dial(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let mut last = None;
    for addr in (host.trim_start_matches('[').trim_end_matches(']'), port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => {
                set_timeouts(&tcp, timeout)?;
                tcp.set_nodelay(true)?;
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::other(format!("{host} has no address")))
        .into())
}

fn set_timeouts(tcp: &TcpStream, timeout: Duration) -> Result<()> {
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    Ok(())
}

fn handshake<C, D>(mut stream: StreamOwned<C, TcpStream>) -> Result<StreamOwned<C, TcpStream>>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| Error::Cert(format!("TLS handshake: {e}")))?;
    }
    Ok(stream)
}
