//! CalDAV (RFC 4791) as a kith-dav [`CollectionKind`]: calendars under
//! `/calendar/<user>/<calendar>/`, one calendar object per `.ics` file, byte for byte as
//! PUT.
//!
//! Collection metadata follows the vdir convention, so `kith export
//! /calendar/<user>/<calendar>` gives a folder khal and vdirsyncer read: `displayname` and
//! `color` files hold those properties; `description` holds `calendar-description`;
//! other properties (`calendar-timezone`, `calendar-order`, the
//! `supported-calendar-component-set` given at MKCALENDAR) go in `.dav-props`, which vdir
//! tools ignore.

use std::collections::BTreeMap;
use std::sync::Arc;

use calcard::common::timezone::Tz;
use calcard::icalendar::{ICalendar, ICalendarComponentType, ICalendarProperty, ICalendarValue};
use http::StatusCode;
use kith_dav::component::{Component, Document, Item};
use kith_dav::props::dead_props;
use kith_dav::report::{Report, multiget, requested_props};
use kith_dav::xml::{APPLE, CALDAV, DAV, Element, Name, escape};
use kith_dav::{CollectionKind, MetadataFile, Refusal, Reply};

use crate::filter::{Filter, parse_range};
use crate::occurrences::Occurrences;
use crate::timerange::{self, TimeRange, format_utc};

/// The largest calendar object accepted, in bytes.
pub const MAX_SIZE: usize = 10 * 1024 * 1024;
/// The component types a calendar holds unless MKCALENDAR said otherwise.
pub const COMPONENTS: [&str; 3] = ["VEVENT", "VTODO", "VJOURNAL"];

/// Calendars: the CalDAV collection kind.
#[derive(Clone, Debug, Default)]
pub struct Calendars {
    occurrences: Arc<Occurrences>,
}

