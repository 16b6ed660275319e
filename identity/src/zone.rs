//! The zone model: how the zone sits in the store, and the in-memory snapshot served.
//!
//! The zone lives under `/identity/` in the synced store: `/identity/origin` names it, and
//! `/identity/zone/<owner>` holds every record of one owner name, in RFC 1035 presentation
//! format with absolute names, one record a line. The file is named by the owner relative
//! to the origin, lower case (`@` for the apex), so two devices changing different names
//! never touch the same file and a merge is a plain union of files.
//!
//! The SOA record's serial in the store is a placeholder: the served serial is the time
//! (in seconds) of the newest commit that changed `/identity/zone`, so it moves with every
//! change and every replica computes the same one.

use std::collections::{BTreeMap, HashMap, HashSet};

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use kith_store::{Hash, Store};

use crate::error::{Error, Result};

/// The store file naming the zone.
pub const ORIGIN_PATH: &str = "/identity/origin";
/// The store folder of the zone's owner files.
pub const ZONE_DIR: &str = "/identity/zone";

/// How many commits back the serial search looks at most.
const SERIAL_SEARCH: usize = 100_000;

/// The record sets of one owner name, by type.
pub type Node = HashMap<RecordType, Vec<Record>>;

/// One version of the zone, indexed for answering.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: Name,
    lower_origin: LowerName,
    serial: u32,
    nodes: HashMap<LowerName, Node>,
    /// Every owner name and every name between an owner and the origin (empty
    /// non-terminals), for NXDOMAIN versus NODATA.
    existing: HashSet<LowerName>,
}

impl Zone {
    /// A zone from its records; the SOA's serial is replaced by `serial`.
    pub fn new(origin: Name, serial: u32, records: Vec<Record>) -> Result<Zone> {
        let lower_origin = LowerName::new(&origin);
        let mut nodes: HashMap<LowerName, Node> = HashMap::new();
        let mut existing = HashSet::new();
        for mut record in records {
            let owner = LowerName::new(&record.name);
            if !lower_origin.zone_of(&owner) {
                return Err(Error::Dns(format!(
                    "{} is outside the zone {origin}",
                    record.name
                )));
            }
            if let RData::SOA(soa) = &mut record.data {
                soa.serial = serial;
            }
            mark_existing(&mut existing, &owner, &lower_origin);
            let set = nodes.entry(owner).or_default();
            let rrs = set.entry(record.record_type()).or_default();
            if !rrs.contains(&record) {
                rrs.push(record);
            }
        }
        let zone = Zone {
            origin,
            lower_origin,
            serial,
            nodes,
            existing,
        };
        zone.soa_record()?;
        Ok(zone)
    }

    /// The same zone served with another SOA serial.
    pub fn with_serial(mut self, serial: u32) -> Zone {
        self.serial = serial;
        for records in self.nodes.values_mut() {
            for record in records.values_mut().flatten() {
                if let RData::SOA(soa) = &mut record.data {
                    soa.serial = serial;
                }
            }
        }
        self
    }

    /// Reads the zone at store tree `root`; `None` when the store has no zone.
    pub fn load(store: &Store, root: &Hash, serial: u32) -> Result<Option<Zone>> {
        let Some(origin) = read_origin(store, root)? else {
            return Ok(None);
        };
        let mut records = Vec::new();
        for entry in store.list(root, ZONE_DIR)? {
            let path = format!("{ZONE_DIR}/{}", entry.name);
            let text = store.get(root, &path)?.unwrap_or_default();
            let text = String::from_utf8(text).map_err(|_| Error::ZoneSyntax {
                path: path.clone(),
                detail: "not UTF-8".into(),
            })?;
            records.extend(
                parse_records(&origin, &text).map_err(|detail| Error::ZoneSyntax {
                    path: path.clone(),
                    detail,
                })?,
            );
        }
        Zone::new(origin, serial, records).map(Some)
    }

    /// Reads the zone at the head of `branch`, with its serial from history.
    pub fn load_branch(store: &Store, branch: &str) -> Result<Option<Zone>> {
        let root = store.head_tree(branch)?;
        let serial = match store.head(branch)? {
            Some(head) => serial_at(store, head)?,
            None => 0,
        };
        Zone::load(store, &root, serial)
    }

    /// The zone's name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The zone's name, lower case.
    pub fn lower_origin(&self) -> &LowerName {
        &self.lower_origin
    }

    /// The served SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The SOA record (with the served serial).
    pub fn soa_record(&self) -> Result<&Record> {
        self.rrset(&self.lower_origin, RecordType::SOA)
            .and_then(|s| s.first())
            .ok_or_else(|| Error::Dns(format!("zone {} has no SOA record", self.origin)))
    }

    /// The SOA's data.
    pub fn soa(&self) -> Option<&SOA> {
        match self.soa_record().ok().map(|r| &r.data) {
            Some(RData::SOA(soa)) => Some(soa),
            _ => None,
        }
    }

    /// The record sets at a name.
    pub fn node(&self, name: &LowerName) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// The records of one type at a name.
    pub fn rrset(&self, name: &LowerName, rtype: RecordType) -> Option<&Vec<Record>> {
        self.nodes.get(name).and_then(|n| n.get(&rtype))
    }

    /// Whether the name exists (owns records, or has names below it).
    pub fn exists(&self, name: &LowerName) -> bool {
        self.existing.contains(name)
    }

