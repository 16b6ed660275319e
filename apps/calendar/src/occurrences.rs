//! When each calendar object occurs, remembered: its instances expanded once per blob
//! and zone, so a `calendar-query` time range is answered by a binary search instead of
//! parsing and expanding every object of the calendar.
//!
//! An object whose recurrence ends is expanded whole. One that repeats forever is
//! expanded to a year past the end of the range asked about, and again further when a
//! later query reaches past that horizon; a range with no end on such an object cannot
//! be answered here and the caller evaluates the object in full. Blobs never change, so
//! an entry never goes stale. The cache holds at most [`MAX_CACHED`] instances and
//! starts over when full.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ahash::AHashMap;
use calcard::common::timezone::Tz;
use calcard::icalendar::{ICalendar, ICalendarComponentType};
use kith_store::Hash;

use crate::timerange::{self, Rule, TimeRange};

/// Most instances kept over all entries (24 bytes each) before the cache starts over.
pub const MAX_CACHED: usize = 1 << 20;
/// How far past a query's end an endless recurrence is expanded.
const LOOKAHEAD: i64 = 366 * 24 * 3600;

/// The instances of calendar objects, by blob and zone.
#[derive(Debug, Default)]
pub struct Occurrences {
    known: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    entries: AHashMap<(Hash, Tz), Arc<Entry>>,
    instances: usize,
}

/// One object's instances as far as they were expanded.
#[derive(Debug)]
struct Entry {
    /// Sorted by [`Occurrence::low`].
    instances: Vec<Occurrence>,
    /// The running maximum of [`Occurrence::high`] over `instances`.
    reach: Vec<i64>,
    /// Every instance that can overlap a range ending at or before this is listed
    /// (`None`: every instance is).
    until: Option<i64>,
    /// Whether a to-do without dates, which occurs in every range, is among them.
    undated_todo: bool,
}

/// One instance, as compact as its overlap test needs.
#[derive(Clone, Copy, Debug)]
struct Occurrence {
    start: i64,
    end: i64,
    kind: Kind,
    rule: Rule,
}

/// The component types that have time ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Event,
    Todo,
    Journal,
    Freebusy,
}

