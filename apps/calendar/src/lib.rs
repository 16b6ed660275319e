//! kith-calendar is Kith's CalDAV service over the store: it keeps each calendar object
//! (an event with its overrides, a task) as one iCalendar file at
//! `/calendar/<user>/<calendar>/<uid>.ics`, byte for byte as the client sent it, and
//! serves it to DAVx5, Thunderbird, Apple Calendar, khal/vdirsyncer and the python
//! `caldav` library. It sits on kith-dav (the WebDAV core, sync tokens, accounts, the
//! text-match machinery and the content-line merge it shares with kith-contacts) and
//! kith-store; the `kith serve calendar` command in sync-cli runs it.
//!
//! [`Calendars`] is the CalDAV collection kind (RFC 4791: calendars, MKCALENDAR,
//! `calendar-query` with the [`filter`]s, `calendar-multiget`, `free-busy-query`,
//! iCalendar validation); [`timerange`] says when an object occurs, expanding recurrences
//! with calcard, [`occurrences`] remembers each object's instances so time-range
//! queries are answered without parsing the objects, and [`expand`] rewrites a recurring object as its
//! instances; [`IcalMerge`] is the store's merge function for iCalendar files, which the
//! store calls when two replicas changed the same calendar object.

pub mod caldav;
pub mod expand;
pub mod filter;
pub mod merge;
pub mod occurrences;
pub mod timerange;

pub use caldav::Calendars;
pub use merge::IcalMerge;
