//! The milestone service: an HTTPS server on tokio + hyper + rustls (ring),
//! with a self-signed certificate made at start-up. It answers every request
//! with a short text. `tests/run.sh` curls it through QEMU's hostfwd.

#[cfg(target_os = "hermit")]
use kith_unikernel as _;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = format!(
        "hello from kith-unikernel over https: {}\n",
        request.uri().path()
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}

fn tls_config() -> Result<ServerConfig, BoxError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn serve(port: u16) -> Result<(), BoxError> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config()?));
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    println!("https: listening on port {port}");
    loop {
        let (stream, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let result = async {
                let tls = acceptor.accept(stream).await?;
                http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service_fn(answer))
                    .await?;
                Ok::<_, BoxError>(())
            };
            if let Err(e) = result.await {
                eprintln!("https: {peer}: {e}");
            }
        });
    }
}

fn main() -> Result<(), BoxError> {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(443);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(serve(port))
}
