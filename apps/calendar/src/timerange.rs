//! CalDAV time ranges (RFC 4791 §9.9): when a calendar object's components occur.
//!
//! calcard expands the object (RRULE, RDATE, EXDATE, overridden instances with
//! RECURRENCE-ID, VTIMEZONE and IANA TZIDs); floating times and dates are read in the
//! calendar's time zone (UTC when it has none). This module bounds that expansion to the
//! window asked about and applies RFC 4791's overlap rules: an event without DTEND or
//! DURATION lasts no time when it has a time and one day when it is all-day, and to-dos
//! follow §9.9's table over DTSTART, DUE, DURATION, COMPLETED and CREATED.

use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarProperty, ICalendarValue,
};
use chrono::{NaiveDateTime, TimeZone as _};

/// The most recurrence instances expanded for one object and query.
pub const MAX_INSTANCES: usize = 1 << 17;
/// The instances expanded at first; doubled until the window is passed.
const FIRST_LIMIT: usize = 64;

/// A `time-range`: UTC seconds, either end open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start (`None`: the beginning of time).
    pub start: Option<i64>,
    /// Exclusive end (`None`: the end of time).
    pub end: Option<i64>,
}

/// One occurrence of a component: its type, UTC start and end seconds, and the rule its
/// overlap follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// VEVENT, VTODO, VJOURNAL or VFREEBUSY.
    pub component: ICalendarComponentType,
    /// calcard's id of the component it comes from (the master or an override).
    pub comp: u32,
    /// Start, UTC seconds.
    pub start: i64,
    /// End, UTC seconds (equal to `start` for instants).
    pub end: i64,
    /// Which §9.9 test applies.
    pub rule: Rule,
}

/// The RFC 4791 §9.9 overlap test of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// An event, journal or to-do with a start and an end (or none: an instant).
    Span,
    /// A to-do with DUE only.
    Due,
    /// A to-do with COMPLETED (and perhaps CREATED): touching ends count.
    Completed,
    /// A to-do with CREATED only.
    Created,
}

impl TimeRange {
    /// Parses the `start` and `end` attributes (`20060104T000000Z`); `None` when one is not
    /// a UTC date-time or neither is given.
    pub fn parse(start: Option<&str>, end: Option<&str>) -> Option<TimeRange> {
        let read = |t: Option<&str>| match t {
            Some(t) => utc_seconds(t).map(Some),
            None => Some(None),
        };
        let (start, end) = (read(start)?, read(end)?);
        (start.is_some() || end.is_some()).then_some(TimeRange { start, end })
    }

    /// Whether an instance overlaps the range.
    pub fn overlaps(&self, i: &Instance) -> bool {
        self.overlaps_at(i.start, i.end, i.rule)
    }

    /// Whether an instance from `start` to `end` whose overlap follows `rule` overlaps
    /// the range.
    pub fn overlaps_at(&self, start: i64, end: i64, rule: Rule) -> bool {
        let a = self.start.unwrap_or(i64::MIN);
        let b = self.end.unwrap_or(i64::MAX);
        match rule {
            Rule::Span if end > start => a < end && b > start,
            Rule::Span => a <= start && b > start,
            Rule::Due => a < start && b >= start,
            Rule::Completed => (a <= start || a <= end) && (b >= start || b >= end),
            Rule::Created => b > start,
        }
    }
}

/// Parses `YYYYMMDDTHHMMSSZ` to UTC seconds.
pub fn utc_seconds(text: &str) -> Option<i64> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y%m%dT%H%M%SZ").ok()?;
    Some(naive.and_utc().timestamp())
}

