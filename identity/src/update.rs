//! Dynamic updates (RFC 2136), signed by a device's own TSIG key.
//!
//! The policy is one function, [`may_change`]: a device may change only its own names.
//! The rest follows RFC 2136 §3: check the zone section, the prerequisites, prescan the
//! update section, then apply it to the owner files in the store as one commit whose
//! author is the device.

use std::collections::BTreeMap;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::enroll::{Revoked, Site, tsig_path};
use crate::error::Result;
use crate::zone::{self, Zone};

/// The record types a device may change at its own names.
pub const DEVICE_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::TLSA];

/// Whether `device` may make the change `record` (an update-section RR) in zone `origin`.
///
/// Kith's update policy, in the spirit of BIND's `update-policy { grant ... self ...;
/// grant ... subdomain ...; }`: a device owns the name `<device>.<zone>` and the names
/// below it (`_443._tcp.<device>.<zone>` for its TLSA records), and there it may add or
/// delete A, AAAA and TLSA records. RFC 2136 §3.4.2.3's "delete all RRsets from a name"
/// (class ANY, type ANY) is allowed at its own names and removes only those types. Every
/// other name (the apex, MX, SRV, another device's host) and every other type is out of
/// reach, so one compromised device cannot redirect the user's mail or services.
pub fn may_change(device: &str, origin: &Name, record: &Record) -> bool {
    let Ok(own) = Name::from_ascii(device).and_then(|d| d.append_domain(origin)) else {
        return false;
    };
    if !LowerName::new(&own).zone_of(&LowerName::new(&record.name)) {
        return false;
    }
    let rtype = record.record_type();
    DEVICE_TYPES.contains(&rtype) || (rtype == RecordType::ANY && record.dns_class == DNSClass::ANY)
}

/// Applies an update `request` from `device` to the zone in the store.
///
/// `zone` is the zone the request names (already routed by the catalog). Returns the
/// RCODE to answer with; `NoError` means the change is committed (or changed nothing).
pub fn apply(site: &Site, zone: &Zone, request: &Message, device: &str) -> Result<ResponseCode> {
    // RFC 2136 §3.1: the zone section has one SOA-typed, IN-class entry naming our zone.
    if request.queries.len() != 1 {
        return Ok(ResponseCode::FormErr);
    }
    let zq = &request.queries[0];
    if zq.query_type() != RecordType::SOA || zq.query_class() != DNSClass::IN {
        return Ok(ResponseCode::FormErr);
    }
    if LowerName::new(zq.name()) != *zone.lower_origin() {
        return Ok(ResponseCode::NotAuth);
    }
    let origin = zone.origin().clone();
    let mut tx = site.store.transaction(&site.branch)?;
    let Some(current) = Zone::load(&site.store, &tx.base_tree(), zone.serial())? else {
        return Ok(ResponseCode::ServFail);
    };
    // The key's device must still be enrolled in the version this update builds on, so
    // no update lands after the commit that revoked it, however soon.
    let revoked = Revoked::load(&site.store, &tx.base_tree())?;
    let enrolled = site
        .store
        .get(&tx.base_tree(), &tsig_path(device))?
        .is_some();
    if revoked.has_name(device) || !enrolled {
        return Ok(ResponseCode::NotAuth);
    }
    // §3.2: prerequisites, in the answer ("prerequisite") section.
    if let Some(code) = check_prerequisites(&current, &request.answers) {
        return Ok(code);
    }
    // §3.3 and §3.4.1: prescan the update section, then the policy.
    let updates = &request.authorities;
    if let Some(code) = prescan(&current, updates) {
        return Ok(code);
    }
    if !updates.iter().all(|r| may_change(device, &origin, r)) {
        return Ok(ResponseCode::Refused);
    }
    // §3.4.2: apply, owner file by owner file.
    let mut files: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for record in updates {
        let path = zone::owner_path(&origin, &record.name)?;
        if !files.contains_key(&path) {
            let text = site.store.get(&tx.base_tree(), &path)?.unwrap_or_default();
            let existing = zone::parse_records(&origin, &String::from_utf8_lossy(&text))
                .map_err(crate::Error::Dns)?;
            files.insert(path.clone(), existing);
        }
        apply_one(files.get_mut(&path).expect("just inserted"), record);
    }
    for (path, records) in &files {
        if records.is_empty() {
            tx.remove(path)?;
        } else {
            tx.put(path, zone::render(records).as_bytes())?;
        }
    }
    let names: Vec<String> = files
        .keys()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .collect();
    tx.commit(
        device,
        &format!("dns update by {device}: {}", names.join(", ")),
    )?;
    Ok(ResponseCode::NoError)
}

