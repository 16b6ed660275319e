//! kith-dav is the WebDAV core that kith-calendar (CalDAV) and kith-contacts (CardDAV)
//! share, below them and above kith-store.
//!
//! Today it holds what both formats have in common for merging: the content-line syntax
//! of vCard (RFC 6350) and iCalendar (RFC 5545), split into lines that keep their exact
//! bytes ([`contentline`]), the `BEGIN`/`END` component tree over them ([`component`]),
//! and the property-wise three-way merge that kith-contacts' `VcardMerge` and
//! kith-calendar's `IcalMerge` configure with a [`merge::Schema`] ([`merge`]). The
//! WebDAV protocol core (hyper, quick-xml) arrives with the services.

pub mod component;
pub mod contentline;
pub mod merge;
