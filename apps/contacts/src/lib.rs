//! kith-contacts is Kith's CardDAV service over the store: it keeps each contact as one
//! vCard at `/contacts/<user>/<book>/<name>.vcf` (clients name it `<uid>.vcf`), byte for
//! byte as the client sent it, and serves it to DAVx5, Thunderbird, Apple Contacts and
//! vdirsyncer. It sits on kith-dav (the WebDAV core, sync tokens, accounts and the
//! content-line merge it shares with kith-calendar) and kith-store; the `kith serve
//! contacts` command in sync-cli runs it.
//!
//! [`AddressBooks`] is the CardDAV collection kind (RFC 6352: address books,
//! `addressbook-query` with the [`query`] filters, `addressbook-multiget`, vCard 3.0 and
//! 4.0 validation); [`VcardMerge`] is the store's merge function for vCards, which the
//! store calls when two replicas changed the same contact.

pub mod carddav;
pub mod merge;
pub mod query;

pub use carddav::AddressBooks;
pub use merge::VcardMerge;
