//! Properties of the iCalendar merge, checked against a model merge of generated events:
//! a recurring series with overrides, attendees, exception dates and alarms.

use std::collections::{BTreeMap, BTreeSet};

use kith_calendar::IcalMerge;
use kith_dav::component::{Document, Item};
use kith_store::{ContentMerge, Merged};
use proptest::prelude::*;

/// One event of the series: the master (`rid` none) or an override.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    summary: u8,
    seq: u8,
    stamp: u8,
    /// Attendee number -> participation status.
    attendees: BTreeMap<u8, u8>,
    exdates: BTreeSet<u8>,
    alarms: BTreeSet<u8>,
}

/// Events by RECURRENCE-ID (none for the master).
type Calendar = BTreeMap<Option<u8>, Event>;

#[derive(Clone, Debug)]
enum Op {
    Summary(usize, u8),
    Bump(usize, u8),
    Stamp(usize, u8),
    Attendee(usize, u8, Option<u8>),
    Exdate(usize, u8),
    Alarm(usize, u8),
    AddOverride(u8),
    Remove(usize),
}

const PARTSTAT: [&str; 3] = ["NEEDS-ACTION", "ACCEPTED", "DECLINED"];

fn event_lines(rid: Option<u8>, e: &Event) -> Vec<String> {
    let mut lines = vec!["UID:series@example.org".to_string()];
    if let Some(rid) = rid {
        lines.push(format!(
            "RECURRENCE-ID;TZID=Europe/Berlin:202401{:02}T100000",
            rid + 1
        ));
    }
    lines.push(format!("DTSTAMP:2024030{}T120000Z", e.stamp));
    lines.push(format!("SEQUENCE:{}", e.seq));
    lines.push(format!(
        "SUMMARY:Meeting {} with a summary long enough to be folded somewhere",
        e.summary
    ));
    for (a, s) in &e.attendees {
        lines.push(format!(
            "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT={};CN=Person {a}:mailto:p{a}@example.org",
            PARTSTAT[*s as usize]
        ));
    }
    for d in &e.exdates {
        lines.push(format!(
            "EXDATE;TZID=Europe/Berlin:202402{:02}T100000",
            d + 1
        ));
    }
    lines
}

fn alarm_lines(a: u8) -> Vec<String> {
    vec![
        "ACTION:DISPLAY".into(),
        format!("TRIGGER:-PT{a}M"),
        "DESCRIPTION:Reminder".into(),
    ]
}

fn fold(line: &str, width: Option<usize>, eol: &str) -> String {
    let Some(width) = width else {
        return format!("{line}{eol}");
    };
    let chars: Vec<char> = line.chars().collect();
    let pieces: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
    format!("{}{eol}", pieces.join(&format!("{eol} ")))
}

fn render(cal: &Calendar, width: Option<usize>, crlf: bool) -> Vec<u8> {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//Kith//Test//EN".into(),
    ];
    for (rid, e) in cal {
        lines.push("BEGIN:VEVENT".into());
        lines.extend(event_lines(*rid, e));
        for a in &e.alarms {
            lines.push("BEGIN:VALARM".into());
            lines.extend(alarm_lines(*a));
            lines.push("END:VALARM".into());
        }
        lines.push("END:VEVENT".into());
    }
    lines.push("END:VCALENDAR".into());
    lines
        .iter()
        .map(|l| fold(l, width, eol))
        .collect::<String>()
        .into_bytes()
}

/// What a merged file says: per event (by RECURRENCE-ID line), its normalized items.
fn contents(bytes: &[u8]) -> BTreeMap<String, BTreeSet<String>> {
    events(bytes, |item| {
        String::from_utf8_lossy(&item.normalized()).into_owned()
    })
}

