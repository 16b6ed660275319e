//! Arbitrary bytes as a `calendar-query` body: XML parsing and filter parsing must never
//! panic, and any filter they accept must evaluate over a recurring event with overrides,
//! a to-do and malformed objects without panicking.

#![no_main]

use calcard::common::timezone::Tz;
use kith_calendar::filter::Filter;
use kith_dav::xml::CALDAV;
use libfuzzer_sys::fuzz_target;

const OBJECTS: [&[u8]; 3] = [
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:f\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Europe/Berlin:20260302T090000\r\nDTEND;TZID=Europe/Berlin:20260302T100000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,-1SU\r\nEXDATE;TZID=Europe/Berlin:20260309T090000\r\nSUMMARY:Standup\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:a@x\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260316T090000\r\nSTATUS:CANCELLED\r\nDTSTART;TZID=Europe/Berlin:20260316T090000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:f\r\nBEGIN:VTODO\r\nUID:t\r\nDUE:20260110T100000Z\r\nCOMPLETED:20260111T100000Z\r\nSUMMARY:Milk\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
    b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\nEND:VEVENT\r\n",
];

fuzz_target!(|data: &[u8]| {
    let Ok(root) = kith_dav::xml::parse(data) else {
        return;
    };
    let element = if root.is(CALDAV, "filter") {
        &root
    } else {
        match root.child(CALDAV, "filter") {
            Some(f) => f,
            None => return,
        }
    };
    if let Ok(filter) = Filter::parse(element) {
        for object in OBJECTS {
            let _ = filter.matches(object, Tz::UTC);
        }
    }
});