/// RFC 2136 §3.2.1-§3.2.3: each prerequisite RR in turn.
fn check_prerequisites(zone: &Zone, prereqs: &[Record]) -> Option<ResponseCode> {
    let mut value_sets: BTreeMap<(LowerName, u16), Vec<Record>> = BTreeMap::new();
    for rr in prereqs {
        let name = LowerName::new(&rr.name);
        if !zone.lower_origin().zone_of(&name) {
            return Some(ResponseCode::NotZone);
        }
        if rr.ttl != 0 {
            return Some(ResponseCode::FormErr);
        }
        let rtype = rr.record_type();
        let node = zone.node(&name);
        let has_type = |t| node.is_some_and(|n| n.get(&t).is_some_and(|v| !v.is_empty()));
        let code = match (rr.dns_class, rtype) {
            (DNSClass::ANY, RecordType::ANY) if node.is_none() => Some(ResponseCode::NXDomain),
            (DNSClass::ANY, t) if t != RecordType::ANY && !has_type(t) => {
                Some(ResponseCode::NXRRSet)
            }
            (DNSClass::NONE, RecordType::ANY) if node.is_some() => Some(ResponseCode::YXDomain),
            (DNSClass::NONE, t) if t != RecordType::ANY && has_type(t) => {
                Some(ResponseCode::YXRRSet)
            }
            (DNSClass::IN, t) => {
                value_sets
                    .entry((name, u16::from(t)))
                    .or_default()
                    .push(rr.clone());
                None
            }
            (DNSClass::ANY | DNSClass::NONE, _) => None,
            _ => Some(ResponseCode::FormErr),
        };
        if code.is_some() {
            return code;
        }
    }
    // §3.2.3: value-dependent prerequisites must match the RRset exactly.
    for ((name, t), wanted) in value_sets {
        let have = zone
            .rrset(&name, RecordType::from(t))
            .cloned()
            .unwrap_or_default();
        let same = have.len() == wanted.len() && wanted.iter().all(|w| have.contains(w));
        if !same {
            return Some(ResponseCode::NXRRSet);
        }
    }
    None
}

/// RFC 2136 §3.4.1.3: the update section's RRs must be well formed for their class.
fn prescan(zone: &Zone, updates: &[Record]) -> Option<ResponseCode> {
    for rr in updates {
        if !zone.lower_origin().zone_of(&LowerName::new(&rr.name)) {
            return Some(ResponseCode::NotZone);
        }
        let rtype = rr.record_type();
        let meta = matches!(
            rtype,
            RecordType::AXFR | RecordType::IXFR | RecordType::OPT | RecordType::TSIG
        );
        let ok = match rr.dns_class {
            DNSClass::IN => !meta && rtype != RecordType::ANY && !rr.data.is_update(),
            DNSClass::ANY => rr.ttl == 0 && rr.data.is_update() && !meta,
            DNSClass::NONE => rr.ttl == 0 && rtype != RecordType::ANY && !meta,
            _ => false,
        };
        if !ok {
            return Some(ResponseCode::FormErr);
        }
    }
    None
}

/// RFC 2136 §3.4.2.2-§3.4.2.4: one update RR applied to one owner's records.
fn apply_one(records: &mut Vec<Record>, rr: &Record) {
    let rtype = rr.record_type();
    match rr.dns_class {
        DNSClass::IN => {
            records.retain(|r| !(r.record_type() == rtype && r.data == rr.data));
            records.push(rr.clone());
        }
        DNSClass::ANY if rtype == RecordType::ANY => {
            records.retain(|r| !DEVICE_TYPES.contains(&r.record_type()));
        }
        DNSClass::ANY => records.retain(|r| r.record_type() != rtype),
        DNSClass::NONE => {
            records.retain(|r| !(r.record_type() == rtype && r.data == rr.data));
        }
        _ => {}
    }
}

/// The data of an update RR is empty (class ANY deletes).
trait IsUpdate {
    fn is_update(&self) -> bool;
}

impl IsUpdate for RData {
    fn is_update(&self) -> bool {
        matches!(self, RData::Update0(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;

    fn rec(name: &str, class: DNSClass) -> Record {
        let mut r = Record::from_rdata(
            Name::from_ascii(name).unwrap(),
            300,
            RData::A(A::new(192, 0, 2, 7)),
        );
        r.dns_class = class;
        r
    }

    #[test]
    fn a_device_changes_only_its_own_names() {
        let origin = Name::from_ascii("alice.home.arpa.").unwrap();
        let ok = |n: &str| may_change("laptop", &origin, &rec(n, DNSClass::IN));
        assert!(ok("laptop.alice.home.arpa."));
        assert!(ok("LAPTOP.Alice.home.arpa."));
        assert!(ok("_443._tcp.laptop.alice.home.arpa."));
        assert!(!ok("board.alice.home.arpa."));
        assert!(!ok("alice.home.arpa."));
        assert!(!ok("laptopx.alice.home.arpa."));
        let mut mx = rec("laptop.alice.home.arpa.", DNSClass::IN);
        mx.data = RData::Update0(RecordType::MX);
        mx.dns_class = DNSClass::ANY;
        assert!(!may_change("laptop", &origin, &mx));
    }
}