impl CollectionKind for Calendars {
    fn prefix(&self) -> &'static str {
        "calendar"
    }

    fn extension(&self) -> &'static str {
        "ics"
    }

    fn content_type(&self) -> &'static str {
        "text/calendar; charset=utf-8"
    }

    fn resource_type(&self) -> Name {
        Name::new(CALDAV, "calendar")
    }

    fn home_set(&self) -> Name {
        Name::new(CALDAV, "calendar-home-set")
    }

    fn dav_class(&self) -> &'static str {
        "calendar-access"
    }

    fn reports(&self) -> Vec<Name> {
        ["calendar-query", "calendar-multiget", "free-busy-query"]
            .map(|r| Name::new(CALDAV, r))
            .to_vec()
    }

    fn metadata_files(&self) -> Vec<MetadataFile> {
        let file = |ns, local, file| MetadataFile {
            property: Name::new(ns, local),
            file,
        };
        vec![
            file(DAV, "displayname", "displayname"),
            file(CALDAV, "calendar-description", "description"),
            file(APPLE, "calendar-color", "color"),
        ]
    }

    fn collection_properties(&self) -> Vec<(Name, String)> {
        vec![
            (
                Name::new(CALDAV, "supported-calendar-component-set"),
                component_set(&COMPONENTS),
            ),
            (
                Name::new(CALDAV, "supported-calendar-data"),
                "<cal:calendar-data content-type=\"text/calendar\" version=\"2.0\"/>".into(),
            ),
            (Name::new(CALDAV, "max-resource-size"), MAX_SIZE.to_string()),
            (
                Name::new(CALDAV, "supported-collation-set"),
                ["i;ascii-casemap", "i;octet", "i;unicode-casemap"]
                    .map(|c| format!("<cal:supported-collation>{c}</cal:supported-collation>"))
                    .concat(),
            ),
        ]
    }

    fn validate(&self, bytes: &[u8]) -> Result<String, Refusal> {
        validate(bytes).map(|o| o.uid).map_err(|message| {
            Refusal::condition(
                StatusCode::FORBIDDEN,
                Name::new(CALDAV, "valid-calendar-data"),
                message,
            )
        })
    }

    fn check_item(&self, bytes: &[u8], dead: &BTreeMap<Name, String>) -> Result<(), Refusal> {
        let Some(allowed) = dead
            .get(&Name::new(CALDAV, "supported-calendar-component-set"))
            .map(|v| set_names(v))
        else {
            return Ok(());
        };
        let component = object_component(bytes).unwrap_or_default();
        if allowed.contains(&component) {
            return Ok(());
        }
        Err(Refusal::condition(
            StatusCode::FORBIDDEN,
            Name::new(CALDAV, "supported-calendar-component"),
            format!(
                "this calendar holds only {}; put the {component} in another calendar",
                allowed.join(", ")
            ),
        ))
    }

    fn check_collection(&self, props: &[Element]) -> Result<(), Refusal> {
        let Some(set) = props
            .iter()
            .find(|p| p.is(CALDAV, "supported-calendar-component-set"))
        else {
            return Ok(());
        };
        let names: Vec<String> = set
            .children_named(CALDAV, "comp")
            .filter_map(|c| c.attr("name").map(str::to_ascii_uppercase))
            .collect();
        if !names.is_empty() && names.iter().all(|n| is_object_component(n)) {
            return Ok(());
        }
        Err(Refusal::condition(
            StatusCode::FORBIDDEN,
            Name::new(CALDAV, "supported-calendar-component"),
            "supported-calendar-component-set may list VEVENT, VTODO, VJOURNAL, VFREEBUSY",
        ))
    }

    fn item_property(&self, prop: &Element, bytes: &[u8]) -> Option<String> {
        if !prop.is(CALDAV, "calendar-data") {
            return None;
        }
        let expanded = prop
            .child(CALDAV, "expand")
            .and_then(|e| TimeRange::parse(e.attr("start"), e.attr("end")))
            .and_then(|range| crate::expand::expand(bytes, &range));
        Some(escape(&expanded.unwrap_or_else(|| {
            String::from_utf8_lossy(bytes).into_owned()
        })))
    }

    fn is_item_property(&self, name: &Name) -> bool {
        name.is(CALDAV, "calendar-data")
    }

    fn report(&self, report: &Report, body: &Element) -> Option<Result<Reply, Refusal>> {
        if body.is(CALDAV, "calendar-multiget") {
            Some(Ok(multiget(report, body)))
        } else if body.is(CALDAV, "calendar-query") {
            Some(calendar_query(&self.occurrences, report, body))
        } else if body.is(CALDAV, "free-busy-query") {
            Some(free_busy(report, body))
        } else {
            None
        }
    }

    fn uid_conflict(&self, href: &str) -> Refusal {
        Refusal::condition(
            StatusCode::FORBIDDEN,
            Name::new(CALDAV, "no-uid-conflict"),
            format!("{href} already holds a calendar object with this UID"),
        )
    }
}

fn component_set(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("<cal:comp name=\"{n}\"/>"))
        .collect()
}

fn is_object_component(name: &str) -> bool {
    matches!(name, "VEVENT" | "VTODO" | "VJOURNAL" | "VFREEBUSY")
}

/// Reads a dead property's stored inner XML back as an element's children and text.
fn dead_element(inner: &str) -> Option<Element> {
    let wrapped = format!("<r xmlns:cal=\"{CALDAV}\">{inner}</r>");
    kith_dav::xml::parse(wrapped.as_bytes()).ok()
}

/// The component names of a stored `supported-calendar-component-set`.
fn set_names(inner: &str) -> Vec<String> {
    dead_element(inner)
        .map(|e| {
            e.children_named(CALDAV, "comp")
                .filter_map(|c| c.attr("name").map(str::to_ascii_uppercase))
                .collect()
        })
        .unwrap_or_default()
}

/// What validation learns about a calendar object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The UID every component shares.
    pub uid: String,
    /// The component type (VEVENT, VTODO, VJOURNAL, VFREEBUSY).
    pub component: String,
}