/// Writes UTC seconds as `YYYYMMDDTHHMMSSZ`.
pub fn format_utc(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

/// The time zone named by the TZID of a `calendar-timezone` (or `timezone`) value, a
/// VCALENDAR holding one VTIMEZONE; `None` when it names no zone calcard knows.
pub fn zone_of(vcalendar: &str) -> Option<Tz> {
    let tzid = vcalendar
        .lines()
        .find_map(|l| l.trim().strip_prefix("TZID:"))?
        .trim();
    tzid.parse().ok()
}

/// Whether any component of type `component` in `cal` occurs in `range`, reading floating
/// times in `zone`. A to-do with no dates at all occurs always (§9.9).
pub fn occurs(
    cal: &ICalendar,
    component: &ICalendarComponentType,
    range: &TimeRange,
    zone: Tz,
) -> bool {
    if *component == ICalendarComponentType::VTodo && has_undated_todo(cal) {
        return true;
    }
    let hit = |i: &Instance| i.component == *component && range.overlaps(i);
    expand(cal, range, zone, hit).iter().any(hit)
}

/// The instances of `cal` that overlap `range`.
pub fn instances_in(cal: &ICalendar, range: &TimeRange, zone: Tz) -> Vec<Instance> {
    let mut all = expand(cal, range, zone, |_| false);
    all.retain(|i| range.overlaps(i));
    all
}

/// The instances of `cal` as far as every instance that can overlap a range ending by
/// `horizon` is among them, and how far that holds: `None` when the expansion is
/// complete, else a time at or after which ranges may miss unexpanded instances (before
/// `horizon` only when [`MAX_INSTANCES`] cut the expansion short).
pub fn instances_until(cal: &ICalendar, horizon: i64, zone: Tz) -> (Vec<Instance>, Option<i64>) {
    let recurs = |comp: u32| {
        cal.component_by_id(comp)
            .is_some_and(|c| c.property(&ICalendarProperty::Rrule).is_some())
    };
    if !(0..cal.components.len() as u32).any(recurs) {
        return (expand_limited(cal, zone, 0), None);
    }
    let mut limit = FIRST_LIMIT;
    let mut previous = usize::MAX;
    loop {
        let all = expand_limited(cal, zone, limit);
        if all.len() == previous {
            return (all, None);
        }
        // Recurrence starts are in order but may shift by up to a day of zone offsets.
        let last = all.iter().filter(|i| recurs(i.comp)).map(|i| i.start).max();
        let reached = last.map_or(i64::MIN, |l| l.saturating_sub(DAY));
        if reached >= horizon || limit >= MAX_INSTANCES {
            return (all, Some(reached.min(horizon)));
        }
        previous = all.len();
        limit *= 2;
    }
}

/// One day in seconds.
const DAY: i64 = 24 * 3600;

/// calcard's expansion of `cal` with at most `limit` recurrences, as [`Instance`]s.
fn expand_limited(cal: &ICalendar, zone: Tz, limit: usize) -> Vec<Instance> {
    cal.expand_dates(zone, limit)
        .events
        .iter()
        .filter_map(|e| instance(cal, e))
        .collect()
}

/// Expands `cal` with a growing limit until `enough` holds for an instance, one starts
/// after the range, the expansion stops growing, or [`MAX_INSTANCES`] is reached.
fn expand(
    cal: &ICalendar,
    range: &TimeRange,
    zone: Tz,
    enough: impl Fn(&Instance) -> bool,
) -> Vec<Instance> {
    let mut limit = FIRST_LIMIT;
    let mut previous = usize::MAX;
    loop {
        let all = expand_limited(cal, zone, limit);
        let last = all.iter().map(|i| i.start).max().unwrap_or(i64::MIN);
        let passed = range.end.is_some_and(|end| last >= end);
        if passed || all.len() == previous || limit >= MAX_INSTANCES || all.iter().any(&enough) {
            return all;
        }
        previous = all.len();
        limit *= 2;
    }
}

type Event = calcard::icalendar::dates::CalendarEvent<
    chrono::DateTime<Tz>,
    calcard::icalendar::dates::TimeOrDelta<chrono::DateTime<Tz>, chrono::TimeDelta>,
>;

/// An expanded event as an [`Instance`], with RFC 4791's ends.
fn instance(cal: &ICalendar, event: &Event) -> Option<Instance> {
    let comp = cal.component_by_id(event.comp_id)?;
    let (start, end) = event.timestamps();
    let start_fixed = local_start(cal, comp, event).unwrap_or(start);
    let (start, end) = (start_fixed, end + (start_fixed - start));
    let has = |p: ICalendarProperty| comp.property(&p).is_some();
    let timed_start = start_has_time(comp);
    let (rule, end) = match comp.component_type {
        ICalendarComponentType::VTodo => todo_rule(comp, start, end),
        _ if has(ICalendarProperty::Dtend) || has(ICalendarProperty::Duration) => (Rule::Span, end),
        _ if timed_start => (Rule::Span, start),
        _ => (Rule::Span, end),
    };
    Some(Instance {
        component: comp.component_type.clone(),
        comp: event.comp_id,
        start,
        end,
        rule,
    })
}

/// The start of an instance whose local time calcard could not place because it occurs
/// twice (autumn) or not at all (spring) in its DTSTART's zone: RFC 5545 §3.3.5 takes
/// the first of two, and a missing time at the offset before the gap. calcard leaves
/// those starts floating; every other start is already placed (`None`).
fn local_start(cal: &ICalendar, comp: &ICalendarComponent, event: &Event) -> Option<i64> {
    if !event.start.timezone().is_floating() {
        return None;
    }
    let tzid = comp.property(&ICalendarProperty::Dtstart)?.tz_id()?;
    let tz = cal.build_tz_resolver().resolve(tzid)?;
    let naive = event.start.naive_local();
    let placed = tz.from_local_datetime(&naive).earliest().or_else(|| {
        tz.from_local_datetime(&(naive + chrono::TimeDelta::hours(1)))
            .earliest()
    })?;
    Some(placed.timestamp())
}

/// A to-do's §9.9 rule and end, from the dates it has (calcard puts DUE, or COMPLETED
/// after CREATED, in the end).
fn todo_rule(comp: &ICalendarComponent, start: i64, end: i64) -> (Rule, i64) {
    let has = |p: ICalendarProperty| comp.property(&p).is_some();
    let dtstart = has(ICalendarProperty::Dtstart);
    let ends = has(ICalendarProperty::Due) || has(ICalendarProperty::Duration);
    match (dtstart, ends) {
        (true, true) => (Rule::Span, end),
        (true, false) => (Rule::Span, start),
        (false, true) => (Rule::Due, start),
        (false, false) if has(ICalendarProperty::Completed) => {
            let end = if has(ICalendarProperty::Created) {
                end
            } else {
                start
            };
            (Rule::Completed, end)
        }
        (false, false) => (Rule::Created, start),
    }
}

/// Whether DTSTART carries a time (not an all-day DATE).
fn start_has_time(comp: &ICalendarComponent) -> bool {
    match comp
        .property(&ICalendarProperty::Dtstart)
        .and_then(|e| e.values.first())
    {
        Some(ICalendarValue::PartialDateTime(dt)) => dt.has_time(),
        _ => false,
    }
}

/// Whether a VTODO has none of DTSTART, DUE, COMPLETED, CREATED.
pub fn has_undated_todo(cal: &ICalendar) -> bool {
    cal.components.iter().any(|c| {
        c.component_type == ICalendarComponentType::VTodo
            && [
                ICalendarProperty::Dtstart,
                ICalendarProperty::Due,
                ICalendarProperty::Completed,
                ICalendarProperty::Created,
            ]
            .iter()
            .all(|p| c.property(p).is_none())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(body: &str) -> ICalendar {
        let text = format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n{body}END:VCALENDAR\r\n");
        match calcard::Parser::new(&text).entry() {
            calcard::Entry::ICalendar(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn range(a: &str, b: &str) -> TimeRange {
        TimeRange::parse(Some(a), Some(b)).unwrap()
    }

    fn event(c: &ICalendar, a: &str, b: &str) -> bool {
        occurs(c, &ICalendarComponentType::VEvent, &range(a, b), Tz::UTC)
    }

    #[test]
    fn weekly_in_berlin_across_dst_with_exdate_and_override() {
        let c = cal(
            "BEGIN:VEVENT\r\nUID:w\r\nDTSTART;TZID=Europe/Berlin:20260305T090000\r\n\
             DTEND;TZID=Europe/Berlin:20260305T100000\r\nRRULE:FREQ=WEEKLY\r\n\
             EXDATE;TZID=Europe/Berlin:20260319T090000\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:w\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260326T090000\r\n\
             DTSTART;TZID=Europe/Berlin:20260327T140000\r\n\
             DTEND;TZID=Europe/Berlin:20260327T150000\r\nEND:VEVENT\r\n",
        );
        // 2 April is after the switch to CEST: 09:00 local is 07:00Z.
        assert!(event(&c, "20260402T070000Z", "20260402T071000Z"));
        assert!(!event(&c, "20260402T080000Z", "20260402T090000Z"));
        // 12 March, before the switch: 08:00Z.
        assert!(event(&c, "20260312T080000Z", "20260312T081000Z"));
        // EXDATE removes 19 March.
        assert!(!event(&c, "20260319T000000Z", "20260320T000000Z"));
        // The override moved 26 March to 27 March.
        assert!(!event(&c, "20260326T000000Z", "20260327T000000Z"));
        assert!(event(&c, "20260327T130000Z", "20260327T133000Z"));
        // Years on, with an open-ended rule.
        assert!(event(&c, "20300103T080000Z", "20300103T081000Z"));
    }

    #[test]
    fn instants_and_all_day_defaults() {
        let c = cal("BEGIN:VEVENT\r\nUID:i\r\nDTSTART:20260110T100000Z\r\nEND:VEVENT\r\n");
        assert!(event(&c, "20260110T100000Z", "20260110T100001Z"));
        assert!(!event(&c, "20260110T090000Z", "20260110T100000Z"));
        assert!(!event(&c, "20260110T100001Z", "20260110T110000Z"));
        let d = cal("BEGIN:VEVENT\r\nUID:d\r\nDTSTART;VALUE=DATE:20260110\r\nEND:VEVENT\r\n");
        assert!(event(&d, "20260110T230000Z", "20260111T000000Z"));
        assert!(!event(&d, "20260111T000000Z", "20260111T010000Z"));
    }

    #[test]
    fn floating_times_use_the_calendar_zone() {
        let c = cal(
            "BEGIN:VEVENT\r\nUID:f\r\nDTSTART:20260110T100000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n",
        );
        let r = range("20260110T090000Z", "20260110T093000Z");
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert!(occurs(&c, &ICalendarComponentType::VEvent, &r, berlin));
        assert!(!occurs(&c, &ICalendarComponentType::VEvent, &r, Tz::UTC));
    }

    #[test]
    fn repeated_and_missing_local_times() {
        let c = cal(
            "BEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Europe/Berlin:20261024T023000\r\n\
             DURATION:PT10M\r\nRRULE:FREQ=DAILY;COUNT=2\r\nEND:VEVENT\r\n",
        );
        // 02:30 on 25 October happens twice; the first (CEST) is 00:30Z.
        assert!(event(&c, "20261025T003000Z", "20261025T003100Z"));
        assert!(!event(&c, "20261025T013000Z", "20261025T020000Z"));
        let g = cal(
            "BEGIN:VEVENT\r\nUID:g\r\nDTSTART;TZID=America/New_York:20260307T023000\r\n\
             DURATION:PT10M\r\nRRULE:FREQ=DAILY;COUNT=2\r\nEND:VEVENT\r\n",
        );
        // 02:30 on 8 March does not exist; at the offset before the gap it is 07:30Z.
        assert!(event(&g, "20260308T073000Z", "20260308T073100Z"));
    }

    #[test]
    fn todo_rules() {
        let todo = |body: &str| cal(&format!("BEGIN:VTODO\r\nUID:t\r\n{body}END:VTODO\r\n"));
        let t = |c: &ICalendar, a: &str, b: &str| {
            occurs(c, &ICalendarComponentType::VTodo, &range(a, b), Tz::UTC)
        };
        let due = todo("DUE:20260110T100000Z\r\n");
        assert!(t(&due, "20260110T000000Z", "20260110T100000Z"));
        assert!(!t(&due, "20260110T100000Z", "20260110T110000Z"));
        let none = todo("SUMMARY:x\r\n");
        assert!(t(&none, "20000101T000000Z", "20000102T000000Z"));
        let created = todo("CREATED:20260110T100000Z\r\n");
        assert!(t(&created, "20300101T000000Z", "20300102T000000Z"));
        assert!(!t(&created, "20200101T000000Z", "20200102T000000Z"));
    }
}
