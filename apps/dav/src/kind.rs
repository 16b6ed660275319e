//! What a kind of collection (address book, calendar) adds to the core.
//!
//! The core serves every WebDAV method the same way for any collection; a
//! [`CollectionKind`] says where its data lives, what an item is (content type, file
//! extension, validation), which properties and reports it adds, and which writable
//! properties it keeps as vdir metadata files. kith-contacts implements it for CardDAV;
//! kith-calendar does for CalDAV.

use std::collections::BTreeMap;

use http::StatusCode;

use crate::report::Report;
use crate::xml::{Element, Name};

/// Why an item was refused: the status, the precondition element (RFC 4918 §16) and a
/// message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status (403, 409, 412, 415...).
    pub status: StatusCode,
    /// The precondition or postcondition element put in the `DAV:error` body, if any.
    pub condition: Option<Name>,
    /// What was wrong, for the person reading the client's log.
    pub message: String,
}

impl Refusal {
    /// A refusal with a precondition element.
    pub fn condition(status: StatusCode, condition: Name, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            condition: Some(condition),
            message: message.into(),
        }
    }

    /// A refusal with only a status and message.
    pub fn plain(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            condition: None,
            message: message.into(),
        }
    }
}

/// A writable property kept as a file in the collection's folder (the vdir convention:
/// `displayname`, `color`).
#[derive(Clone, Debug)]
pub struct MetadataFile {
    /// The property.
    pub property: Name,
    /// The file name in the collection folder.
    pub file: &'static str,
}

/// A kind of collection: CardDAV address books, CalDAV calendars.
pub trait CollectionKind: Send + Sync + 'static {
    /// The store folder and first URL segment of its data (`contacts`).
    fn prefix(&self) -> &'static str;
    /// The file extension of its items, without the dot (`vcf`).
    fn extension(&self) -> &'static str;
    /// The `Content-Type` of its items.
    fn content_type(&self) -> &'static str;
    /// The resource type a collection of this kind adds to `DAV:collection`.
    fn resource_type(&self) -> Name;
    /// The principal property naming the user's home of this kind
    /// (`addressbook-home-set`).
    fn home_set(&self) -> Name;
    /// The `DAV` header class it adds to OPTIONS (`addressbook`).
    fn dav_class(&self) -> &'static str;
    /// Its reports besides `sync-collection`.
    fn reports(&self) -> Vec<Name>;
    /// Writable properties kept as files in the collection folder.
    fn metadata_files(&self) -> Vec<MetadataFile>;
    /// Protected properties of its collections (name and value as inner XML).
    fn collection_properties(&self) -> Vec<(Name, String)>;
    /// Checks an item's bytes; returns its UID.
    fn validate(&self, bytes: &[u8]) -> Result<String, Refusal>;
    /// An item property this kind serves (`address-data`): inner XML, or `None` when
    /// the name is not one of its own. `prop` is the requested element, for
    /// sub-selections.
    fn item_property(&self, prop: &Element, bytes: &[u8]) -> Option<String>;
    /// Whether `name` is a property that [`CollectionKind::item_property`] serves.
    fn is_item_property(&self, name: &Name) -> bool;
    /// Runs one of its own reports; `None` when `body` is not one.
    fn report(&self, report: &Report, body: &Element) -> Option<Result<Reply, Refusal>>;
    /// Checks an item against its collection's dead properties (a calendar's
    /// `supported-calendar-component-set`); by default every valid item fits.
    fn check_item(&self, _bytes: &[u8], _dead: &BTreeMap<Name, String>) -> Result<(), Refusal> {
        Ok(())
    }
    /// Checks the properties a new collection is made with; by default any go.
    fn check_collection(&self, _props: &[Element]) -> Result<(), Refusal> {
        Ok(())
    }
    /// The precondition for a UID used twice in one collection.
    fn uid_conflict(&self, href: &str) -> Refusal;
}

/// A finished report: a multistatus body (or, with `content_type`, another 200 body such
/// as a `free-busy-query`'s iCalendar) as a lazy sequence of chunks.
pub struct Reply {
    /// The chunks, produced on demand so large bodies stream.
    pub chunks: Box<dyn Iterator<Item = String> + Send>,
    /// `None` for a 207 multistatus; else the `Content-Type` of a 200 body.
    pub content_type: Option<&'static str>,
}
