//! The `calendar-query` filter (RFC 4791 §9.7): nested comp-filters, prop-filters and
//! param-filters, `is-not-defined`, text-matches (kith-dav's [`textmatch`], shared with
//! CardDAV) and time-ranges on components (the [`timerange`] module), evaluated over an
//! iCalendar object's content lines.
//!
//! Every test in a CalDAV filter must hold (there is no `anyof`). A time-range on a
//! VEVENT, VTODO, VJOURNAL or VFREEBUSY comp-filter asks whether any instance of that
//! component type in the object overlaps; time-ranges on VALARMs and on properties are
//! refused with `supported-filter`.

use std::cell::OnceCell;

use calcard::common::timezone::Tz;
use calcard::icalendar::{ICalendar, ICalendarComponentType};
use http::StatusCode;
use kith_dav::Refusal;
use kith_dav::component::{Component, Document, Item};
use kith_dav::contentline::Line;
use kith_dav::textmatch::{self, TextMatch, invalid_filter};
use kith_dav::xml::{CALDAV, Element, Name};

use crate::timerange::{self, TimeRange};

/// A whole `filter`: the comp-filter on VCALENDAR.
#[derive(Clone, Debug)]
pub struct Filter {
    root: CompFilter,
}

#[derive(Clone, Debug)]
struct CompFilter {
    name: String,
    not_defined: bool,
    time_range: Option<(ICalendarComponentType, TimeRange)>,
    props: Vec<PropFilter>,
    comps: Vec<CompFilter>,
}

#[derive(Clone, Debug)]
struct PropFilter {
    name: String,
    not_defined: bool,
    text: Option<TextMatch>,
    params: Vec<ParamFilter>,
}

#[derive(Clone, Debug)]
struct ParamFilter {
    name: String,
    not_defined: bool,
    text: Option<TextMatch>,
}

/// How deep comp-filters may nest (VCALENDAR, VEVENT, VALARM and some slack).
const MAX_NESTING: usize = 8;

impl Filter {
    /// Parses a `CALDAV:filter` element, which holds exactly one comp-filter on VCALENDAR.
    pub fn parse(e: &Element) -> Result<Filter, Refusal> {
        let mut comps = e.children_named(CALDAV, "comp-filter");
        let root = match (comps.next(), comps.next()) {
            (Some(c), None) => CompFilter::parse(c, 0)?,
            _ => return Err(bad("a filter holds exactly one comp-filter")),
        };
        if root.name != "VCALENDAR" {
            return Err(bad("the outer comp-filter must name VCALENDAR"));
        }
        Ok(Filter { root })
    }

    /// The time ranges a matching object must occur in, with the component type each is
    /// on: those of the comp-filters directly under VCALENDAR.
    pub fn required_ranges(&self) -> Vec<(ICalendarComponentType, TimeRange)> {
        if self.root.not_defined {
            return Vec::new();
        }
        self.root
            .comps
            .iter()
            .filter(|c| !c.not_defined)
            .filter_map(|c| c.time_range.clone())
            .collect()
    }

    /// Whether the [`required_ranges`](Filter::required_ranges) are all the filter tests:
    /// each comp-filter under VCALENDAR has a time-range and nothing else. Such a filter
    /// matches exactly the objects that occur in every one of them.
    pub fn is_time_ranges_only(&self) -> bool {
        let root = &self.root;
        let plain = |c: &CompFilter| {
            !c.not_defined && c.time_range.is_some() && c.props.is_empty() && c.comps.is_empty()
        };
        !root.not_defined
            && root.props.is_empty()
            && !root.comps.is_empty()
            && root.comps.iter().all(plain)
    }

    /// Whether the calendar object `bytes` matches, reading floating times in `zone`.
    pub fn matches(&self, bytes: &[u8], zone: Tz) -> bool {
        let Some(doc) = Document::parse(bytes) else {
            return false;
        };
        let text = String::from_utf8_lossy(bytes);
        let eval = Eval {
            text: &text,
            parsed: OnceCell::new(),
            zone,
        };
        let tops: Vec<&Component<'_>> = components(&doc.items).collect();
        matches_among(&self.root, &tops, &eval)
    }
}

