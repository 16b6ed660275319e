//! rustls verifiers for Kith-to-Kith links: only certificates that chain to the user's
//! root and are not revoked.
//!
//! Both wrap rustls' WebPKI verifiers (chain, validity, names, signatures) built with the
//! user root as the only trust anchor, then refuse any end-entity certificate whose
//! serial is in the revocation list. The list is a shared [`Revocations`] handle, so a
//! service can refresh it when `/identity/revoked` changes without new TLS configs.
//! [`client_config`] and [`server_config`] build mutual-TLS configs on the ring provider.
//! A server dialled by IP address (`kith://127.0.0.1:7447`) is checked against the
//! names its own certificate carries: the chain to the root is the proof.

use std::sync::{Arc, RwLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};

use crate::enroll::Revoked;
use crate::error::{Error, Result};
use crate::keys;

/// The revocation list the verifiers consult; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Revocations(Arc<RwLock<Revoked>>);

impl Revocations {
    /// A handle holding `revoked`.
    pub fn new(revoked: Revoked) -> Revocations {
        Revocations(Arc::new(RwLock::new(revoked)))
    }

    /// Replaces the list (e.g. after the store's `/identity/revoked` changed).
    pub fn set(&self, revoked: Revoked) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = revoked;
    }

    fn check(&self, end_entity: &CertificateDer<'_>) -> std::result::Result<(), rustls::Error> {
        let serial = keys::serial_hex(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let list = self.0.read().unwrap_or_else(|e| e.into_inner());
        if list.has_serial(&serial) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(())
    }
}

/// The cryptography Kith's own keys need, and no more: Ed25519 certificates (every key
/// Kith issues), X25519 key exchange, and the TLS 1.3 and 1.2 cipher suites. Mutual TLS
/// between Kith parts uses it; a unikernel image serves with it too, since ring's P-256,
/// P-384 and RSA code, unreachable through it, is left out of the image (about a tenth
/// of a DAV image).
pub fn ed25519_provider() -> Arc<CryptoProvider> {
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::crypto::ring::{ALL_CIPHER_SUITES, kx_group};
    static ED25519_ONLY: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
        all: &[webpki::ring::ED25519],
        mapping: &[(rustls::SignatureScheme::ED25519, &[webpki::ring::ED25519])],
    };
    Arc::new(CryptoProvider {
        cipher_suites: ALL_CIPHER_SUITES.to_vec(),
        kx_groups: vec![kx_group::X25519],
        signature_verification_algorithms: ED25519_ONLY,
        secure_random: &Ed25519Keys,
        key_provider: &Ed25519Keys,
    })
}

/// Loads Ed25519 private keys only, and draws randomness from ring (see
/// [`ed25519_provider`]).
#[derive(Debug)]
struct Ed25519Keys;

impl rustls::crypto::SecureRandom for Ed25519Keys {
    fn fill(&self, buf: &mut [u8]) -> std::result::Result<(), rustls::crypto::GetRandomFailed> {
        use ring::rand::SecureRandom as _;
        ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| rustls::crypto::GetRandomFailed)
    }
}

impl rustls::crypto::KeyProvider for Ed25519Keys {
    fn load_private_key(
        &self,
        key: PrivateKeyDer<'static>,
    ) -> std::result::Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        match key {
            PrivateKeyDer::Pkcs8(pkcs8) => rustls::crypto::ring::sign::any_eddsa_type(&pkcs8),
            _ => Err(rustls::Error::General(
                "Kith keys are Ed25519 in PKCS#8; this key is not".into(),
            )),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    ed25519_provider()
}

fn roots(root_pem: &str) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    roots
        .add(keys::cert_der(root_pem)?)
        .map_err(|e| Error::Cert(format!("the root certificate: {e}")))?;
    Ok(Arc::new(roots))
}

/// Verifies servers' certificates for a Kith client.
#[derive(Debug)]
pub struct KithServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    revoked: Revocations,
}

/// Verifies clients' certificates for a Kith server (a certificate is required).
#[derive(Debug)]
pub struct KithClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Revocations,
}

