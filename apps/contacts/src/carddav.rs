//! CardDAV (RFC 6352) as a kith-dav [`CollectionKind`]: address books under
//! `/contacts/<user>/<book>/`, one vCard per `.vcf` file, byte for byte as PUT.
//!
//! Collection metadata follows the vdir convention, so `kith export /contacts/<user>/<book>`
//! gives a folder khard and vdirsyncer read: `displayname` and `color` files hold those
//! properties; `description` holds `addressbook-description`; other (dead) properties go
//! in `.dav-props`, which vdir tools ignore.

use http::StatusCode;
use kith_dav::component::{Document, Item};
use kith_dav::report::{Report, requested_props};
use kith_dav::xml::{APPLE, CARDDAV, DAV, Element, Name, escape};
use kith_dav::{CollectionKind, MetadataFile, Refusal, Reply};

use crate::query::{self, Filter};

/// The largest vCard accepted, in bytes.
pub const MAX_SIZE: usize = 10 * 1024 * 1024;
/// InfCloud's address book colour namespace.
const INF_IT: &str = "http://inf-it.com/ns/ab/";

/// Address books: the CardDAV collection kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddressBooks;

impl CollectionKind for AddressBooks {
    fn prefix(&self) -> &'static str {
        "contacts"
    }

    fn extension(&self) -> &'static str {
        "vcf"
    }

    fn content_type(&self) -> &'static str {
        "text/vcard; charset=utf-8"
    }

    fn resource_type(&self) -> Name {
        Name::new(CARDDAV, "addressbook")
    }

    fn home_set(&self) -> Name {
        Name::new(CARDDAV, "addressbook-home-set")
    }

    fn dav_class(&self) -> &'static str {
        "addressbook"
    }

    fn reports(&self) -> Vec<Name> {
        vec![
            Name::new(CARDDAV, "addressbook-query"),
            Name::new(CARDDAV, "addressbook-multiget"),
        ]
    }

    fn metadata_files(&self) -> Vec<MetadataFile> {
        let file = |ns, local, file| MetadataFile {
            property: Name::new(ns, local),
            file,
        };
        vec![
            file(DAV, "displayname", "displayname"),
            file(CARDDAV, "addressbook-description", "description"),
            file(APPLE, "calendar-color", "color"),
            file(INF_IT, "addressbook-color", "color"),
        ]
    }

    fn collection_properties(&self) -> Vec<(Name, String)> {
        let types = ["3.0", "4.0"]
            .map(|v| {
                format!("<card:address-data-type content-type=\"text/vcard\" version=\"{v}\"/>")
            })
            .concat();
        vec![
            (Name::new(CARDDAV, "supported-address-data"), types),
            (
                Name::new(CARDDAV, "max-resource-size"),
                MAX_SIZE.to_string(),
            ),
        ]
    }

    fn validate(&self, bytes: &[u8]) -> Result<String, Refusal> {
        validate(bytes).map_err(|message| {
            Refusal::condition(
                StatusCode::FORBIDDEN,
                Name::new(CARDDAV, "valid-address-data"),
                message,
            )
        })
    }

    fn item_property(&self, prop: &Element, bytes: &[u8]) -> Option<String> {
        if !prop.is(CARDDAV, "address-data") {
            return None;
        }
        let wanted: Vec<String> = prop
            .children_named(CARDDAV, "prop")
            .filter_map(|p| p.attr("name").map(str::to_ascii_uppercase))
            .collect();
        let text = String::from_utf8_lossy(&select(bytes, &wanted)).into_owned();
        Some(escape(&text))
    }

    fn is_item_property(&self, name: &Name) -> bool {
        name.is(CARDDAV, "address-data")
    }

    fn report(&self, report: &Report, body: &Element) -> Option<Result<Reply, Refusal>> {
        if body.is(CARDDAV, "addressbook-multiget") {
            Some(Ok(kith_dav::report::multiget(report, body)))
        } else if body.is(CARDDAV, "addressbook-query") {
            Some(addressbook_query(report, body))
        } else {
            None
        }
    }

    fn uid_conflict(&self, href: &str) -> Refusal {
        Refusal::condition(
            StatusCode::FORBIDDEN,
            Name::new(CARDDAV, "no-uid-conflict"),
            format!("{href} already holds a contact with this UID"),
        )
    }
}

