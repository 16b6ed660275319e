//! `calendar-data` with `expand` (RFC 4791 §9.6.5): a recurring object rewritten as one
//! component per instance in a time range, each with RECURRENCE-ID, DTSTART and DTEND in
//! UTC and no RRULE, RDATE or EXDATE. Floating times are read as UTC here.

use calcard::common::timezone::Tz;
use calcard::icalendar::{ICalendar, ICalendarComponentType};
use kith_dav::component::{Component, Document, Item};

use crate::timerange::{self, Instance, TimeRange, format_utc};

/// Properties an expanded instance replaces or drops.
const DROPPED: [&str; 7] = [
    "DTSTART",
    "DTEND",
    "DURATION",
    "RRULE",
    "RDATE",
    "EXDATE",
    "RECURRENCE-ID",
];

/// The object expanded over `range`; `None` when it does not parse.
pub fn expand(bytes: &[u8], range: &TimeRange) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let calcard::Entry::ICalendar(cal) = calcard::Parser::new(text).entry() else {
        return None;
    };
    let doc = Document::parse(bytes)?;
    let vcalendar = doc.items.iter().find_map(|i| match i {
        Item::Component(c) => Some(c),
        _ => None,
    })?;
    let children = object_components(vcalendar);
    let ids = object_ids(&cal);
    let mut out = String::from("BEGIN:VCALENDAR\r\n");
    for item in &vcalendar.items {
        if let Item::Property(line) = item {
            out.push_str(&String::from_utf8_lossy(line.raw()));
        }
    }
    for instance in timerange::instances_in(&cal, range, Tz::UTC) {
        let Some(at) = ids.iter().position(|id| *id == instance.comp) else {
            continue;
        };
        if let Some(component) = children.get(at) {
            write_instance(&mut out, component, &instance);
        }
    }
    out.push_str("END:VCALENDAR\r\n");
    Some(out)
}

/// The VCALENDAR's components other than VTIMEZONE, in file order.
fn object_components<'a, 'b>(vcalendar: &'b Component<'a>) -> Vec<&'b Component<'a>> {
    vcalendar
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Component(c) if c.name != "VTIMEZONE" => Some(c),
            _ => None,
        })
        .collect()
}

/// calcard's ids of the same components, in the same order.
fn object_ids(cal: &ICalendar) -> Vec<u32> {
    let Some(root) = cal.components.first() else {
        return Vec::new();
    };
    root.component_ids
        .iter()
        .copied()
        .filter(|id| {
            cal.component_by_id(*id)
                .is_some_and(|c| c.component_type != ICalendarComponentType::VTimezone)
        })
        .collect()
}

fn write_instance(out: &mut String, component: &Component<'_>, instance: &Instance) {
    out.push_str(&format!("BEGIN:{}\r\n", component.name));
    for item in &component.items {
        match item {
            Item::Property(line) if DROPPED.contains(&line.name().as_str()) => {}
            other => {
                let mut raw = Vec::new();
                other.write_raw(&mut raw);
                out.push_str(&String::from_utf8_lossy(&raw));
            }
        }
    }
    let start = format_utc(instance.start);
    out.push_str(&format!("RECURRENCE-ID:{start}\r\nDTSTART:{start}\r\n"));
    if instance.end > instance.start {
        out.push_str(&format!("DTEND:{}\r\n", format_utc(instance.end)));
    }
    out.push_str(&format!("END:{}\r\n", component.name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_event_with_a_moved_instance() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VEVENT\r\nUID:w\r\nDTSTART;TZID=Europe/Berlin:20260302T090000\r\nDTEND;TZID=Europe/Berlin:20260302T100000\r\nRRULE:FREQ=WEEKLY;COUNT=5\r\nSUMMARY:Standup\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:w\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260309T090000\r\nDTSTART;TZID=Europe/Berlin:20260310T090000\r\nDTEND;TZID=Europe/Berlin:20260310T100000\r\nSUMMARY:Moved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let range = TimeRange::parse(Some("20260301T000000Z"), Some("20260317T000000Z")).unwrap();
        let out = expand(text.as_bytes(), &range).unwrap();
        assert_eq!(out.matches("BEGIN:VEVENT").count(), 3, "{out}");
        assert!(!out.contains("RRULE"), "{out}");
        assert!(out.contains("DTSTART:20260302T080000Z\r\n"), "{out}");
        assert!(out.contains("SUMMARY:Moved\r\nRECURRENCE-ID:20260310T080000Z\r\nDTSTART:20260310T080000Z\r\nDTEND:20260310T090000Z\r\n"), "{out}");
        assert_eq!(out.matches("BEGIN:VALARM").count(), 2, "{out}");
    }
}
