//! Keys and certificates: the user's root, and what it issues.
//!
//! The user root is an Ed25519 key with a self-signed CA certificate. It issues, locally
//! and with [`rcgen`], one certificate per device (named `<device>.<zone>`) and one per
//! service; each is usable for both ends of a mutual-TLS link. Devices also get a TSIG
//! secret for signed DNS updates, and the zone a DKIM key. Every key is drawn from the
//! [`Provider`]'s entropy and every validity period from its clock.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ED25519, SerialNumber,
};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject as _;
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::provider::Provider;

/// The PKCS#8 v1 header of an Ed25519 private key, followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// How long the root certificate is valid.
const ROOT_YEARS: i64 = 20;
/// How long device and service certificates are valid.
const LEAF_YEARS: i64 = 5;

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM). Never goes into the store.
    pub key_pem: String,
}

/// A fresh Ed25519 key pair from the provider's entropy.
pub fn ed25519_key(provider: &Provider) -> Result<KeyPair> {
    let seed: [u8; 32] = provider.random();
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(der),
        &PKCS_ED25519,
    )?)
}

/// Reads a PKCS#8 PEM private key.
pub fn key_from_pem(pem: &str) -> Result<KeyPair> {
    Ok(KeyPair::from_pem(pem)?)
}

/// Makes the user root: a new key and its self-signed CA certificate for `zone`.
pub fn new_root(zone: &str, provider: &Provider) -> Result<Issued> {
    let key = ed25519_key(provider)?;
    let mut params = base_params(Vec::new(), provider, ROOT_YEARS)?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Kith root of {zone}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a certificate for the DNS `names` (the first is the subject), signed by the root.
pub fn issue(
    root_cert_pem: &str,
    root_key_pem: &str,
    names: &[String],
    provider: &Provider,
) -> Result<Issued> {
    issue_for(
        root_cert_pem,
        root_key_pem,
        names,
        ed25519_key(provider)?,
        provider,
    )
}

/// Issues a certificate for an existing key (so TLSA records of its public key stay
/// true), for `names` (DNS names or IP addresses; the first is the subject).
pub fn issue_for(
    root_cert_pem: &str,
    root_key_pem: &str,
    names: &[String],
    key: KeyPair,
    provider: &Provider,
) -> Result<Issued> {
    let root_key = key_from_pem(root_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(root_cert_pem, &root_key)?;
    let mut params = base_params(names.to_vec(), provider, LEAF_YEARS)?;
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn base_params(names: Vec<String>, provider: &Provider, years: i64) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(names)?;
    let now = OffsetDateTime::from((provider.now)());
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(365 * years);
    let mut serial: [u8; 16] = provider.random();
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}

/// The DER of the first certificate in a PEM text.
pub fn cert_der(pem: &str) -> Result<rustls::pki_types::CertificateDer<'static>> {
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| Error::Cert(format!("reading a PEM certificate: {e}")))
}

/// A certificate's serial number in lower-case hex.
pub fn serial_hex(der: &[u8]) -> Result<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::Cert(format!("parsing a certificate: {e}")))?;
    Ok(hex(cert.raw_serial()))
}

/// The DNS names a certificate is for (its subject alternative names).
pub fn dns_names(der: &[u8]) -> Result<Vec<String>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::Cert(format!("parsing a certificate: {e}")))?;
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Ok(Vec::new());
    };
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
            _ => None,
        })
        .collect())
}

/// The TLSA 3 1 1 association data of a certificate: SHA-256 of its SubjectPublicKeyInfo.
pub fn tlsa_spki_sha256(der: &[u8]) -> Result<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::Cert(format!("parsing a certificate: {e}")))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    Ok(ring::digest::digest(&ring::digest::SHA256, spki)
        .as_ref()
        .to_vec())
}

/// A new 256-bit TSIG secret.
pub fn tsig_secret(provider: &Provider) -> Vec<u8> {
    provider.random::<32>().to_vec()
}

/// The DKIM TXT record text of an Ed25519 key (RFC 8463).
pub fn dkim_record(key: &KeyPair) -> String {
    format!(
        "v=DKIM1; k=ed25519; p={}",
        BASE64.encode(key.public_key_raw())
    )
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_issues_a_leaf_with_its_names() {
        let provider = Provider::system();
        let root = new_root("alice.home.arpa", &provider).unwrap();
        let names = vec!["laptop.alice.home.arpa".to_string()];
        let leaf = issue(&root.cert_pem, &root.key_pem, &names, &provider).unwrap();
        let der = cert_der(&leaf.cert_pem).unwrap();
        assert_eq!(serial_hex(&der).unwrap().len(), 32);
        assert_eq!(tlsa_spki_sha256(&der).unwrap().len(), 32);
        assert!(key_from_pem(&leaf.key_pem).is_ok());
    }
}
