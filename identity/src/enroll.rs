//! Creating the identity, enrolling and revoking devices.
//!
//! What each step writes to the synced store (public) and to the replica's [`Local`]
//! state (secret):
//!
//! | store | local |
//! | --- | --- |
//! | `/identity/origin`, `/identity/root.pem` | `root.key` |
//! | `/identity/devices/<name>.pem` | `device.key` (this device only) |
//! | `/identity/services/<service>.pem` | `services/<service>.key` |
//! | `/identity/tsig/<name>`: key name and algorithm | `tsig/<name>.key`: the secret |
//! | `/identity/zone/<owner>` (see [`crate::zone`]) | `dkim.key` |
//! | `/identity/revoked`: `<serial> <name>` lines | |

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hickory_proto::rr::Name;
use kith_store::{Hash, Store};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::{self, Issued};
use crate::local::{self, Local};
use crate::provider::Provider;
use crate::zone::{self, ORIGIN_PATH};

/// The root certificate in the store.
pub const ROOT_PATH: &str = "/identity/root.pem";
/// The revocation list in the store.
pub const REVOKED_PATH: &str = "/identity/revoked";
/// The TSIG algorithm every device key uses.
pub const TSIG_ALGORITHM: &str = "hmac-sha256";
/// The DKIM selector of the zone's key.
pub const DKIM_SELECTOR: &str = "kith";

/// A service of the suite: its certificate's name, SRV records and TLS ports.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    /// The service name (`mail`, `dav`, `sync`, `dns`).
    pub name: &'static str,
    /// SRV owner labels (relative to the zone) and the port each names.
    pub srv: &'static [(&'static str, u16)],
    /// Ports whose TLSA records carry this service's certificate.
    pub tls_ports: &'static [u16],
}

/// The services the default zone publishes (RFC 6186 for mail, RFC 6764 for DAV).
pub const SERVICES: &[Service] = &[
    Service {
        name: "mail",
        srv: &[
            ("_submissions._tcp", 465),
            ("_submission._tcp", 587),
            ("_imaps._tcp", 993),
        ],
        tls_ports: &[25, 465, 587, 993],
    },
    Service {
        name: "dav",
        srv: &[("_caldavs._tcp", 443), ("_carddavs._tcp", 443)],
        tls_ports: &[443],
    },
    Service {
        name: "sync",
        srv: &[("_kith-sync._tcp", 7447)],
        tls_ports: &[7447],
    },
    // The name server publishes nothing of its own; its certificate is what the DNS
    // unikernel syncs its replica with.
    Service {
        name: "dns",
        srv: &[],
        tls_ports: &[],
    },
];

/// Where identity operations read and write: a store branch and the local state.
#[derive(Clone)]
pub struct Site {
    /// The store.
    pub store: Store,
    /// The branch holding the identity.
    pub branch: String,
    /// This replica's secrets.
    pub local: Local,
    /// Time and entropy.
    pub provider: Provider,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Site({} at {:?})", self.branch, self.local)
    }
}

/// A TSIG key of an enrolled device.
#[derive(Clone, Serialize, Deserialize)]
pub struct TsigKey {
    /// The device it belongs to.
    pub device: String,
    /// The key name (`<device>.<zone>.`).
    pub name: String,
    /// The algorithm, `hmac-sha256`.
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TsigKey({} {})", self.name, self.algorithm)
    }
}

impl TsigKey {
    /// The secret bytes.
    pub fn secret_bytes(&self) -> Result<Vec<u8>> {
        BASE64
            .decode(&self.secret)
            .map_err(|e| Error::Cert(format!("TSIG secret of {}: {e}", self.device)))
    }
}

/// A device's enrolment file: everything it needs to join, in one JSON document.
#[derive(Clone, Serialize, Deserialize)]
pub struct Bundle {
    /// The user's zone.
    pub zone: String,
    /// The device's name.
    pub device: String,
    /// Its host name in the zone.
    pub host: String,
    /// Its certificate (PEM).
    pub certificate: String,
    /// Its private key (PKCS#8 PEM).
    pub key: String,
    /// The user's root certificate (PEM), the only trust anchor.
    pub root_certificate: String,
    /// Its TSIG key for DNS updates.
    pub tsig: TsigKey,
    /// The zone's name servers' host names and addresses.
    pub nameservers: Vec<(String, Vec<IpAddr>)>,
    /// The SRV names of the user's services (sync, mail, DAV).
    pub services: Vec<String>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bundle({} in {})", self.device, self.zone)
    }
}

