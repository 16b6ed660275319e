//! The TLS server configuration: rustls on the `ring` provider, no client certificates
//! (DAV clients sign in with a password), HTTP/1.1 over ALPN.

use std::sync::Arc;

pub use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// A server config presenting the certificates in `chain_pem` (leaf first) with the key
/// in `key_pem`, on ring's default provider.
pub fn server_config(chain_pem: &str, key_pem: &str) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    server_config_with(provider, chain_pem, key_pem)
}

/// [`server_config`] on another provider (a unikernel image's smaller one).
pub fn server_config_with(
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain_pem: &str,
    key_pem: &str,
) -> Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("reading the certificate: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Tls("no certificate in the PEM text".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| Error::Tls(format!("reading the private key: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