/// Checks a PUT body (RFC 4791 §4.1): UTF-8, one VCALENDAR that both calcard and the
/// content-line parser accept, whose components (besides VTIMEZONEs) are of one type and
/// share one UID, with at most one master (no RECURRENCE-ID), and whose dates and
/// recurrence rules calcard can expand.
pub fn validate(bytes: &[u8]) -> Result<Object, String> {
    if bytes.len() > MAX_SIZE {
        return Err(format!("a calendar object may be at most {MAX_SIZE} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "the iCalendar is not UTF-8".to_string())?;
    let mut parser = calcard::Parser::new(text);
    let cal = match (parser.entry(), parser.entry()) {
        (calcard::Entry::ICalendar(c), calcard::Entry::Eof) => c,
        (calcard::Entry::ICalendar(_), _) => {
            return Err("send exactly one VCALENDAR per resource".into());
        }
        (other, _) => return Err(format!("not a valid iCalendar: {other:?}")),
    };
    let doc = Document::parse(bytes).ok_or("the iCalendar's lines or BEGIN/END do not parse")?;
    let mut tops = doc.items.iter().filter_map(|i| match i {
        Item::Component(c) => Some(c),
        _ => None,
    });
    let vcalendar = match (tops.next(), tops.next()) {
        (Some(c), None) if c.name == "VCALENDAR" => c,
        _ => return Err("send exactly one BEGIN:VCALENDAR ... END:VCALENDAR".into()),
    };
    let object = one_object(vcalendar)?;
    check_dates(&cal)?;
    Ok(object)
}

/// The UID and type of the object a VCALENDAR holds.
fn one_object(vcalendar: &Component<'_>) -> Result<Object, String> {
    let comps: Vec<&Component<'_>> = vcalendar
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Component(c) if c.name != "VTIMEZONE" => Some(c),
            _ => None,
        })
        .collect();
    let first = comps
        .first()
        .ok_or("the VCALENDAR holds no VEVENT, VTODO or VJOURNAL")?;
    if !is_object_component(&first.name) {
        return Err(format!("{} is not a calendar object component", first.name));
    }
    let value = |c: &Component<'_>, p: &str| {
        c.property(p)
            .map(|l| String::from_utf8_lossy(l.value()).trim().to_string())
    };
    let uid = value(first, "UID").unwrap_or_default();
    if uid.is_empty() {
        return Err("the calendar object has no UID; CalDAV needs one".into());
    }
    if comps.iter().any(|c| c.name != first.name) {
        return Err("one calendar object holds components of one type only".into());
    }
    if comps
        .iter()
        .any(|c| value(c, "UID").as_deref() != Some(&uid))
    {
        return Err("every component of a calendar object shares one UID; \
                    put other events in their own resources"
            .into());
    }
    let masters = comps
        .iter()
        .filter(|c| c.property("RECURRENCE-ID").is_none())
        .count();
    if masters > 1 {
        return Err("only one component may lack RECURRENCE-ID".into());
    }
    Ok(Object {
        uid,
        component: first.name.clone(),
    })
}

/// The type of the first component in an (already validated) object's VCALENDAR that
/// is not a VTIMEZONE.
fn object_component(bytes: &[u8]) -> Option<String> {
    let doc = Document::parse(bytes)?;
    let vcalendar = doc.items.iter().find_map(|i| match i {
        Item::Component(c) => Some(c),
        _ => None,
    })?;
    vcalendar.items.iter().find_map(|i| match i {
        Item::Component(c) if c.name != "VTIMEZONE" => Some(c.name.clone()),
        _ => None,
    })
}

/// Refuses objects whose start, end, duration or RRULE calcard cannot read.
fn check_dates(cal: &ICalendar) -> Result<(), String> {
    let unreadable_rule = cal.components.iter().any(|c| {
        c.entries.iter().any(|e| {
            e.name == ICalendarProperty::Rrule
                && !matches!(e.values.first(), Some(ICalendarValue::RecurrenceRule(_)))
        })
    });
    if unreadable_rule {
        return Err("an RRULE does not parse (RFC 5545 §3.3.10)".into());
    }
    let expansion = cal.expand_dates(Tz::UTC, 1);
    match expansion.errors.first() {
        None => Ok(()),
        Some(e) => Err(format!(
            "the dates of the calendar object do not parse: {:?}",
            e.error
        )),
    }
}