/// A server verifier trusting only `root_pem`, refusing what `revoked` lists.
pub fn server_verifier(root_pem: &str, revoked: Revocations) -> Result<Arc<KithServerVerifier>> {
    let inner = WebPkiServerVerifier::builder_with_provider(roots(root_pem)?, provider())
        .build()
        .map_err(|e| Error::Cert(e.to_string()))?;
    Ok(Arc::new(KithServerVerifier { inner, revoked }))
}

/// A client verifier trusting only `root_pem`, refusing what `revoked` lists.
pub fn client_verifier(root_pem: &str, revoked: Revocations) -> Result<Arc<KithClientVerifier>> {
    let inner = WebPkiClientVerifier::builder_with_provider(roots(root_pem)?, provider())
        .build()
        .map_err(|e| Error::Cert(e.to_string()))?;
    Ok(Arc::new(KithClientVerifier { inner, revoked }))
}

impl ServerCertVerifier for KithServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let named;
        let server_name = match server_name {
            ServerName::IpAddress(_) => {
                named = certificate_name(end_entity)?;
                &named
            }
            name => name,
        };
        let verified =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        self.revoked.check(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ClientCertVerifier for KithClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        self.revoked.check(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The first DNS name a certificate is for: what a peer dialled by address is checked
/// against, since an address names no certificate of the user's (the chain to the
/// user's root, which only the user's own devices and services hold, is what counts).
fn certificate_name(
    end_entity: &CertificateDer<'_>,
) -> std::result::Result<ServerName<'static>, rustls::Error> {
    keys::dns_names(end_entity)
        .ok()
        .and_then(|names| names.into_iter().next())
        .and_then(|name| ServerName::try_from(name).ok())
        .ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))
}

fn chain_and_key(
    cert_pem: &str,
    key_pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| Error::Cert(format!("reading a private key: {e}")))?;
    Ok((vec![keys::cert_der(cert_pem)?], key))
}

/// A mutual-TLS client config: trusts only the user root, presents this certificate.
pub fn client_config(
    root_pem: &str,
    revoked: Revocations,
    cert_pem: &str,
    key_pem: &str,
) -> Result<ClientConfig> {
    let (chain, key) = chain_and_key(cert_pem, key_pem)?;
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Cert(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(server_verifier(root_pem, revoked)?)
        .with_client_auth_cert(chain, key)
        .map_err(|e| Error::Cert(e.to_string()))
}

/// A mutual-TLS server config: requires a client certificate from the user root.
pub fn server_config(
    root_pem: &str,
    revoked: Revocations,
    cert_pem: &str,
    key_pem: &str,
) -> Result<ServerConfig> {
    let (chain, key) = chain_and_key(cert_pem, key_pem)?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Cert(e.to_string()))?
        .with_client_cert_verifier(client_verifier(root_pem, revoked)?)
        .with_single_cert(chain, key)
        .map_err(|e| Error::Cert(e.to_string()))
}

/// A TLS server config on `provider` that presents this certificate and asks for none
/// (for clients that are not the user's devices: other mail servers, apps).
pub fn public_server_config(
    provider: Arc<CryptoProvider>,
    cert_pem: &str,
    key_pem: &str,
) -> Result<ServerConfig> {
    let (chain, key) = chain_and_key(cert_pem, key_pem)?;
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Cert(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::Cert(e.to_string()))
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::PrivatePkcs8KeyDer;

    use super::*;

    fn pkcs8(alg: &'static rcgen::SignatureAlgorithm) -> PrivateKeyDer<'static> {
        let pair = rcgen::KeyPair::generate_for(alg).unwrap();
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pair.serialize_der()))
    }

    #[test]
    fn the_ed25519_provider_loads_kith_keys_and_refuses_others() {
        let keys = ed25519_provider().key_provider;
        assert!(keys.load_private_key(pkcs8(&rcgen::PKCS_ED25519)).is_ok());
        let p256 = keys.load_private_key(pkcs8(&rcgen::PKCS_ECDSA_P256_SHA256));
        assert!(p256.is_err());
    }
}