impl CompFilter {
    fn parse(e: &Element, depth: usize) -> Result<CompFilter, Refusal> {
        if depth >= MAX_NESTING {
            return Err(bad("comp-filters nest too deep"));
        }
        let name = textmatch::name_attr(e, CALDAV)?;
        let time_range = match e.child(CALDAV, "time-range") {
            None => None,
            Some(t) => Some((time_ranged(&name)?, parse_range(t)?)),
        };
        Ok(CompFilter {
            not_defined: e.child(CALDAV, "is-not-defined").is_some(),
            time_range,
            props: e
                .children_named(CALDAV, "prop-filter")
                .map(PropFilter::parse)
                .collect::<Result<_, _>>()?,
            comps: e
                .children_named(CALDAV, "comp-filter")
                .map(|c| CompFilter::parse(c, depth + 1))
                .collect::<Result<_, _>>()?,
            name,
        })
    }
}

impl PropFilter {
    fn parse(e: &Element) -> Result<PropFilter, Refusal> {
        if e.child(CALDAV, "time-range").is_some() {
            return Err(unsupported("time-range on a property is not supported"));
        }
        Ok(PropFilter {
            name: textmatch::name_attr(e, CALDAV)?,
            not_defined: e.child(CALDAV, "is-not-defined").is_some(),
            text: text_match(e)?,
            params: e
                .children_named(CALDAV, "param-filter")
                .map(|p| {
                    Ok(ParamFilter {
                        name: textmatch::name_attr(p, CALDAV)?,
                        not_defined: p.child(CALDAV, "is-not-defined").is_some(),
                        text: text_match(p)?,
                    })
                })
                .collect::<Result<_, Refusal>>()?,
        })
    }
}

fn text_match(e: &Element) -> Result<Option<TextMatch>, Refusal> {
    e.child(CALDAV, "text-match")
        .map(|t| TextMatch::parse(t, CALDAV))
        .transpose()
}

/// The component type a time-range may be put on.
fn time_ranged(name: &str) -> Result<ICalendarComponentType, Refusal> {
    match name {
        "VEVENT" => Ok(ICalendarComponentType::VEvent),
        "VTODO" => Ok(ICalendarComponentType::VTodo),
        "VJOURNAL" => Ok(ICalendarComponentType::VJournal),
        "VFREEBUSY" => Ok(ICalendarComponentType::VFreebusy),
        other => Err(unsupported(&format!(
            "time-range on {other} is not supported; put it on VEVENT, VTODO, VJOURNAL or VFREEBUSY"
        ))),
    }
}

/// Parses a `time-range` element (RFC 4791 §9.9).
pub fn parse_range(e: &Element) -> Result<TimeRange, Refusal> {
    TimeRange::parse(e.attr("start"), e.attr("end")).ok_or_else(|| {
        bad("a time-range needs start and/or end as UTC date-times, e.g. 20260101T000000Z")
    })
}

fn bad(message: &str) -> Refusal {
    invalid_filter(CALDAV, message)
}

fn unsupported(message: &str) -> Refusal {
    Refusal::condition(
        StatusCode::FORBIDDEN,
        Name::new(CALDAV, "supported-filter"),
        message,
    )
}

/// The object being evaluated: its text, parsed by calcard on first need.
struct Eval<'a> {
    text: &'a str,
    parsed: OnceCell<Option<ICalendar>>,
    zone: Tz,
}

impl Eval<'_> {
    fn calendar(&self) -> Option<&ICalendar> {
        self.parsed
            .get_or_init(|| match calcard::Parser::new(self.text).entry() {
                calcard::Entry::ICalendar(c) => Some(c),
                _ => None,
            })
            .as_ref()
    }
}

fn components<'a, 'b>(items: &'b [Item<'a>]) -> impl Iterator<Item = &'b Component<'a>> {
    items.iter().filter_map(|i| match i {
        Item::Component(c) => Some(c),
        _ => None,
    })
}

