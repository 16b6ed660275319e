//! The zone handler: answering a question from a zone snapshot.
//!
//! RFC 1034 §4.3.2's algorithm for an authoritative server without delegations: an exact
//! match answers (following CNAMEs within the zone, at most [`MAX_CHAIN`] links); a name
//! that exists without the asked type is NODATA; a name that does not exist is answered
//! from the wildcard at its closest encloser (RFC 4592) or is NXDOMAIN. Negative answers
//! carry the SOA in the authority section (RFC 2308). Names compare case-insensitively.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::zone::{Node, Zone};

/// The longest CNAME chain followed inside the zone.
pub const MAX_CHAIN: usize = 8;

/// What a name holds: its own records, records synthesised from a wildcard, or nothing.
enum Found<'z> {
    Node(Option<&'z Node>),
    Wildcard(&'z Node),
    NxDomain,
}

fn find<'z>(zone: &'z Zone, name: &LowerName) -> Found<'z> {
    if let Some(node) = zone.node(name) {
        return Found::Node(Some(node));
    }
    if zone.exists(name) {
        return Found::Node(None);
    }
    let mut encloser = name.base_name();
    while !zone.exists(&encloser) && !encloser.is_root() {
        encloser = encloser.base_name();
    }
    let wildcard = LowerName::new(&Name::from(encloser).prepend_label("*").unwrap_or_default());
    match zone.node(&wildcard) {
        Some(node) => Found::Wildcard(node),
        None => Found::NxDomain,
    }
}

/// Answers `qname`/`qtype` from `zone` into `resp` (answers, authority, additionals,
/// RCODE and the AA flag).
pub fn answer(zone: &Zone, qname: &Name, qtype: RecordType, resp: &mut Message) {
    resp.metadata.authoritative = true;
    let mut owner = qname.clone();
    for _ in 0..MAX_CHAIN {
        let name = LowerName::new(&owner);
        let (node, synthesised) = match find(zone, &name) {
            Found::Node(node) => (node, false),
            Found::Wildcard(node) => (Some(node), true),
            Found::NxDomain => {
                resp.metadata.response_code = ResponseCode::NXDomain;
                return add_soa(zone, resp);
            }
        };
        let rename = |r: &Record| {
            let mut r = r.clone();
            if synthesised {
                r.name = owner.clone();
            }
            r
        };
        if qtype != RecordType::CNAME
            && let Some(cname) = node.and_then(|n| n.get(&RecordType::CNAME))
            && let Some(record) = cname.first()
        {
            resp.add_answer(rename(record));
            let RData::CNAME(target) = &record.data else {
                return;
            };
            if !zone.lower_origin().zone_of(&LowerName::new(&target.0)) {
                return;
            }
            owner = target.0.clone();
            continue;
        }
        let records: Vec<Record> = match node {
            Some(n) if qtype == RecordType::ANY => n.values().flatten().map(rename).collect(),
            Some(n) => n.get(&qtype).into_iter().flatten().map(rename).collect(),
            None => Vec::new(),
        };
        if records.is_empty() {
            return add_soa(zone, resp);
        }
        add_glue(zone, &records, resp);
        resp.add_answers(records);
        return;
    }
}

/// Adds the SOA to the authority section with the negative-caching TTL (RFC 2308 §3).
pub fn add_soa(zone: &Zone, resp: &mut Message) {
    if let (Ok(record), Some(soa)) = (zone.soa_record(), zone.soa()) {
        let mut record = record.clone();
        record.ttl = record.ttl.min(soa.minimum);
        resp.add_authority(record);
    }
}

/// Adds in-zone addresses of the hosts that MX, SRV and NS answers name.
fn add_glue(zone: &Zone, records: &[Record], resp: &mut Message) {
    for record in records {
        let target = match &record.data {
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            RData::NS(ns) => &ns.0,
            _ => continue,
        };
        let lower = LowerName::new(target);
        for rtype in [RecordType::A, RecordType::AAAA] {
            for glue in zone.rrset(&lower, rtype).into_iter().flatten() {
                if !resp.additionals.contains(glue) {
                    resp.add_additional(glue.clone());
                }
            }
        }
    }
}
