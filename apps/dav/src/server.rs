//! The network shell: TCP, TLS and HTTP/1.1 (keep-alive) around [`Dav::handle`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::body::Body;
use crate::error::{Error, Result};
use crate::handler::{Dav, Request, refused};
use crate::kind::Refusal;

/// The largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long a client may take for its TLS handshake or a request's headers.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A running server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops accepting connections.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Listens on `listen` and serves `dav` over TLS until stopped.
pub async fn start(dav: Arc<Dav>, tls: Arc<ServerConfig>, listen: SocketAddr) -> Result<Running> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Io {
            op: "binding the DAV port",
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Io {
        op: "reading the DAV address",
        source,
    })?;
    let (stop, mut stopped) = oneshot::channel();
    let acceptor = TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => {
                        tokio::spawn(connection(acceptor.clone(), Arc::clone(&dav), tcp));
                    }
                    Err(e) => tracing::warn!("dav: accept: {e}"),
                },
                _ = &mut stopped => break,
            }
        }
    });
    tracing::info!("dav: listening on https://{addr}/");
    Ok(Running { addr, stop, task })
}

async fn connection(acceptor: TlsAcceptor, dav: Arc<Dav>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return tracing::debug!("dav: TLS handshake: {e}"),
        Err(_) => return tracing::debug!("dav: TLS handshake timed out"),
    };
    let service = service_fn(move |req| {
        let dav = Arc::clone(&dav);
        async move { Ok::<_, Infallible>(serve(&dav, req).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(TIMEOUT)
        .serve_connection(TokioIo::new(tls), service)
        .await;
    if let Err(e) = served {
        tracing::debug!("dav: connection: {e}");
    }
}

async fn serve(dav: &Dav, req: http::Request<Incoming>) -> http::Response<Body> {
    let (parts, body) = req.into_parts();
    let body: Bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let r = Refusal::plain(http::StatusCode::PAYLOAD_TOO_LARGE, "the body is too large");
            return refused(&r);
        }
    };
    let request = Request {
        method: parts.method,
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
    };
    let (method, path) = (request.method.clone(), request.path.clone());
    let response = dav.handle(request).await;
    tracing::debug!("dav: {method} {path} -> {}", response.status().as_u16());
    response
}