impl Occurrences {
    /// Whether the object in blob `hash` has an instance of `component` in `range`,
    /// reading floating times in `zone`. `load` gives the object's bytes when they must
    /// be expanded. `None` when this cannot tell (an endless recurrence and a range with
    /// no end, or an object calcard cannot read); then evaluate the object in full.
    pub fn occurs(
        &self,
        hash: &Hash,
        zone: Tz,
        component: &ICalendarComponentType,
        range: &TimeRange,
        load: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<bool> {
        let kind = Kind::of(component)?;
        let entry = self.entry(hash, zone, range, load)?;
        Some(entry.occurs(kind, range))
    }

    /// The entry for `(hash, zone)` that covers `range`, expanding the object if none does.
    fn entry(
        &self,
        hash: &Hash,
        zone: Tz,
        range: &TimeRange,
        load: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Arc<Entry>> {
        let key = (*hash, zone);
        let cached = self.lock().entries.get(&key).cloned();
        if let Some(entry) = &cached
            && entry.covers(range)
        {
            return Some(Arc::clone(entry));
        }
        let horizon = range
            .end
            .or(range.start)
            .unwrap_or(0)
            .saturating_add(LOOKAHEAD);
        let horizon = cached.and_then(|e| e.until).map_or(horizon, |until| {
            horizon.max(until.saturating_add(LOOKAHEAD))
        });
        let bytes = load()?;
        let cal = parse(&bytes)?;
        let entry = Arc::new(Entry::expand(&cal, horizon, zone));
        self.remember(key, Arc::clone(&entry));
        entry.covers(range).then_some(entry)
    }

    fn remember(&self, key: (Hash, Tz), entry: Arc<Entry>) {
        let mut known = self.lock();
        if known.instances + entry.instances.len() > MAX_CACHED {
            known.entries.clear();
            known.instances = 0;
        }
        known.instances += entry.instances.len();
        if let Some(old) = known.entries.insert(key, entry) {
            known.instances -= old.instances.len();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entry {
    /// Expands `cal` far enough to answer every range ending by `horizon`.
    fn expand(cal: &ICalendar, horizon: i64, zone: Tz) -> Entry {
        let (found, until) = timerange::instances_until(cal, horizon, zone);
        let mut instances: Vec<Occurrence> = found
            .iter()
            .filter_map(|i| {
                Some(Occurrence {
                    start: i.start,
                    end: i.end,
                    kind: Kind::of(&i.component)?,
                    rule: i.rule,
                })
            })
            .collect();
        instances.sort_unstable_by_key(Occurrence::low);
        let reach = instances
            .iter()
            .scan(i64::MIN, |max, o| {
                *max = (*max).max(o.high());
                Some(*max)
            })
            .collect();
        Entry {
            instances,
            reach,
            until,
            undated_todo: timerange::has_undated_todo(cal),
        }
    }

    /// Whether every instance that can overlap `range` is listed.
    fn covers(&self, range: &TimeRange) -> bool {
        match (self.until, range.end) {
            (None, _) => true,
            (Some(until), Some(end)) => end <= until,
            (Some(_), None) => false,
        }
    }

    /// Whether an instance of `kind` overlaps `range`: only those whose low end is not
    /// after the range's end and whose running high end reaches its start can.
    fn occurs(&self, kind: Kind, range: &TimeRange) -> bool {
        if kind == Kind::Todo && self.undated_todo {
            return true;
        }
        let (a, b) = (
            range.start.unwrap_or(i64::MIN),
            range.end.unwrap_or(i64::MAX),
        );
        let upto = self.instances.partition_point(|o| o.low() <= b);
        let from = self.reach[..upto].partition_point(|&high| high < a);
        self.instances[from..upto]
            .iter()
            .any(|o| o.kind == kind && range.overlaps_at(o.start, o.end, o.rule))
    }
}

impl Occurrence {
    /// No range ending before this can hold the instance.
    fn low(&self) -> i64 {
        self.start.min(self.end)
    }

    /// No range starting after this can hold the instance (a to-do with only CREATED
    /// occurs in every range that ends after it).
    fn high(&self) -> i64 {
        match self.rule {
            Rule::Created => i64::MAX,
            _ => self.start.max(self.end),
        }
    }
}

impl Kind {
    fn of(component: &ICalendarComponentType) -> Option<Kind> {
        match component {
            ICalendarComponentType::VEvent => Some(Kind::Event),
            ICalendarComponentType::VTodo => Some(Kind::Todo),
            ICalendarComponentType::VJournal => Some(Kind::Journal),
            ICalendarComponentType::VFreebusy => Some(Kind::Freebusy),
            _ => None,
        }
    }
}

fn parse(bytes: &[u8]) -> Option<ICalendar> {
    match calcard::Parser::new(std::str::from_utf8(bytes).ok()?).entry() {
        calcard::Entry::ICalendar(cal) => Some(cal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> Hash {
        Hash::of(&[n])
    }

    fn object(body: &str) -> Vec<u8> {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n{body}END:VCALENDAR\r\n")
            .into_bytes()
    }

    fn range(a: &str, b: &str) -> TimeRange {
        TimeRange::parse(Some(a), Some(b)).unwrap()
    }

    /// The cached answer next to a full evaluation of the same object.
    fn both(cache: &Occurrences, n: u8, body: &str, r: &TimeRange) -> (Option<bool>, bool) {
        let bytes = object(body);
        let event = ICalendarComponentType::VEvent;
        let cached = cache.occurs(&hash(n), Tz::UTC, &event, r, || Some(bytes.clone()));
        let full = timerange::occurs(&parse(&bytes).unwrap(), &event, r, Tz::UTC);
        (cached, full)
    }

    #[test]
    fn agrees_with_full_evaluation_and_widens_its_horizon() {
        let cache = Occurrences::default();
        let weekly = "BEGIN:VEVENT\r\nUID:w\r\nDTSTART;TZID=Europe/Berlin:20260305T090000\r\n\
                      DURATION:PT1H\r\nRRULE:FREQ=WEEKLY\r\n\
                      EXDATE;TZID=Europe/Berlin:20260319T090000\r\nEND:VEVENT\r\n";
        let cases = [
            ("20260312T080000Z", "20260312T081000Z", true),
            ("20260319T000000Z", "20260320T000000Z", false),
            ("20260402T080000Z", "20260402T090000Z", false),
            ("20260402T070000Z", "20260402T071000Z", true),
            ("20340406T060000Z", "20340406T073000Z", true),
            ("20260101T000000Z", "20260305T080000Z", false),
        ];
        for (a, b, want) in cases {
            let (cached, full) = both(&cache, 1, weekly, &range(a, b));
            assert_eq!((cached, full), (Some(want), want), "{a}..{b}");
        }
        let open = TimeRange {
            start: Some(0),
            end: None,
        };
        assert_eq!(both(&cache, 1, weekly, &open).0, None);
    }

    #[test]
    fn instants_all_day_and_finite_rules() {
        let cache = Occurrences::default();
        let instant = "BEGIN:VEVENT\r\nUID:i\r\nDTSTART:20260110T100000Z\r\nEND:VEVENT\r\n";
        let day = "BEGIN:VEVENT\r\nUID:d\r\nDTSTART;VALUE=DATE:20260110\r\nEND:VEVENT\r\n";
        let count = "BEGIN:VEVENT\r\nUID:c\r\nDTSTART:20260110T100000Z\r\nDURATION:PT1H\r\n\
                     RRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\n";
        let windows = [
            ("20260110T100000Z", "20260110T100001Z"),
            ("20260110T090000Z", "20260110T100000Z"),
            ("20260110T230000Z", "20260111T000000Z"),
            ("20260112T103000Z", "20260112T104000Z"),
            ("20260113T100000Z", "20260114T000000Z"),
        ];
        for (n, body) in [(2, instant), (3, day), (4, count)] {
            for (a, b) in windows {
                let (cached, full) = both(&cache, n, body, &range(a, b));
                assert_eq!(cached, Some(full), "{body} {a}..{b}");
            }
        }
        let open = TimeRange {
            start: Some(0),
            end: None,
        };
        assert_eq!(both(&cache, 4, count, &open).0, Some(true));
    }

    #[test]
    fn undated_todos_occur_always_and_the_cache_stays_bounded() {
        let cache = Occurrences::default();
        let todo = object("BEGIN:VTODO\r\nUID:t\r\nSUMMARY:x\r\nEND:VTODO\r\n");
        let r = range("20000101T000000Z", "20000102T000000Z");
        let got = cache.occurs(
            &hash(5),
            Tz::UTC,
            &ICalendarComponentType::VTodo,
            &r,
            || Some(todo.clone()),
        );
        assert_eq!(got, Some(true));
        let minutely = object(
            "BEGIN:VEVENT\r\nUID:m\r\nDTSTART:20260101T000000Z\r\nRRULE:FREQ=MINUTELY\r\nEND:VEVENT\r\n",
        );
        let far = range("20270101T000000Z", "20270101T000100Z");
        for n in 10..19 {
            cache.occurs(
                &hash(n),
                Tz::UTC,
                &ICalendarComponentType::VEvent,
                &far,
                || Some(minutely.clone()),
            );
            assert!(cache.lock().instances <= MAX_CACHED);
        }
    }
}
