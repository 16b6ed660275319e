//! Properties of the vCard merge on generated cards and edits.

use std::collections::BTreeSet;

use kith_contacts::VcardMerge;
use kith_dav::component::{Document, Item};
use kith_store::{ContentMerge, Merged};
use proptest::prelude::*;

/// One property of a generated card: its unfolded text and where it is folded.
#[derive(Clone, Debug)]
struct Prop {
    text: String,
    fold: Option<usize>,
}

/// An edit one side makes.
#[derive(Clone, Debug)]
enum Op {
    SetFn(u8),
    SetRev(u8),
    Remove(usize),
    Add { kind: u8, n: u8, at: usize },
    Refold(usize, Option<usize>),
}

fn member(kind: u8, n: u8) -> String {
    match kind % 5 {
        0 => format!("EMAIL;TYPE=home:m{n}@example.org"),
        1 => format!("item{n}.TEL;type=CELL:+1 555 {n:04}"),
        2 => format!("X-SOCIALPROFILE;type=x;x-user=u{n}:https://example.org/u{n}"),
        3 => format!("CATEGORIES:c{n},friends"),
        _ => format!("item{n}.X-ABLabel:_$!<Label{n}>!$_"),
    }
}

fn prop(text: String) -> Prop {
    Prop { text, fold: None }
}

fn card(fn_value: u8, members: &[(u8, u8)]) -> Vec<Prop> {
    let mut props = vec![
        prop("BEGIN:VCARD".into()),
        prop("VERSION:4.0".into()),
        prop("UID:urn:uuid:1".into()),
    ];
    props.push(prop(format!("FN:Name {fn_value}")));
    let mut seen = BTreeSet::new();
    for &(kind, n) in members {
        if seen.insert(member(kind, n)) {
            props.push(prop(member(kind, n)));
        }
    }
    props.push(prop("REV:20240301T100000Z".into()));
    props.push(prop("END:VCARD".into()));
    props
}

fn apply(mut props: Vec<Prop>, ops: &[Op]) -> Vec<Prop> {
    let starts = |p: &Prop, s: &str| p.text.starts_with(s);
    for op in ops {
        let inner = props.len() - 2;
        match *op {
            Op::SetFn(v) => props
                .iter_mut()
                .filter(|p| starts(p, "FN:"))
                .for_each(|p| p.text = format!("FN:Name {v}")),
            Op::SetRev(v) => props
                .iter_mut()
                .filter(|p| starts(p, "REV:"))
                .for_each(|p| p.text = format!("REV:2024030{}T100000Z", v % 10)),
            Op::Remove(i) => {
                let members: Vec<usize> = (4..props.len() - 2).collect();
                if !members.is_empty() {
                    props.remove(members[i % members.len()]);
                }
            }
            Op::Add { kind, n, at } => {
                let text = member(kind, n);
                if props.iter().all(|p| p.text != text) {
                    props.insert(1 + at % inner.max(1), prop(text));
                }
            }
            Op::Refold(i, width) => props[1 + i % inner].fold = width,
        }
    }
    props
}

fn render(props: &[Prop], crlf: bool) -> Vec<u8> {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    for p in props {
        match p.fold {
            Some(width) => {
                let chars: Vec<char> = p.text.chars().collect();
                let pieces: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
                out += &pieces.join(&format!("{eol} "));
            }
            None => out += &p.text,
        }
        out += eol;
    }
    out.into_bytes()
}

/// The properties of a card: (raw bytes, normalized text), BEGIN and END left out.
fn lines(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let doc = Document::parse(bytes).expect("a merge result parses");
    let mut out = Vec::new();
    for item in &doc.items {
        if let Item::Component(c) = item {
            for item in &c.items {
                if let Item::Property(line) = item {
                    out.push((line.raw().to_vec(), line.normalized()));
                }
            }
        }
    }
    out
}

/// The normalized properties of a card, without groups: a merge may rename a group that
/// both sides introduced for different properties.
fn norms(bytes: &[u8]) -> BTreeSet<Vec<u8>> {
    lines(bytes)
        .into_iter()
        .map(|(_, n)| ungrouped(n))
        .collect()
}

fn ungrouped(line: Vec<u8>) -> Vec<u8> {
    let name_end = line
        .iter()
        .position(|&b| b == b';' || b == b':')
        .unwrap_or(line.len());
    match line[..name_end].iter().position(|&b| b == b'.') {
        Some(dot) => line[dot + 1..].to_vec(),
        None => line,
    }
}

fn value_of(norms: &BTreeSet<Vec<u8>>, name: &str) -> Option<Vec<u8>> {
    norms
        .iter()
        .find(|n| n.starts_with(name.as_bytes()))
        .cloned()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3).prop_map(Op::SetFn),
        any::<u8>().prop_map(Op::SetRev),
        any::<usize>().prop_map(Op::Remove),
        (any::<u8>(), 0u8..12, any::<usize>()).prop_map(|(kind, n, at)| Op::Add { kind, n, at }),
        (any::<usize>(), proptest::option::of(8usize..40)).prop_map(|(i, w)| Op::Refold(i, w)),
    ]
}