    /// Every record, SOA first, the rest in canonical name order: the AXFR body.
    pub fn records(&self) -> Vec<Record> {
        let mut names: Vec<&LowerName> = self.nodes.keys().collect();
        names.sort();
        let soa = self.soa_record().ok().cloned();
        let mut out: Vec<Record> = soa.into_iter().collect();
        for name in names {
            let mut types: Vec<_> = self.nodes[name].iter().collect();
            types.sort_by_key(|(t, _)| u16::from(**t));
            for (rtype, records) in types {
                if *rtype != RecordType::SOA {
                    out.extend(records.iter().cloned());
                }
            }
        }
        out
    }
}

fn mark_existing(existing: &mut HashSet<LowerName>, owner: &LowerName, origin: &LowerName) {
    let mut name = owner.clone();
    while existing.insert(name.clone()) && name != *origin && !name.is_root() {
        name = name.base_name();
    }
}

/// The zone's origin as stored, if the store has an identity.
pub fn read_origin(store: &Store, root: &Hash) -> Result<Option<Name>> {
    let Some(bytes) = store.get(root, ORIGIN_PATH)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut name = Name::from_ascii(text.trim()).map_err(|e| Error::ZoneSyntax {
        path: ORIGIN_PATH.into(),
        detail: e.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(Some(name))
}

/// Parses presentation-format records, relative names taken against `origin`.
pub fn parse_records(origin: &Name, text: &str) -> std::result::Result<Vec<Record>, String> {
    let (_, sets) = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .map_err(|e| e.to_string())?;
    Ok(sets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect())
}

/// The owner file's text for a set of records: one line each, sorted.
pub fn render(records: &[Record]) -> String {
    let mut lines: Vec<String> = records.iter().map(|r| format!("{}\n", line(r))).collect();
    lines.sort();
    lines.dedup();
    lines.concat()
}

/// One record in presentation format. TXT strings are quoted and escaped (hickory's
/// `Display` leaves them bare, which would split `v=spf1 -all` in two on reading).
pub fn line(record: &Record) -> String {
    let RData::TXT(txt) = &record.data else {
        return record.to_string();
    };
    let strings: Vec<String> = txt.txt_data.iter().map(|s| quote(s)).collect();
    format!(
        "{} {} {} TXT {}",
        record.name,
        record.ttl,
        record.dns_class,
        strings.join(" ")
    )
}

fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// The store path of the file holding the records of `owner`.
pub fn owner_path(origin: &Name, owner: &Name) -> Result<String> {
    let lower = owner.to_lowercase();
    let origin = origin.to_lowercase();
    if !origin.zone_of(&lower) {
        return Err(Error::Dns(format!("{owner} is outside the zone {origin}")));
    }
    let relative: Vec<String> = lower
        .iter()
        .take(lower.num_labels() as usize - origin.num_labels() as usize)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let file = if relative.is_empty() {
        "@".to_string()
    } else {
        relative.join(".")
    };
    kith_store::validate_name(&file).map_err(|reason| Error::Dns(format!("{owner}: {reason}")))?;
    Ok(format!("{ZONE_DIR}/{file}"))
}

/// The serial of the zone as of commit `head`: the time in seconds of the newest commit
/// that changed `/identity/zone` (a zone that never changed gets the first commit's time).
pub fn serial_at(store: &Store, head: Hash) -> Result<u32> {
    let zone_at =
        |tree: &Hash| -> Result<Option<Hash>> { Ok(store.find(tree, ZONE_DIR)?.map(|(_, h)| h)) };
    let mut last_time = 0i64;
    for item in store.log(head).take(SERIAL_SEARCH) {
        let (_, commit) = item?;
        last_time = commit.time;
        let mine = zone_at(&commit.tree)?;
        let parent = match commit.parents.first() {
            Some(p) => zone_at(&store.commit(p)?.tree)?,
            None => None,
        };
        if mine != parent {
            break;
        }
    }
    Ok((last_time / 1000) as u32)
}

/// Groups records by owner file path.
pub fn by_file(origin: &Name, records: &[Record]) -> Result<BTreeMap<String, Vec<Record>>> {
    let mut files: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for r in records {
        files
            .entry(owner_path(origin, &r.name)?)
            .or_default()
            .push(r.clone());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("alice.home.arpa.").unwrap()
    }

    #[test]
    fn files_round_trip_and_are_named_by_owner() {
        let text = "alice.home.arpa. 3600 IN SOA ns.alice.home.arpa. hostmaster.alice.home.arpa. 0 3600 600 1209600 300\n\
                    Laptop.alice.home.arpa. 300 IN A 192.0.2.1\n\
                    _imaps._tcp 3600 IN SRV 0 1 993 laptop\n\
                    x.y.alice.home.arpa. 60 IN TXT \"v=spf1 -all\" \"a\\\"b\\\\c\"\n\
                    _443._tcp.x.y 60 IN TLSA 3 1 1 0a0B\n";
        let records = parse_records(&origin(), text).unwrap();
        let files = by_file(&origin(), &records).unwrap();
        let names: Vec<_> = files.keys().cloned().collect();
        assert_eq!(
            names,
            [
                "/identity/zone/@",
                "/identity/zone/_443._tcp.x.y",
                "/identity/zone/_imaps._tcp",
                "/identity/zone/laptop",
                "/identity/zone/x.y"
            ]
        );
        for recs in files.values() {
            let again = parse_records(&origin(), &render(recs)).unwrap();
            assert_eq!(&again, recs);
        }
        let zone = Zone::new(origin(), 7, records).unwrap();
        assert_eq!(zone.soa().unwrap().serial, 7);
        let y = LowerName::from(Name::from_ascii("Y.alice.home.arpa.").unwrap());
        assert!(zone.exists(&y));
        assert!(zone.node(&y).is_none());
    }
}
