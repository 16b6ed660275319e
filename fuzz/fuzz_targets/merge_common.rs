//! What the three merge targets share: cutting fuzz input into three versions, and the
//! checks every content merge must pass.
#![allow(dead_code)]

use kith_dav::component::{Document, Item};
use kith_store::{ContentMerge, Merged};

/// Cuts `data` into base, ours and theirs. The first byte says which are absent (bits 0-2)
/// and which are copies (bit 3: ours is base, bit 4: theirs is base, bit 5: theirs is
/// ours); the rest is split at 0xFF bytes (which UTF-8 text never holds).
pub fn versions(data: &[u8]) -> [Option<&[u8]>; 3] {
    let Some((&control, rest)) = data.split_first() else { return [None; 3] };
    let mut parts = rest.splitn(3, |&b| b == 0xFF);
    let mut v: [Option<&[u8]>; 3] = std::array::from_fn(|i| {
        let part = parts.next().unwrap_or_default();
        (control & (1 << i) == 0).then_some(part)
    });
    if control & 8 != 0 {
        v[1] = v[0];
    }
    if control & 16 != 0 {
        v[2] = v[0];
    }
    if control & 32 != 0 {
        v[2] = v[1];
    }
    v
}

/// Merges, checking the trivial cases: a side equal to the base gives the other side,
/// equal sides give that side.
pub fn check(merge: &dyn ContentMerge, base: Option<&[u8]>, ours: Option<&[u8]>, theirs: Option<&[u8]>) -> Merged {
    let merged = merge.merge(base, ours, theirs);
    let exactly = |side: Option<&[u8]>| Merged::Clean(side.map(<[u8]>::to_vec));
    if base == ours {
        assert_eq!(merged, exactly(theirs), "ours unchanged: theirs wins");
    } else if base == theirs || ours == theirs {
        assert_eq!(merged, exactly(ours), "theirs adds nothing: ours stays");
    }
    merged
}

/// The checks for vCard and iCalendar merges: the trivial cases, a conflict whichever
/// side is ours, and a clean merge of well-formed files is well-formed.
pub fn check_dav(merge: &dyn ContentMerge, data: &[u8]) {
    let [base, ours, theirs] = versions(data);
    let merged = check(merge, base, ours, theirs);
    let mirrored = merge.merge(base, theirs, ours);
    match (&merged, &mirrored) {
        (Merged::Clean(Some(a)), Merged::Clean(Some(b))) => {
            let canonical = |bytes: &[u8]| Document::parse(bytes).map(|d| canonical(&d.items));
            assert_eq!(canonical(a), canonical(b), "both replicas merge to the same content");
        }
        (Merged::Conflict(_), Merged::Conflict(_)) | (Merged::Clean(None), Merged::Clean(None)) => {}
        _ => panic!("the merge depends on which side is ours: {merged:?} / {mirrored:?}"),
    }
    let parses = |v: Option<&[u8]>| v.is_none_or(|v| Document::parse(v).is_some());
    if let Merged::Clean(Some(out)) = &merged
        && parses(base)
        && parses(ours)
        && parses(theirs)
    {
        assert!(Document::parse(out).is_some(), "the merge of well-formed files is well-formed");
    }
}

/// What items say, whatever their order: sorted normalized lines without their groups (a
/// merge may rename a group both sides introduced), components recursively.
fn canonical(items: &[Item<'_>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = items
        .iter()
        .map(|item| match item {
            Item::Component(c) => [c.name.as_bytes(), &canonical(&c.items).concat()].concat(),
            Item::Property(line) => [line.name().as_bytes(), line.after_name()].concat(),
            Item::Blank(_) => Vec::new(),
        })
        .collect();
    out.sort();
    out
}