/// The zone floating times are read in: the query's `timezone`, else the calendar's
/// `calendar-timezone`, else UTC.
fn query_zone(report: &Report, body: &Element) -> Tz {
    let given = body
        .child(CALDAV, "timezone")
        .and_then(|t| timerange::zone_of(&t.text));
    given
        .or_else(|| {
            let dead = dead_props(&report.store, &report.dir).ok()?;
            let inner = dead.get(&Name::new(CALDAV, "calendar-timezone"))?;
            timerange::zone_of(&dead_element(inner)?.text)
        })
        .unwrap_or(Tz::UTC)
}

fn internal(e: kith_dav::Error) -> Refusal {
    Refusal::plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// `calendar-query` (RFC 4791 §7.8). `calendar-data` comes back whole, or expanded when
/// it asks (`limit-recurrence-set` and property selection are not applied).
///
/// The remembered [`Occurrences`] decide the time ranges, so most objects are never read;
/// the rest of the filter, if any, is evaluated on the object itself.
fn calendar_query(
    occurrences: &Arc<Occurrences>,
    report: &Report,
    body: &Element,
) -> Result<Reply, Refusal> {
    let props = requested_props(body);
    let filter = body
        .child(CALDAV, "filter")
        .ok_or_else(|| kith_dav::textmatch::invalid_filter(CALDAV, "calendar-query needs a filter"))
        .and_then(Filter::parse)?;
    let zone = query_zone(report, body);
    let ranges = filter.required_ranges();
    let decided = filter.is_time_ranges_only();
    let items = report.items().map_err(internal)?;
    let (r, occurrences) = (report.clone(), Arc::clone(occurrences));
    let responses = items.into_iter().filter_map(move |(name, hash)| {
        let load = || r.store.blob(&hash).ok();
        let mut known = true;
        for (component, range) in &ranges {
            match occurrences.occurs(&hash, zone, component, range, load) {
                Some(false) => return None,
                Some(true) => {}
                None => known = false,
            }
        }
        let read_object = !(decided && known);
        if read_object && !filter.matches(&load()?, zone) {
            return None;
        }
        r.response(&name, &hash, &props).ok()
    });
    Ok(report.reply(responses, false))
}

/// `free-busy-query` (RFC 4791 §7.10): a VFREEBUSY of the busy periods of the opaque,
/// not cancelled events that overlap the range.
fn free_busy(report: &Report, body: &Element) -> Result<Reply, Refusal> {
    let range = body
        .child(CALDAV, "time-range")
        .ok_or_else(|| {
            kith_dav::textmatch::invalid_filter(CALDAV, "free-busy-query needs a time-range")
        })
        .and_then(parse_range)?;
    let zone = query_zone(report, body);
    let mut periods = Vec::new();
    for (_, hash) in report.items().map_err(internal)? {
        let bytes = report.store.blob(&hash).map_err(|e| internal(e.into()))?;
        periods.extend(busy_periods(&bytes, &range, zone));
    }
    periods.sort_unstable();
    let text = vfreebusy(&range, &periods);
    Ok(Reply {
        chunks: Box::new(std::iter::once(text)),
        content_type: Some("text/calendar; charset=utf-8"),
    })
}

/// The busy (start, end) periods of one object within `range`.
fn busy_periods(bytes: &[u8], range: &TimeRange, zone: Tz) -> Vec<(i64, i64)> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    let calcard::Entry::ICalendar(cal) = calcard::Parser::new(text).entry() else {
        return Vec::new();
    };
    timerange::instances_in(&cal, range, zone)
        .into_iter()
        .filter(|i| i.component == ICalendarComponentType::VEvent && is_busy(&cal, i.comp))
        .map(|i| {
            let start = range.start.map_or(i.start, |s| i.start.max(s));
            let end = range.end.map_or(i.end, |e| i.end.min(e));
            (start, end)
        })
        .collect()
}