/// Checks a PUT body: UTF-8, exactly one vCard 3.0 or 4.0 that both calcard and the
/// content-line parser accept, with a UID. Returns the UID.
pub fn validate(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() > MAX_SIZE {
        return Err(format!("a vCard may be at most {MAX_SIZE} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "the vCard is not UTF-8".to_string())?;
    let mut parser = calcard::Parser::new(text);
    match (parser.entry(), parser.entry()) {
        (calcard::Entry::VCard(_), calcard::Entry::Eof) => {}
        (calcard::Entry::VCard(_), _) => return Err("send exactly one vCard per resource".into()),
        (other, _) => return Err(format!("not a valid vCard: {other:?}")),
    }
    let doc = Document::parse(bytes).ok_or("the vCard's lines or BEGIN/END do not parse")?;
    let mut cards = doc.items.iter().filter_map(|i| match i {
        Item::Component(c) => Some(c),
        _ => None,
    });
    let card = match (cards.next(), cards.next()) {
        (Some(c), None) if c.name == "VCARD" => c,
        _ => return Err("send exactly one BEGIN:VCARD ... END:VCARD".into()),
    };
    let version = card
        .property("VERSION")
        .map(|l| String::from_utf8_lossy(l.value()).trim().to_string());
    match version.as_deref() {
        Some("3.0") | Some("4.0") => {}
        Some(v) => {
            return Err(format!(
                "vCard version {v} is not supported; use 3.0 or 4.0"
            ));
        }
        None => return Err("the vCard has no VERSION".into()),
    }
    let uid = card
        .property("UID")
        .map(|l| String::from_utf8_lossy(l.value()).trim().to_string())
        .unwrap_or_default();
    if uid.is_empty() {
        return Err("the vCard has no UID; CardDAV needs one".into());
    }
    Ok(uid)
}

/// The vCard with only the `wanted` properties (plus BEGIN, END, VERSION and UID); all of
/// it when `wanted` is empty.
fn select(bytes: &[u8], wanted: &[String]) -> Vec<u8> {
    if wanted.is_empty() {
        return bytes.to_vec();
    }
    let keep = |name: &str| {
        ["BEGIN", "END", "VERSION", "UID"].contains(&name) || wanted.iter().any(|w| w == name)
    };
    kith_dav::contentline::split(bytes)
        .into_iter()
        .filter(|raw| kith_dav::contentline::Line::parse(raw).is_some_and(|l| keep(&l.name())))
        .flat_map(|raw| raw.iter().copied())
        .collect()
}

/// `addressbook-query` (RFC 6352 §8.6).
fn addressbook_query(report: &Report, body: &Element) -> Result<Reply, Refusal> {
    let props = requested_props(body);
    let filter = match body.child(CARDDAV, "filter") {
        Some(f) => Filter::parse(f)?,
        None => Filter::default(),
    };
    let limit = body
        .child(CARDDAV, "limit")
        .and_then(|l| l.child(CARDDAV, "nresults"))
        .and_then(|n| n.text.trim().parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let items = report
        .items()
        .map_err(|e| Refusal::plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let r = report.clone();
    let responses = items
        .into_iter()
        .filter(move |(_, hash)| {
            r.store
                .blob(hash)
                .is_ok_and(|bytes| query::matches(&filter, &bytes))
        })
        .take(limit)
        .filter_map({
            let r = report.clone();
            move |(name, hash)| r.response(&name, &hash, &props).ok()
        });
    Ok(report.reply(responses, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let good = b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:abc\r\nFN:Ada\r\nEND:VCARD\r\n";
        assert_eq!(validate(good).unwrap(), "abc");
        assert!(validate(b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada\r\nEND:VCARD\r\n").is_err());
        assert!(validate(b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:a\r\n").is_err());
        assert!(validate(b"hello").is_err());
        assert!(validate(b"BEGIN:VCARD\r\nVERSION:2.1\r\nUID:a\r\nEND:VCARD\r\n").is_err());
        let two = [&good[..], &good[..]].concat();
        assert!(validate(&two).is_err());
    }

    #[test]
    fn address_data_selects_properties() {
        let card = b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:abc\r\nFN:Ada\r\nEMAIL:a@x\r\nEND:VCARD\r\n";
        let out = select(card, &["EMAIL".into()]);
        assert_eq!(
            out,
            b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:abc\r\nEMAIL:a@x\r\nEND:VCARD\r\n"
        );
    }
}