/// The raw bytes of each event's properties and alarms.
fn raw_contents(bytes: &[u8]) -> BTreeMap<String, BTreeSet<String>> {
    events(bytes, |item| {
        let mut raw = Vec::new();
        item.write_raw(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    })
}

/// Per event (by RECURRENCE-ID line), what `view` makes of each of its items.
fn events(bytes: &[u8], view: impl Fn(&Item<'_>) -> String) -> BTreeMap<String, BTreeSet<String>> {
    let doc = Document::parse(bytes).expect("a merge result parses");
    let mut out = BTreeMap::new();
    for item in &doc.items {
        let Item::Component(cal) = item else { continue };
        for item in &cal.items {
            let Item::Component(event) = item else {
                continue;
            };
            let rid = event
                .property("RECURRENCE-ID")
                .map_or(Vec::new(), |l| l.normalized());
            let rid = String::from_utf8_lossy(&rid).into_owned();
            let items = event.items.iter().map(&view).collect();
            assert!(
                out.insert(rid, items).is_none(),
                "one event per RECURRENCE-ID"
            );
        }
    }
    out
}

/// The same view of a model calendar.
fn model_contents(cal: &Calendar) -> BTreeMap<String, BTreeSet<String>> {
    contents(&render(cal, None, true))
}

fn pick<T: Clone + Eq>(b: &T, o: &T, t: &T) -> Result<T, ()> {
    if o == b || o == t {
        Ok(if o == b { t.clone() } else { o.clone() })
    } else if t == b {
        Ok(o.clone())
    } else {
        Err(())
    }
}

fn set_merge<T: Ord + Clone>(b: &BTreeSet<T>, o: &BTreeSet<T>, t: &BTreeSet<T>) -> BTreeSet<T> {
    b.iter()
        .chain(o)
        .chain(t)
        .filter(|x| {
            if o.contains(x) == b.contains(x) {
                t.contains(x)
            } else {
                o.contains(x)
            }
        })
        .cloned()
        .collect()
}

/// The model merge of one event present on both sides (`b` none: added on both).
fn merge_event(b: Option<&Event>, o: &Event, t: &Event) -> Result<Event, ()> {
    let field = |f: fn(&Event) -> u8| (b.map(f), Some(f(o)), Some(f(t)));
    let (bs, os, ts) = field(|e| e.summary);
    let summary = pick(&bs, &os, &ts)?.unwrap_or(o.summary);
    let later = |(b, o, t): (Option<u8>, Option<u8>, Option<u8>)| {
        pick(&b, &o, &t).unwrap_or(o.max(t)).unwrap_or(0)
    };
    let empty = Event {
        summary: 0,
        seq: 0,
        stamp: 0,
        attendees: BTreeMap::new(),
        exdates: BTreeSet::new(),
        alarms: BTreeSet::new(),
    };
    let be = b.unwrap_or(&empty);
    let mut attendees = BTreeMap::new();
    for a in be
        .attendees
        .keys()
        .chain(o.attendees.keys())
        .chain(t.attendees.keys())
    {
        let get = |e: &Event| e.attendees.get(a).copied();
        if let Some(s) = pick(&get(be), &get(o), &get(t))? {
            attendees.insert(*a, s);
        }
    }
    Ok(Event {
        summary,
        seq: later(field(|e| e.seq)),
        stamp: later(field(|e| e.stamp)),
        attendees,
        exdates: set_merge(&be.exdates, &o.exdates, &t.exdates),
        alarms: set_merge(&be.alarms, &o.alarms, &t.alarms),
    })
}

/// The model merge of two calendars; `Err` when the merge must conflict.
fn model_merge(b: &Calendar, o: &Calendar, t: &Calendar) -> Result<Calendar, ()> {
    let mut out = Calendar::new();
    for rid in b.keys().chain(o.keys()).chain(t.keys()) {
        let (be, oe, te) = (b.get(rid), o.get(rid), t.get(rid));
        let merged = match (oe, te) {
            _ if oe == te || oe == be => te.cloned(),
            _ if te == be => oe.cloned(),
            (Some(oe), Some(te)) => Some(merge_event(be, oe, te)?),
            (kept, _) => {
                let (Some(be), Some(kept)) = (be, kept.or(te)) else {
                    return Err(());
                };
                if (Event {
                    stamp: be.stamp,
                    ..kept.clone()
                }) != *be
                {
                    return Err(());
                }
                None
            }
        };
        if let Some(e) = merged {
            out.insert(*rid, e);
        }
    }
    Ok(out)
}

fn apply(mut cal: Calendar, ops: &[Op]) -> Calendar {
    for op in ops {
        let keys: Vec<Option<u8>> = cal.keys().copied().collect();
        let Some(&key) = keys.first() else { continue };
        let at = |i: usize| keys[i % keys.len()];
        match *op {
            Op::Summary(i, v) => cal.get_mut(&at(i)).unwrap().summary = v % 3,
            Op::Bump(i, v) => cal.get_mut(&at(i)).unwrap().seq += v % 3,
            Op::Stamp(i, v) => cal.get_mut(&at(i)).unwrap().stamp = v % 10,
            Op::Attendee(i, a, s) => {
                let e = cal.get_mut(&at(i)).unwrap();
                match s {
                    Some(s) => e.attendees.insert(a, s % 3),
                    None => e.attendees.remove(&a),
                };
            }
            Op::Exdate(i, d) => {
                let e = cal.get_mut(&at(i)).unwrap();
                if !e.exdates.remove(&d) {
                    e.exdates.insert(d);
                }
            }
            Op::Alarm(i, a) => {
                let e = cal.get_mut(&at(i)).unwrap();
                if !e.alarms.remove(&a) {
                    e.alarms.insert(a);
                }
            }
            Op::AddOverride(rid) => {
                let mut e = cal[&key].clone();
                e.summary = (e.summary + 1) % 3;
                cal.entry(Some(rid)).or_insert(e);
            }
            Op::Remove(i) => {
                if at(i).is_some() {
                    cal.remove(&at(i));
                }
            }
        }
    }
    cal
}

fn op() -> impl Strategy<Value = Op> {
    let i = any::<usize>();
    prop_oneof![
        (i, 0u8..3).prop_map(|(i, v)| Op::Summary(i, v)),
        (i, 1u8..3).prop_map(|(i, v)| Op::Bump(i, v)),
        (i, 0u8..10).prop_map(|(i, v)| Op::Stamp(i, v)),
        (i, 0u8..4, proptest::option::of(0u8..3)).prop_map(|(i, a, s)| Op::Attendee(i, a, s)),
        (i, 0u8..6).prop_map(|(i, d)| Op::Exdate(i, d)),
        (i, 0u8..4).prop_map(|(i, a)| Op::Alarm(i, a)),
        (0u8..6).prop_map(Op::AddOverride),
        i.prop_map(Op::Remove),
    ]
}

/// A base calendar, both sides' edits, and each side's folding and line ending.
fn versions() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Vec<u8>, Result<Calendar, ()>)> {
    let width = proptest::option::of(10usize..80);
    (
        proptest::collection::vec(op(), 0..6),
        proptest::collection::vec(op(), 0..6),
        proptest::collection::vec(op(), 0..6),
        (width.clone(), width.clone(), width),
        any::<bool>(),
    )
        .prop_map(|(setup, ours, theirs, (wb, wo, wt), crlf)| {
            let master = Event {
                summary: 0,
                seq: 0,
                stamp: 1,
                attendees: BTreeMap::new(),
                exdates: BTreeSet::new(),
                alarms: BTreeSet::new(),
            };
            let base = apply(Calendar::from([(None, master)]), &setup);
            let (o, t) = (apply(base.clone(), &ours), apply(base.clone(), &theirs));
            let expected = model_merge(&base, &o, &t);
            (
                render(&base, wb, crlf),
                render(&o, wo, crlf),
                render(&t, wt, crlf),
                expected,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn merges_as_the_model_says((base, ours, theirs, expected) in versions()) {
        let merged = IcalMerge.merge(Some(&base), Some(&ours), Some(&theirs));
        match (merged, expected) {
            (Merged::Clean(Some(bytes)), Ok(cal)) => prop_assert_eq!(contents(&bytes), model_contents(&cal)),
            (Merged::Conflict(_), Err(())) => {}
            (merged, expected) => prop_assert!(false, "merged {:?}, model {:?}", merged, expected),
        }
    }

    #[test]
    fn an_unchanged_side_gives_the_other_exactly((base, ours, theirs, _e) in versions()) {
        let m = |b: &[u8], o: &[u8], t: &[u8]| IcalMerge.merge(Some(b), Some(o), Some(t));
        prop_assert_eq!(m(&base, &base, &theirs), Merged::Clean(Some(theirs.clone())));
        prop_assert_eq!(m(&base, &ours, &base), Merged::Clean(Some(ours.clone())));
        prop_assert_eq!(m(&theirs, &theirs, &theirs), Merged::Clean(Some(theirs.clone())));
    }

    #[test]
    fn merges_are_symmetric((base, ours, theirs, _e) in versions()) {
        let one = IcalMerge.merge(Some(&base), Some(&ours), Some(&theirs));
        let other = IcalMerge.merge(Some(&base), Some(&theirs), Some(&ours));
        match (one, other) {
            (Merged::Clean(Some(a)), Merged::Clean(Some(b))) => prop_assert_eq!(contents(&a), contents(&b)),
            (Merged::Conflict(_), Merged::Conflict(_)) => {}
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
        }
    }

    #[test]
    fn lines_untouched_by_both_keep_their_bytes((base, ours, theirs, _e) in versions()) {
        if let Merged::Clean(Some(merged)) = IcalMerge.merge(Some(&base), Some(&ours), Some(&theirs)) {
            let (result, o, t) = (raw_contents(&merged), raw_contents(&ours), raw_contents(&theirs));
            for (rid, lines) in raw_contents(&base) {
                let (Some(o), Some(t)) = (o.get(&rid), t.get(&rid)) else { continue };
                for line in lines.iter().filter(|l| o.contains(*l) && t.contains(*l)) {
                    prop_assert!(result[&rid].contains(line), "lost {}", line);
                }
            }
        }
    }
}