fn is_busy(cal: &ICalendar, comp: u32) -> bool {
    let Some(c) = cal.component_by_id(comp) else {
        return false;
    };
    let text = |p: ICalendarProperty| {
        c.property(&p)
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_text())
            .map(str::to_ascii_uppercase)
    };
    text(ICalendarProperty::Transp).as_deref() != Some("TRANSPARENT")
        && text(ICalendarProperty::Status).as_deref() != Some("CANCELLED")
}

fn vfreebusy(range: &TimeRange, periods: &[(i64, i64)]) -> String {
    let mut out = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kith//CalDAV//EN\r\nBEGIN:VFREEBUSY\r\n",
    );
    if let Some(s) = range.start {
        out.push_str(&format!("DTSTART:{}\r\n", format_utc(s)));
    }
    if let Some(e) = range.end {
        out.push_str(&format!("DTEND:{}\r\n", format_utc(e)));
    }
    for (s, e) in periods {
        out.push_str(&format!(
            "FREEBUSY:{}/{}\r\n",
            format_utc(*s),
            format_utc(*e)
        ));
    }
    out.push_str("END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(body: &str) -> String {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n{body}END:VCALENDAR\r\n")
    }

    #[test]
    fn validation() {
        let event = "BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260101T100000Z\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n";
        let over = "BEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID:20260102T100000Z\r\nDTSTART:20260102T110000Z\r\nEND:VEVENT\r\n";
        let ok = validate(wrap(&format!("{event}{over}")).as_bytes()).unwrap();
        assert_eq!((ok.uid.as_str(), ok.component.as_str()), ("a", "VEVENT"));
        let other = event.replace("UID:a", "UID:b");
        for bad in [
            wrap(&format!("{event}{other}")),
            wrap(&format!("{event}{event}")),
            wrap(&event.replace("UID:a\r\n", "")),
            wrap(&event.replace("FREQ=DAILY", "FREQ=SOMETIMES")),
            wrap(&format!("{event}BEGIN:VTODO\r\nUID:a\r\nEND:VTODO\r\n")),
            wrap(""),
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n".to_string(),
            "hello".to_string(),
        ] {
            assert!(validate(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn component_set_is_enforced() {
        let mut dead = BTreeMap::new();
        dead.insert(
            Name::new(CALDAV, "supported-calendar-component-set"),
            "<x:comp xmlns:x=\"urn:ietf:params:xml:ns:caldav\" name=\"VTODO\"></x:comp>".into(),
        );
        let todo = wrap("BEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\n");
        let event = wrap("BEGIN:VEVENT\r\nUID:e\r\nDTSTART:20260101T100000Z\r\nEND:VEVENT\r\n");
        assert!(
            Calendars::default()
                .check_item(todo.as_bytes(), &dead)
                .is_ok()
        );
        let refused = Calendars::default()
            .check_item(event.as_bytes(), &dead)
            .unwrap_err();
        assert_eq!(
            refused.condition,
            Some(Name::new(CALDAV, "supported-calendar-component"))
        );
    }

    #[test]
    fn free_busy_skips_transparent_and_cancelled() {
        let busy = wrap(
            "BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260101T100000Z\r\nDTEND:20260101T110000Z\r\nRRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:b\r\nRECURRENCE-ID:20260102T100000Z\r\nSTATUS:CANCELLED\r\nDTSTART:20260102T100000Z\r\nDTEND:20260102T110000Z\r\nEND:VEVENT\r\n",
        );
        let range = TimeRange::parse(Some("20260101T000000Z"), Some("20260110T000000Z")).unwrap();
        let periods = busy_periods(busy.as_bytes(), &range, Tz::UTC);
        assert_eq!(periods.len(), 2);
        let free = wrap(
            "BEGIN:VEVENT\r\nUID:f\r\nTRANSP:TRANSPARENT\r\nDTSTART:20260101T100000Z\r\nDTEND:20260101T110000Z\r\nEND:VEVENT\r\n",
        );
        assert!(busy_periods(free.as_bytes(), &range, Tz::UTC).is_empty());
    }
}
