//! kith-contacts is Kith's CardDAV service over the store: it keeps each contact as one
//! vCard at `/contacts/<book>/<uid>.vcf`, byte for byte as the client sent it, and serves
//! it to DAVx5, Thunderbird, Apple Contacts and vdirsyncer. It sits on kith-dav (the
//! WebDAV core and content-line merge it shares with kith-calendar) and kith-store.
//!
//! Today it holds the store's merge function for vCards, [`VcardMerge`], which the store
//! calls when two replicas changed the same contact; the CardDAV service arrives later.

pub mod merge;

pub use merge::VcardMerge;
