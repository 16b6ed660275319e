//! kith-calendar is Kith's CalDAV service over the store: it keeps each calendar object
//! (an event with its overrides, a task) as one iCalendar file at
//! `/calendar/<cal>/<uid>.ics`, byte for byte as the client sent it, and serves it to
//! DAVx5, Thunderbird, Apple Calendar and vdirsyncer. It sits on kith-dav (the WebDAV core
//! and content-line merge it shares with kith-contacts) and kith-store.
//!
//! Today it holds the store's merge function for iCalendar files, [`IcalMerge`], which the
//! store calls when two replicas changed the same calendar object; the CalDAV service
//! arrives later.

pub mod merge;

pub use merge::IcalMerge;