/// Whether a comp-filter holds among sibling components: none of its name when
/// `is-not-defined`, else one of them matches.
fn matches_among(f: &CompFilter, siblings: &[&Component<'_>], eval: &Eval<'_>) -> bool {
    let mut named = siblings.iter().filter(|c| c.name == f.name).peekable();
    if f.not_defined {
        return named.peek().is_none();
    }
    named.any(|c| comp_matches(f, c, eval))
}

fn comp_matches(f: &CompFilter, comp: &Component<'_>, eval: &Eval<'_>) -> bool {
    if let Some((kind, range)) = &f.time_range {
        let occurs = eval
            .calendar()
            .is_some_and(|cal| timerange::occurs(cal, kind, range, eval.zone));
        if !occurs {
            return false;
        }
    }
    let children: Vec<&Component<'_>> = components(&comp.items).collect();
    f.props.iter().all(|p| prop_matches(p, comp))
        && f.comps.iter().all(|c| matches_among(c, &children, eval))
}

fn prop_matches(f: &PropFilter, comp: &Component<'_>) -> bool {
    let mut lines = comp.items.iter().filter_map(|i| match i {
        Item::Property(l) if l.name() == f.name => Some(l),
        _ => None,
    });
    if f.not_defined {
        return lines.next().is_none();
    }
    lines.any(|line| line_matches(f, line))
}

fn line_matches(f: &PropFilter, line: &Line<'_>) -> bool {
    let text_ok = f
        .text
        .as_ref()
        .is_none_or(|t| t.matches(&textmatch::text_value(line)));
    text_ok
        && f.params
            .iter()
            .all(|p| textmatch::param_matches(line, &p.name, p.not_defined, p.text.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &[u8] = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VTODO\r\nUID:1\r\nSUMMARY:Buy Milk\r\nDUE;TZID=Europe/Berlin:20260110T100000\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";

    fn filter(inner: &str) -> Result<Filter, Refusal> {
        let body = format!(
            "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">{inner}</C:comp-filter></C:filter>"
        );
        Filter::parse(&kith_dav::xml::parse(body.as_bytes()).unwrap())
    }

    fn hit(inner: &str) -> bool {
        filter(inner).unwrap().matches(TASK, Tz::UTC)
    }

    #[test]
    fn components_properties_parameters() {
        assert!(hit(""));
        assert!(hit(r#"<C:comp-filter name="VTODO"/>"#));
        assert!(!hit(r#"<C:comp-filter name="VEVENT"/>"#));
        assert!(hit(
            r#"<C:comp-filter name="VEVENT"><C:is-not-defined/></C:comp-filter>"#
        ));
        assert!(hit(
            r#"<C:comp-filter name="VTODO"><C:comp-filter name="VALARM"/></C:comp-filter>"#
        ));
        assert!(hit(
            r#"<C:comp-filter name="VTODO"><C:prop-filter name="SUMMARY"><C:text-match>milk</C:text-match></C:prop-filter></C:comp-filter>"#
        ));
        assert!(!hit(
            r#"<C:comp-filter name="VTODO"><C:prop-filter name="SUMMARY"><C:text-match collation="i;octet">milk</C:text-match></C:prop-filter></C:comp-filter>"#
        ));
        assert!(hit(
            r#"<C:comp-filter name="VTODO"><C:prop-filter name="SUMMARY"><C:text-match negate-condition="yes">eggs</C:text-match></C:prop-filter></C:comp-filter>"#
        ));
        assert!(hit(
            r#"<C:comp-filter name="VTODO"><C:prop-filter name="DUE"><C:param-filter name="TZID"><C:text-match match-type="equals">europe/berlin</C:text-match></C:param-filter></C:prop-filter></C:comp-filter>"#
        ));
        assert!(hit(
            r#"<C:comp-filter name="VTODO"><C:prop-filter name="COMPLETED"><C:is-not-defined/></C:prop-filter></C:comp-filter>"#
        ));
    }

    #[test]
    fn todo_time_range() {
        let tr = |a: &str, b: &str| {
            hit(&format!(
                r#"<C:comp-filter name="VTODO"><C:time-range start="{a}" end="{b}"/></C:comp-filter>"#
            ))
        };
        // DUE 10:00 Berlin is 09:00Z.
        assert!(tr("20260110T080000Z", "20260110T090000Z"));
        assert!(!tr("20260110T090000Z", "20260110T100000Z"));
    }

    #[test]
    fn refusals() {
        let no_root = "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VEVENT\"/></C:filter>";
        assert!(Filter::parse(&kith_dav::xml::parse(no_root.as_bytes()).unwrap()).is_err());
        assert!(
            filter(
                r#"<C:comp-filter name="VEVENT"><C:time-range start="yesterday"/></C:comp-filter>"#
            )
            .is_err()
        );
        let alarm = filter(
            r#"<C:comp-filter name="VTODO"><C:comp-filter name="VALARM"><C:time-range start="20260101T000000Z"/></C:comp-filter></C:comp-filter>"#,
        );
        assert_eq!(
            alarm.unwrap_err().condition,
            Some(Name::new(CALDAV, "supported-filter"))
        );
    }
}