impl Site {
    /// A site on the store in `store_dir` (the local state is `store_dir/local`).
    pub fn new(store: Store, branch: &str, store_dir: &std::path::Path) -> Site {
        Site {
            store,
            branch: branch.to_string(),
            local: Local::new(store_dir),
            provider: Provider::system(),
        }
    }

    fn head_tree(&self) -> Result<Hash> {
        Ok(self.store.head_tree(&self.branch)?)
    }

    /// The zone's name; fails if there is no identity.
    pub fn origin(&self) -> Result<Name> {
        zone::read_origin(&self.store, &self.head_tree()?)?.ok_or(Error::NoIdentity)
    }

    /// The root certificate (PEM).
    pub fn root_cert(&self) -> Result<String> {
        let pem = self
            .store
            .get(&self.head_tree()?, ROOT_PATH)?
            .ok_or(Error::NoIdentity)?;
        Ok(String::from_utf8_lossy(&pem).into_owned())
    }

    /// Creates the identity: root, this device, service certificates, DKIM key and the
    /// default zone, in one commit by `device`.
    pub fn create(&self, zone: &str, device: &str, addresses: &[IpAddr]) -> Result<Hash> {
        check_device_name(device)?;
        let root = self.head_tree()?;
        if let Some(origin) = zone::read_origin(&self.store, &root)? {
            return Err(Error::IdentityExists(origin.to_string()));
        }
        let origin = fqdn(zone)?;
        let p = &self.provider;
        let root_ca = keys::new_root(&origin.to_string(), p)?;
        self.local
            .write(local::ROOT_KEY, root_ca.key_pem.as_bytes())?;
        let host = host_name(&origin, device);
        let dev = keys::issue(&root_ca.cert_pem, &root_ca.key_pem, &[host], p)?;
        self.local
            .write(local::DEVICE_KEY, dev.key_pem.as_bytes())?;
        let dkim = keys::ed25519_key(p)?;
        self.local
            .write(local::DKIM_KEY, dkim.serialize_pem().as_bytes())?;
        let mut tx = self.store.transaction(&self.branch)?;
        tx.put(ORIGIN_PATH, format!("{origin}\n").as_bytes())?;
        tx.put(ROOT_PATH, root_ca.cert_pem.as_bytes())?;
        tx.put(&device_path(device), dev.cert_pem.as_bytes())?;
        tx.put(
            &tsig_path(device),
            self.new_tsig(&origin, device)?.as_bytes(),
        )?;
        let mut tlsa = Vec::new();
        for service in SERVICES {
            let cert = self.issue_service(&root_ca, &origin, device, service)?;
            tx.put(&service_path(service.name), cert.as_bytes())?;
            let digest = keys::tlsa_spki_sha256(&keys::cert_der(&cert)?)?;
            tlsa.extend(service.tls_ports.iter().map(|port| (*port, digest.clone())));
        }
        let text = default_zone(&origin, device, addresses, &tlsa, &keys::dkim_record(&dkim));
        let records = zone::parse_records(&origin, &text).map_err(Error::Dns)?;
        for (path, recs) in zone::by_file(&origin, &records)? {
            tx.put(&path, zone::render(&recs).as_bytes())?;
        }
        let msg = format!("identity: create zone {origin} with device {device}");
        tx.commit(device, &msg)?.ok_or(Error::NoIdentity)
    }

    fn issue_service(
        &self,
        root: &Issued,
        origin: &Name,
        device: &str,
        service: &Service,
    ) -> Result<String> {
        let names = vec![
            host_name(origin, device),
            format!(
                "{}.{}",
                service.name,
                origin.to_string().trim_end_matches('.')
            ),
        ];
        let issued = keys::issue(&root.cert_pem, &root.key_pem, &names, &self.provider)?;
        self.local
            .write(&local::service_key(service.name), issued.key_pem.as_bytes())?;
        Ok(issued.cert_pem)
    }

    /// Makes a TSIG secret for `device` in the local state; returns the public line.
    fn new_tsig(&self, origin: &Name, device: &str) -> Result<String> {
        let secret = keys::tsig_secret(&self.provider);
        self.local
            .write(&local::tsig_key(device), BASE64.encode(&secret).as_bytes())?;
        Ok(format!(
            "{TSIG_ALGORITHM} {}\n",
            tsig_key_name(origin, device)
        ))
    }

