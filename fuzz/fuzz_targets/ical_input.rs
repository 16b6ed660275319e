//! Arbitrary bytes as an iCalendar PUT to a calendar: validation (calcard and the
//! content-line parser) must never panic and must accept only input whose UID and
//! component it can name, and the calendar-query filter (with a time-range that expands
//! recurrences), instance expansion and `expand` must handle whatever it accepts; the
//! remembered occurrences must give the answer a full evaluation gives.

#![no_main]

use std::sync::OnceLock;

use calcard::common::timezone::Tz;
use calcard::icalendar::ICalendarComponentType;
use kith_calendar::caldav::validate;
use kith_calendar::filter::Filter;
use kith_calendar::occurrences::Occurrences;
use kith_calendar::timerange::{self, TimeRange, instances_in};
use kith_store::Hash;
use libfuzzer_sys::fuzz_target;

fn filter() -> &'static Filter {
    static FILTER: OnceLock<Filter> = OnceLock::new();
    FILTER.get_or_init(|| {
        let xml = br#"<C:filter xmlns:C="urn:ietf:params:xml:ns:caldav"><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20260101T000000Z" end="20260201T000000Z"/><C:prop-filter name="SUMMARY"><C:text-match negate-condition="yes">x</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter>"#;
        Filter::parse(&kith_dav::xml::parse(xml).unwrap()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = filter().matches(data, Tz::UTC);
    if let Ok(object) = validate(data) {
        assert!(!object.uid.is_empty());
        let text = std::str::from_utf8(data).unwrap();
        if let calcard::Entry::ICalendar(cal) = calcard::Parser::new(text).entry() {
            let range = TimeRange::parse(Some("20260101T000000Z"), Some("20270101T000000Z")).unwrap();
            for i in instances_in(&cal, &range, Tz::UTC) {
                assert!(range.overlaps(&i));
            }
            let _ = kith_calendar::expand::expand(data, &range);
            let event = ICalendarComponentType::VEvent;
            let load = || Some(data.to_vec());
            let remembered = Occurrences::default();
            if let Some(cached) = remembered.occurs(&Hash::of(data), Tz::UTC, &event, &range, load) {
                assert_eq!(cached, timerange::occurs(&cal, &event, &range, Tz::UTC));
            }
        }
    }
});