/// A base card and the edits of each side, rendered.
fn versions() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Vec<u8>)> {
    (
        0u8..3,
        proptest::collection::vec((any::<u8>(), 0u8..12), 0..8),
        proptest::collection::vec(op(), 0..5),
        proptest::collection::vec(op(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(fn_value, members, ours, theirs, crlf)| {
            let base = card(fn_value, &members);
            let o = apply(base.clone(), &ours);
            let t = apply(base.clone(), &theirs);
            (render(&base, crlf), render(&o, crlf), render(&t, crlf))
        })
}

proptest! {
    #[test]
    fn an_unchanged_side_gives_the_other_exactly((base, ours, theirs) in versions()) {
        let m = |b: &[u8], o: &[u8], t: &[u8]| VcardMerge.merge(Some(b), Some(o), Some(t));
        prop_assert_eq!(m(&base, &base, &theirs), Merged::Clean(Some(theirs.clone())));
        prop_assert_eq!(m(&base, &ours, &base), Merged::Clean(Some(ours.clone())));
        prop_assert_eq!(m(&base, &ours, &ours), Merged::Clean(Some(ours.clone())));
        prop_assert_eq!(m(&ours, &ours, &ours), Merged::Clean(Some(ours.clone())));
    }

    #[test]
    fn merges_are_symmetric((base, ours, theirs) in versions()) {
        let one = VcardMerge.merge(Some(&base), Some(&ours), Some(&theirs));
        let other = VcardMerge.merge(Some(&base), Some(&theirs), Some(&ours));
        match (one, other) {
            (Merged::Clean(Some(a)), Merged::Clean(Some(b))) => prop_assert_eq!(norms(&a), norms(&b)),
            (Merged::Conflict(_), Merged::Conflict(_)) => {}
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
        }
    }

    #[test]
    fn every_change_of_one_side_is_kept((base, ours, theirs) in versions()) {
        let (b, o, t) = (norms(&base), norms(&ours), norms(&theirs));
        let (fb, fo, ft) = (value_of(&b, "FN:"), value_of(&o, "FN:"), value_of(&t, "FN:"));
        let merged = VcardMerge.merge(Some(&base), Some(&ours), Some(&theirs));
        let Merged::Clean(Some(merged)) = merged else {
            prop_assert!(fo != fb && ft != fb && fo != ft, "only a name changed two ways may conflict: {:?}", merged);
            return Ok(());
        };
        let r = norms(&merged);
        prop_assert_eq!(value_of(&r, "FN:"), if fo == fb { ft } else { fo });
        let (rb, ro, rt) = (value_of(&b, "REV:"), value_of(&o, "REV:"), value_of(&t, "REV:"));
        prop_assert_eq!(value_of(&r, "REV:"), if ro == rb { rt } else if rt == rb { ro } else { ro.max(rt) });
        let members = |s: &BTreeSet<Vec<u8>>| s.iter().filter(|n| !n.starts_with(b"FN:") && !n.starts_with(b"REV:")).cloned().collect::<BTreeSet<_>>();
        let (mb, mo, mt) = (members(&b), members(&o), members(&t));
        for m in mb.iter().chain(&mo).chain(&mt) {
            let expected = if mo.contains(m) == mb.contains(m) { mt.contains(m) } else { mo.contains(m) };
            prop_assert_eq!(r.contains(m), expected, "{}", String::from_utf8_lossy(m));
        }
    }

    #[test]
    fn lines_untouched_by_both_keep_their_bytes((base, ours, theirs) in versions()) {
        if let Merged::Clean(Some(merged)) = VcardMerge.merge(Some(&base), Some(&ours), Some(&theirs)) {
            let raws = |bytes: &[u8]| lines(bytes).into_iter().map(|(r, _)| r).collect::<BTreeSet<_>>();
            let result = raws(&merged);
            let (o, t) = (raws(&ours), raws(&theirs));
            for line in raws(&base).iter().filter(|l| o.contains(*l) && t.contains(*l)) {
                prop_assert!(result.contains(line), "lost {}", String::from_utf8_lossy(line));
            }
        }
    }
}

proptest! {
    #[test]
    fn deleted_against_changed((base, _ours, theirs) in versions()) {
        let without_rev = |s: BTreeSet<Vec<u8>>| s.into_iter().filter(|n| !n.starts_with(b"REV:")).collect::<BTreeSet<_>>();
        let merged = VcardMerge.merge(Some(&base), None, Some(&theirs));
        if without_rev(norms(&base)) == without_rev(norms(&theirs)) {
            prop_assert_eq!(merged, Merged::Clean(None));
        } else {
            prop_assert!(matches!(merged, Merged::Conflict(_)), "{:?}", merged);
        }
        prop_assert_eq!(VcardMerge.merge(Some(&base), Some(&theirs), None), VcardMerge.merge(Some(&base), None, Some(&theirs)));
    }

    #[test]
    fn added_on_both_sides((_base, ours, theirs) in versions()) {
        let (o, t) = (norms(&ours), norms(&theirs));
        match VcardMerge.merge(None, Some(&ours), Some(&theirs)) {
            Merged::Clean(Some(merged)) => {
                let r = norms(&merged);
                let rev = |s: &BTreeSet<Vec<u8>>| value_of(s, "REV:");
                for n in o.iter().chain(&t).filter(|n| !n.starts_with(b"REV:")) {
                    prop_assert!(r.contains(n), "lost {}", String::from_utf8_lossy(n));
                }
                prop_assert_eq!(rev(&r), rev(&o).max(rev(&t)));
            }
            merged => prop_assert!(value_of(&o, "FN:") != value_of(&t, "FN:"), "{:?}", merged),
        }
    }
}