    /// Enrols a device: issues its certificate and TSIG key (one commit); returns its
    /// bundle. Needs the root key in this replica's local state.
    pub fn add_device(&self, device: &str, author: &str) -> Result<Bundle> {
        check_device_name(device)?;
        let origin = self.origin()?;
        let root = self.head_tree()?;
        if self.store.get(&root, &device_path(device))?.is_some() {
            return Err(Error::DeviceExists(device.into()));
        }
        let root_pem = self.root_cert()?;
        let root_key = self.local.require(local::ROOT_KEY, "the root key")?;
        let root_key = String::from_utf8_lossy(&root_key).into_owned();
        let host = host_name(&origin, device);
        let issued = keys::issue(
            &root_pem,
            &root_key,
            std::slice::from_ref(&host),
            &self.provider,
        )?;
        let mut tx = self.store.transaction(&self.branch)?;
        tx.put(&device_path(device), issued.cert_pem.as_bytes())?;
        tx.put(
            &tsig_path(device),
            self.new_tsig(&origin, device)?.as_bytes(),
        )?;
        tx.commit(author, &format!("identity: enrol device {device}"))?;
        let tsig = self.tsig_key(&origin, device)?;
        Ok(Bundle {
            zone: origin.to_string(),
            device: device.into(),
            host,
            certificate: issued.cert_pem,
            key: issued.key_pem,
            root_certificate: root_pem,
            tsig,
            nameservers: self.nameservers()?,
            services: SERVICES
                .iter()
                .flat_map(|s| s.srv.iter().map(|(label, _)| format!("{label}.{origin}")))
                .collect(),
        })
    }

    /// Revokes a device: records its certificate serial in `/identity/revoked` and drops
    /// its TSIG key, in one commit.
    pub fn revoke_device(&self, device: &str, author: &str) -> Result<String> {
        let root = self.head_tree()?;
        let pem = self
            .store
            .get(&root, &device_path(device))?
            .ok_or_else(|| Error::NoDevice(device.into()))?;
        let serial = keys::serial_hex(&keys::cert_der(&String::from_utf8_lossy(&pem))?)?;
        let mut list = self.store.get(&root, REVOKED_PATH)?.unwrap_or_default();
        list.extend_from_slice(format!("{serial} {device}\n").as_bytes());
        let mut tx = self.store.transaction(&self.branch)?;
        tx.put(REVOKED_PATH, &list)?;
        tx.remove(&tsig_path(device))?;
        tx.commit(author, &format!("identity: revoke device {device}"))?;
        self.local.remove(&local::tsig_key(device))?;
        Ok(serial)
    }

    /// The revocation list at the branch head.
    pub fn revoked(&self) -> Result<Revoked> {
        Revoked::load(&self.store, &self.head_tree()?)
    }

    fn tsig_key(&self, origin: &Name, device: &str) -> Result<TsigKey> {
        let secret = self
            .local
            .require(&local::tsig_key(device), "the TSIG secret")?;
        Ok(TsigKey {
            device: device.into(),
            name: tsig_key_name(origin, device),
            algorithm: TSIG_ALGORITHM.into(),
            secret: String::from_utf8_lossy(&secret).trim().to_string(),
        })
    }

    /// Every enrolled, unrevoked device's TSIG key whose secret this replica holds.
    pub fn tsig_keys(&self) -> Result<Vec<TsigKey>> {
        let root = self.head_tree()?;
        let Some(origin) = zone::read_origin(&self.store, &root)? else {
            return Ok(Vec::new());
        };
        let revoked = Revoked::load(&self.store, &root)?;
        let mut keys = Vec::new();
        for entry in self.store.list(&root, "/identity/tsig")? {
            let device = entry.name;
            if revoked.has_name(&device) {
                continue;
            }
            if let Ok(key) = self.tsig_key(&origin, &device) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    fn nameservers(&self) -> Result<Vec<(String, Vec<IpAddr>)>> {
        use hickory_proto::rr::{LowerName, RData, RecordType};
        let Some(zone) = zone::Zone::load_branch(&self.store, &self.branch)? else {
            return Ok(Vec::new());
        };
        let ns = zone.rrset(zone.lower_origin(), RecordType::NS);
        let mut out = Vec::new();
        for record in ns.into_iter().flatten() {
            let RData::NS(target) = &record.data else {
                continue;
            };
            let lower = LowerName::new(&target.0);
            let addrs = [RecordType::A, RecordType::AAAA]
                .iter()
                .flat_map(|t| zone.rrset(&lower, *t).cloned().unwrap_or_default())
                .filter_map(|r| r.data.ip_addr())
                .collect();
            out.push((target.0.to_string(), addrs));
        }
        Ok(out)
    }
}

/// The revocation list: certificate serials and the devices they belonged to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    /// (serial in lower-case hex, device name) pairs.
    pub entries: Vec<(String, String)>,
}

impl Revoked {
    /// Reads `/identity/revoked` at tree `root`.
    pub fn load(store: &Store, root: &Hash) -> Result<Revoked> {
        let text = store.get(root, REVOKED_PATH)?.unwrap_or_default();
        Ok(Revoked::parse(&String::from_utf8_lossy(&text)))
    }

