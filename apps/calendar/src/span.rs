//! When a calendar object can occur at all: the first start and last end of its
//! instances, kept per blob so a `calendar-query` with a time range skips most objects
//! without parsing them.
//!
//! Only objects whose instances are known without expansion get a span: events with no
//! RRULE or RDATE. Recurring objects, to-dos and journals (whose RFC 4791 §9.9 rules can
//! match any range) have none and are always evaluated in full. Blobs never change, so a
//! cached span never goes stale; the cache is dropped whole when it grows too large.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use calcard::common::timezone::Tz;
use calcard::icalendar::{ICalendarComponentType, ICalendarProperty};
use kith_store::Hash;

use crate::timerange::{self, TimeRange};

/// Most spans kept before the cache starts over.
const MAX_SPANS: usize = 200_000;

/// A blob and the zone its floating times were read in.
type Key = (Hash, Tz);
/// First start and last end, in UTC seconds (`None`: unbounded).
type Span = Option<(i64, i64)>;

/// Spans by blob and zone.
#[derive(Debug, Default)]
pub struct Spans {
    known: Mutex<HashMap<Key, Span>>,
}

impl Spans {
    /// Whether the object `bytes` (blob `hash`) may occur in `range`; false only when it
    /// certainly does not.
    pub fn may_occur(&self, hash: &Hash, bytes: &[u8], range: &TimeRange, zone: Tz) -> bool {
        let key = (*hash, zone);
        let cached = self.lock().get(&key).copied();
        let span = cached.unwrap_or_else(|| {
            let span = span_of(bytes, zone);
            let mut known = self.lock();
            if known.len() >= MAX_SPANS {
                known.clear();
            }
            known.insert(key, span);
            span
        });
        let Some((first, last)) = span else {
            return true;
        };
        range.end.is_none_or(|end| end > first) && range.start.is_none_or(|start| start <= last)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Span>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The first start and last end of a non-recurring, events-only object; `None` when it
/// has no such bounds (or does not parse).
fn span_of(bytes: &[u8], zone: Tz) -> Span {
    let text = std::str::from_utf8(bytes).ok()?;
    let calcard::Entry::ICalendar(cal) = calcard::Parser::new(text).entry() else {
        return None;
    };
    let bounded = cal.components.iter().all(|c| match c.component_type {
        ICalendarComponentType::VEvent => {
            c.property(&ICalendarProperty::Rrule).is_none()
                && c.property(&ICalendarProperty::Rdate).is_none()
        }
        ICalendarComponentType::VTodo
        | ICalendarComponentType::VJournal
        | ICalendarComponentType::VFreebusy => false,
        _ => true,
    });
    if !bounded {
        return None;
    }
    let everything = TimeRange {
        start: None,
        end: None,
    };
    let instances = timerange::instances_in(&cal, &everything, zone);
    let first = instances.iter().map(|i| i.start).min()?;
    let last = instances.iter().map(|i| i.end.max(i.start)).max()?;
    Some((first, last))
}
