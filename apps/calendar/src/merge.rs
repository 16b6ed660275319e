//! The three-way merge of an iCalendar file (RFC 5545), component by component and
//! property by property.
//!
//! Components pair up by type, `UID` and `RECURRENCE-ID`, so the master of a recurring
//! event and each of its overrides merge on their own, and an override added on one side
//! is kept; an event alone on every side pairs whatever its `UID` (which then merges as a
//! single value), since a file holds one calendar object. A `VTIMEZONE` (paired by `TZID`) is taken whole: when both sides changed it,
//! either will do. A `VALARM` without a `UID` is a set member known by its content.
//! Within a component:
//!
//! | property | merges as |
//! | --- | --- |
//! | `DTSTART`, `DTEND`, `DUE`, `DURATION`, `SUMMARY`, `DESCRIPTION`, `LOCATION`, `STATUS`, `RRULE`, `ORGANIZER`, `TRIGGER`, ... | one value: one side's change wins; two different changes conflict |
//! | `ATTENDEE` | one value per calendar address (case-insensitive): an attendee added, removed or changed on one side is taken; changed two ways conflicts |
//! | `SEQUENCE` | the larger number, never a conflict |
//! | `DTSTAMP`, `LAST-MODIFIED` | the later timestamp, never a conflict |
//! | `PRODID` | either side, never a conflict |
//! | `EXDATE`, `RDATE`, `CATEGORIES`, `COMMENT`, `ATTACH`, `X-*`, anything unknown | set members keyed by name, parameters and value: added or removed per side |
//!
//! `EXDATE`, `RDATE` and `CATEGORIES` lines are set members whole: two edits of one line
//! keep both lines, which lists every value either side wanted.
//!
//! A file that is not UTF-8 or that [`calcard`] or the content-line parser rejects merges
//! only when the merge is trivial. An event deleted on one side and changed on the other
//! is a conflict, unless the change touched only `DTSTAMP`, `LAST-MODIFIED` or `PRODID`:
//! then the deletion wins.

use kith_dav::component::Component;
use kith_dav::contentline::Line;
use kith_dav::merge::{self, Rule, Schema, Tie};
use std::sync::Arc;

use kith_store::{ContentMerge, Merged, Mergers};

/// The store's merge function for iCalendar files.
#[derive(Clone, Copy, Debug, Default)]
pub struct IcalMerge;

/// Registers [`IcalMerge`] for the files calendars keep (`.ics`).
pub fn register(mergers: &mut Mergers) {
    mergers.register(kith_store::Rule::Suffix(".ics".into()), Arc::new(IcalMerge));
}

impl ContentMerge for IcalMerge {
    fn merge(&self, base: Option<&[u8]>, ours: Option<&[u8]>, theirs: Option<&[u8]>) -> Merged {
        merge::merge(&Icalendar, base, ours, theirs)
    }
}

/// Properties merged as one value.
const SINGLE: &[&str] = &[
    "VERSION",
    "CALSCALE",
    "METHOD",
    "UID",
    "RECURRENCE-ID",
    "DTSTART",
    "DTEND",
    "DUE",
    "DURATION",
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "STATUS",
    "CLASS",
    "TRANSP",
    "PRIORITY",
    "ORGANIZER",
    "CREATED",
    "GEO",
    "URL",
    "RRULE",
    "COMPLETED",
    "PERCENT-COMPLETE",
    "TZID",
    "TZURL",
    "TZOFFSETFROM",
    "TZOFFSETTO",
    "ACTION",
    "TRIGGER",
    "REPEAT",
    "COLOR",
];

struct Icalendar;

impl Schema for Icalendar {
    fn format(&self) -> &'static str {
        "iCalendar file"
    }

    fn validate(&self, bytes: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return false;
        };
        let mut parser = calcard::Parser::new(text);
        let mut calendars = 0;
        loop {
            match parser.entry() {
                calcard::Entry::ICalendar(_) => calendars += 1,
                calcard::Entry::Eof => return calendars > 0,
                _ => return false,
            }
        }
    }

    fn property(&self, _parent: &str, line: &Line<'_>) -> Rule {
        let name = line.name();
        let tie = match name.as_str() {
            "ATTENDEE" => {
                let key = [&b"ATTENDEE "[..], &line.value().to_ascii_lowercase()].concat();
                return Rule::Slot {
                    key,
                    tie: Tie::Conflict,
                };
            }
            "SEQUENCE" => Tie::Max,
            "DTSTAMP" | "LAST-MODIFIED" => Tie::Later,
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
        let mut add = |line: Option<&Line<'_>>| {
            key.push(0);
            key.extend_from_slice(line.map_or(&[][..], |l| l.after_name()));
        };
        match component.name.as_str() {
            "VTIMEZONE" => {
                add(component.property("TZID"));
                return Rule::Slot {
                    key,
                    tie: Tie::Either,
                };
            }
            _ if component.property("UID").is_some() => {
                add(component.property("UID"));
                add(component.property("RECURRENCE-ID"));
            }
            "VALARM" | "STANDARD" | "DAYLIGHT" => return Rule::Member,
            _ => {}
        }
        Rule::Slot {
            key,
            tie: Tie::Conflict,
        }
    }
}