    /// Parses `<serial> <name>` lines.
    pub fn parse(text: &str) -> Revoked {
        let entries = text
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                Some((parts.next()?.to_lowercase(), parts.next()?.to_string()))
            })
            .collect();
        Revoked { entries }
    }

    /// Whether a certificate serial (lower-case hex) is revoked.
    pub fn has_serial(&self, serial: &str) -> bool {
        self.entries.iter().any(|(s, _)| s == serial)
    }

    /// Whether a device has been revoked.
    pub fn has_name(&self, device: &str) -> bool {
        self.entries.iter().any(|(_, n)| n == device)
    }
}

/// Checks a device name: one DNS label of letters, digits and `-`.
pub fn check_device_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::BadDeviceName {
            name: name.into(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 63 {
        return bad("a device name is 1 to 63 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return bad("use letters, digits and `-` only");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad("a device name cannot start or end with `-`");
    }
    Ok(())
}

/// A zone name made absolute.
pub fn fqdn(zone: &str) -> Result<Name> {
    let mut name = Name::from_ascii(zone).map_err(|e| Error::Dns(format!("{zone}: {e}")))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// A device's host name, `<device>.<zone>` (no final dot).
pub fn host_name(origin: &Name, device: &str) -> String {
    format!("{device}.{}", origin.to_string().trim_end_matches('.'))
}

/// A device's TSIG key name, `<device>.<zone>.`.
pub fn tsig_key_name(origin: &Name, device: &str) -> String {
    format!("{device}.{origin}")
}

/// The store path of a device's certificate.
pub fn device_path(device: &str) -> String {
    format!("/identity/devices/{device}.pem")
}

/// The store path of a service's certificate.
pub fn service_path(service: &str) -> String {
    format!("/identity/services/{service}.pem")
}

/// The store path of a device's public TSIG key line.
pub fn tsig_path(device: &str) -> String {
    format!("/identity/tsig/{device}")
}

/// The default zone, in presentation format. Its DMARC record says `psd=n`: the user's
/// zone is its own organizational domain, so receivers stop their DMARC tree walk there.
fn default_zone(
    origin: &Name,
    device: &str,
    addresses: &[IpAddr],
    tlsa: &[(u16, Vec<u8>)],
    dkim: &str,
) -> String {
    let o = origin.to_string();
    let h = format!("{device}.{o}");
    let mut z = format!(
        "@ 3600 IN SOA {h} hostmaster.{o} 0 3600 600 1209600 300\n\
         @ 3600 IN NS {h}\n\
         @ 3600 IN MX 10 {h}\n\
         @ 3600 IN TXT \"v=spf1 mx -all\"\n\
         _dmarc 3600 IN TXT \"v=DMARC1; p=quarantine; psd=n; rua=mailto:postmaster@{}\"\n\
         {DKIM_SELECTOR}._domainkey 3600 IN TXT \"{dkim}\"\n\
         _caldavs._tcp 3600 IN TXT \"path=/.well-known/caldav\"\n\
         _carddavs._tcp 3600 IN TXT \"path=/.well-known/carddav\"\n",
        o.trim_end_matches('.')
    );
    for addr in addresses {
        let t = if addr.is_ipv4() { "A" } else { "AAAA" };
        z.push_str(&format!("{h} 300 IN {t} {addr}\n"));
    }
    for service in SERVICES {
        for (label, port) in service.srv {
            z.push_str(&format!("{label} 3600 IN SRV 0 1 {port} {h}\n"));
        }
    }
    for (port, digest) in tlsa {
        let hex = keys::hex(digest);
        z.push_str(&format!("_{port}._tcp.{h} 3600 IN TLSA 3 1 1 {hex}\n"));
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_single_labels() {
        assert!(check_device_name("laptop-2").is_ok());
        assert!(check_device_name("a.b").is_err());
        assert!(check_device_name("-x").is_err());
        assert!(check_device_name("").is_err());
    }
}
