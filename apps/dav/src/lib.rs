//! kith-dav is the WebDAV core that kith-calendar (CalDAV) and kith-contacts (CardDAV)
//! share, below them and above kith-store.
//!
//! It serves the WebDAV methods (RFC 4918: OPTIONS, PROPFIND, PROPPATCH, GET, HEAD, PUT,
//! DELETE, MKCOL, RFC 5689's extended MKCOL and RFC 4791's MKCALENDAR), RFC 6578
//! `sync-collection` with sync tokens that name store commits, the `multiget` reports,
//! RFC 5397 `current-user-principal`, and Basic sign-in against the [`accounts`] kept in
//! the store. Data lives at the same paths in URLs and
//! in the store: `/<prefix>/<user>/<collection>/<item>`. A [`kind::CollectionKind`]
//! (CardDAV address books in kith-contacts, CalDAV calendars in kith-calendar) adds the
//! item format, its properties and its reports. [`handler`] holds the method logic over
//! plain requests; [`server`] is the thin tokio + rustls (ring) + hyper shell around it;
//! every change goes through the one [`writer`], as one commit per batch of requests.
//!
//! It also holds what both formats share for querying and merging: the content-line
//! syntax of vCard (RFC 6350) and iCalendar (RFC 5545), split into lines that keep their
//! exact bytes ([`contentline`]), the `BEGIN`/`END` component tree over them
//! ([`component`]), the filters' `text-match` with its collations ([`textmatch`]), and
//! the property-wise three-way merge that kith-contacts' `VcardMerge` and
//! kith-calendar's `IcalMerge` configure with a [`merge::Schema`] ([`merge`]).

pub mod accounts;
mod body;
pub mod component;
pub mod contentline;
mod error;
pub mod handler;
pub mod kind;
pub mod merge;
pub mod multistatus;
pub mod props;
pub mod report;
pub mod request;
pub mod server;
pub mod target;
pub mod textmatch;
pub mod tls;
mod uids;
pub mod writer;
pub mod xml;

pub use body::Body;
pub use error::{Error, Result};
pub use handler::{Config, Dav};
pub use kind::{CollectionKind, MetadataFile, Refusal, Reply};
