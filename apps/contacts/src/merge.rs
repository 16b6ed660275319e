//! The three-way merge of a vCard file (RFC 6350 vCard 4.0, and 3.0), property by property.
//!
//! | property | merges as |
//! | --- | --- |
//! | `VERSION`, `UID`, `KIND`, `FN`, `N`, `NICKNAME`, `BDAY`, `ANNIVERSARY`, `GENDER`, `ORG`, `TITLE`, `ROLE`, `NOTE`, `PHOTO`, `LOGO`, `SOUND`, `TZ`, `GEO`, ... | one value: one side's change wins; two different changes conflict |
//! | `REV` | the later timestamp, never a conflict |
//! | `PRODID` | either side, never a conflict |
//! | `EMAIL`, `TEL`, `ADR`, `URL`, `IMPP`, `CATEGORIES`, `X-*`, anything unknown | set members keyed by group, name, parameters and value: added or removed per side |
//!
//! Properties that RFC 6350 allows several times but that clients show as one field
//! (`NOTE`, `ORG`, `TITLE`, `PHOTO`, `NICKNAME`) merge as one value: two different edits
//! of a note become a conflict the user sees, not two notes of which the client shows one.
//! A `CATEGORIES` line is one set member, so two edits of the same line keep both lines.
//!
//! Groups (`item1.EMAIL` with `item1.X-ABLabel`) tie a label to its property. When both
//! sides introduced the same new group for different properties (Apple Contacts numbers
//! them, so two devices adding a labelled field both pick the next `itemN`), theirs' group
//! is renamed to a fresh `itemN` so each label stays with its own property.
//!
//! A file's vCard pairs with the other versions' whatever their `UID`s say (a file holds
//! one contact, and `UID` merges as a single value); several vCards in one file pair by
//! `UID`. A file that is not UTF-8 or that
//! [`calcard`] or the content-line parser rejects merges only when the merge is trivial.
//! A contact deleted on one side and changed on the other is a conflict, unless the
//! change touched only `REV` or `PRODID`: then the deletion wins.

use kith_dav::component::Component;
use kith_dav::contentline::Line;
use kith_dav::merge::{self, Rule, Schema, Tie};
use std::sync::Arc;

use kith_store::{ContentMerge, Merged, Mergers};

/// The store's merge function for vCard files.
#[derive(Clone, Copy, Debug, Default)]
pub struct VcardMerge;

/// Registers [`VcardMerge`] for the files contacts keep (`.vcf`).
pub fn register(mergers: &mut Mergers) {
    mergers.register(
        kith_store::Rule::Suffix(".vcf".into()),
        Arc::new(VcardMerge),
    );
}

impl ContentMerge for VcardMerge {
    fn merge(&self, base: Option<&[u8]>, ours: Option<&[u8]>, theirs: Option<&[u8]>) -> Merged {
        merge::merge(&Vcard, base, ours, theirs)
    }
}

/// Properties merged as one value.
const SINGLE: &[&str] = &[
    "VERSION",
    "UID",
    "KIND",
    "FN",
    "N",
    "NICKNAME",
    "BDAY",
    "ANNIVERSARY",
    "GENDER",
    "BIRTHPLACE",
    "DEATHPLACE",
    "DEATHDATE",
    "ORG",
    "TITLE",
    "ROLE",
    "NOTE",
    "PHOTO",
    "LOGO",
    "SOUND",
    "TZ",
    "GEO",
    "SORT-STRING",
    "CLASS",
    "NAME",
    "PROFILE",
];

struct Vcard;

impl Schema for Vcard {
    fn format(&self) -> &'static str {
        "vCard"
    }

    fn validate(&self, bytes: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return false;
        };
        let mut parser = calcard::Parser::new(text);
        let mut cards = 0;
        loop {
            match parser.entry() {
                calcard::Entry::VCard(_) => cards += 1,
                calcard::Entry::Eof => return cards > 0,
                _ => return false,
            }
        }
    }

    fn property(&self, _parent: &str, line: &Line<'_>) -> Rule {
        let name = line.name();
        let tie = match name.as_str() {
            "REV" => Tie::Later,
            "PRODID" => Tie::Either,
            name if SINGLE.contains(&name) => Tie::Conflict,
            _ => return Rule::Member,
        };
        Rule::Slot {
            key: name.into_bytes(),
            tie,
        }
    }

    fn component(&self, component: &Component<'_>) -> Rule {
        let mut key = component.name.clone().into_bytes();
        if let Some(uid) = component.property("UID") {
            key.push(0);
            key.extend_from_slice(uid.value());
        }
        Rule::Slot {
            key,
            tie: Tie::Conflict,
        }
    }
}
