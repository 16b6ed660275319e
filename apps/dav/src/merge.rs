//! Three-way merge of vCard and iCalendar files, property by property and component by
//! component, rewriting only what it must.
//!
//! Every item of a component (property, sub-component, blank line) falls in a *slot*
//! named by a key the format's [`Schema`] chooses: a single-valued property's name
//! (`FN`), an attendee's address, an event's UID and RECURRENCE-ID, or, for set members
//! (`EMAIL`, `CATEGORIES`, `X-` extensions, anything unknown), the item's whole content.
//! A slot's value is the list of its items, compared without folding or line endings.
//! Per slot: if one side left it as in the base, the other side's items win; if both
//! sides agree, they win; otherwise a component is merged item by item inside, a property
//! takes the side its [`Tie`] prefers, or the file is a conflict.
//!
//! The output is ours, line for line: our items keep their bytes and order, a slot whose
//! result differs is written at our position, and what only theirs has is inserted after
//! the item that precedes it in theirs (so `item2.TEL` and its `item2.X-ABLabel` stay
//! together), after anything only ours added there. When theirs adds nothing, the output
//! is ours byte for byte. The one rewrite: a vCard group both sides introduced for
//! different properties (Apple's `item4` picked on two devices) is renamed in theirs'
//! lines, so that labels stay with their own properties.

use std::collections::{BTreeMap, BTreeSet};

use kith_store::Merged;

use crate::component::{Component, Document, Item};
use crate::contentline::Line;

/// What to do when both sides changed one slot to different values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tie {
    /// A conflict, except for components present on both sides, merged item by item.
    Conflict,
    /// The larger number wins (SEQUENCE).
    Max,
    /// The later timestamp wins (REV, DTSTAMP, LAST-MODIFIED).
    Later,
    /// Either will do; the larger content wins, so every replica picks the same
    /// (PRODID, VTIMEZONE).
    Either,
}

/// How a property or component merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The items sharing `key` form one value, merged three-way.
    Slot {
        /// What identifies the slot, e.g. `FN`, or `ATTENDEE:mailto:a@b`.
        key: Vec<u8>,
        /// What to do when both sides changed it.
        tie: Tie,
    },
    /// A set member, known by its content: added or removed, never changed.
    Member,
}

/// What a format tells the merge.
pub trait Schema {
    /// The format's name, for conflict messages.
    fn format(&self) -> &'static str;
    /// Whether `bytes` (which [`Document::parse`] accepted) are a file of this format.
    fn validate(&self, bytes: &[u8]) -> bool;
    /// How `line`, a property of the component named `parent`, merges.
    fn property(&self, parent: &str, line: &Line<'_>) -> Rule;
    /// How a component merges.
    fn component(&self, component: &Component<'_>) -> Rule;
}

/// Merges three versions of a file (`None`: absent on that side) as the trait
/// [`kith_store::ContentMerge`] asks. A side that is not a well-formed file of the
/// schema's format merges only when the versions are trivially mergeable.
pub fn merge(
    schema: &dyn Schema,
    base: Option<&[u8]>,
    ours: Option<&[u8]>,
    theirs: Option<&[u8]>,
) -> Merged {
    if let Some(done) = Merged::trivial(base, ours, theirs) {
        return done;
    }
    let parse = |bytes| parse(schema, bytes);
    let (Some(b), Some(o), Some(t)) = (parse(base), parse(ours), parse(theirs)) else {
        return Merged::Conflict(format!(
            "both sides changed a file that is not a well-formed {}",
            schema.format()
        ));
    };
    match (b, o, t) {
        (b, Some(o), Some(t)) => {
            let base_items = b.as_ref().map_or(&[][..], |b| &b.items[..]);
            let mut out = Writer::new(eol(&o));
            out.put(o.bom);
            match merge_items(schema, "", base_items, &o.items, &t.items, &mut out) {
                Ok(()) => Merged::Clean(Some(out.buf)),
                Err(why) => Merged::Conflict(why),
            }
        }
        (Some(b), None, Some(kept)) | (Some(b), Some(kept), None) => {
            if only_bookkeeping(schema, "", &b.items, &kept.items) {
                Merged::Clean(None)
            } else {
                Merged::Conflict("deleted on one side and changed on the other".into())
            }
        }
        _ => Merged::Conflict("both sides changed the file differently".into()),
    }
}

/// A present side as a document; `None` when it is not a well-formed file of the format.
fn parse<'a>(schema: &dyn Schema, bytes: Option<&'a [u8]>) -> Option<Option<Document<'a>>> {
    match bytes {
        None => Some(None),
        Some(b) => Document::parse(b).filter(|_| schema.validate(b)).map(Some),
    }
}

/// The line ending of a file: CRLF unless its first line ends in a bare LF.
fn eol(doc: &Document<'_>) -> &'static [u8] {
    let mut first = Vec::new();
    if let Some(item) = doc.items.first() {
        item.write_raw(&mut first);
    }
    match first.iter().position(|&b| b == b'\n') {
        Some(at) if at == 0 || first[at - 1] != b'\r' => b"\n",
        _ => b"\r\n",
    }
}

/// Collects output, ending a line that lacked its break (a file's last line) before
/// anything follows it.
struct Writer {
    buf: Vec<u8>,
    eol: &'static [u8],
}

impl Writer {
    fn new(eol: &'static [u8]) -> Writer {
        Writer {
            buf: Vec::new(),
            eol,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() && !self.buf.is_empty() && !self.buf.ends_with(b"\n") {
            self.buf.extend_from_slice(self.eol);
        }
        self.buf.extend_from_slice(bytes);
    }
}

/// One item with its slot.
struct Entry<'d, 'a> {
    item: &'d Item<'a>,
    key: Vec<u8>,
    tie: Tie,
    norm: Vec<u8>,
}

impl Entry<'_, '_> {
    /// How conflict messages name the item.
    fn label(&self) -> String {
        match self.item {
            Item::Property(line) => line.name(),
            Item::Component(c) => match c.property("UID") {
                Some(uid) => format!("{} {}", c.name, String::from_utf8_lossy(uid.value())),
                None => c.name.clone(),
            },
            Item::Blank(_) => "a blank line".into(),
        }
    }
}

fn entries<'d, 'a>(schema: &dyn Schema, parent: &str, items: &'d [Item<'a>]) -> Vec<Entry<'d, 'a>> {
    items
        .iter()
        .map(|item| {
            let norm = item.normalized();
            let rule = match item {
                Item::Property(line) => schema.property(parent, line),
                Item::Component(c) => schema.component(c),
                Item::Blank(_) => Rule::Slot {
                    key: Vec::new(),
                    tie: Tie::Either,
                },
            };
            let (key, tie) = match rule {
                Rule::Slot { key, tie } => {
                    let kind = if matches!(item, Item::Component(_)) {
                        b'C'
                    } else {
                        b'P'
                    };
                    ([&[kind][..], &key].concat(), tie)
                }
                Rule::Member => ([&b"M"[..], &norm].concat(), Tie::Conflict),
            };
            Entry {
                item,
                key,
                tie,
                norm,
            }
        })
        .collect()
}

/// The name of a component that merges item by item, if the entry is one.
fn merged_component<'e>(e: &'e Entry<'_, '_>) -> Option<&'e str> {
    match e.item {
        Item::Component(c) if e.key.starts_with(b"C") && e.tie == Tie::Conflict => Some(&c.name),
        _ => None,
    }
}

/// Pairs components that are alone of their type on each side (at most one in the base),
/// whatever their keys say: a file holds one contact or one event, so a side that changed
/// its UID changed a property, and two sides that added the file added the same item.
fn pair_lone(base: &mut [Entry<'_, '_>], sides: &mut [&mut Vec<Entry<'_, '_>>]) {
    let count = |entries: &[Entry<'_, '_>], name: &str| {
        entries
            .iter()
            .filter(|e| merged_component(e) == Some(name))
            .count()
    };
    let names: BTreeSet<String> = sides
        .iter()
        .flat_map(|side| side.iter())
        .filter_map(merged_component)
        .map(str::to_string)
        .collect();
    for name in names {
        if count(base, &name) <= 1 && sides.iter().all(|side| count(side, &name) == 1) {
            let key = [&b"C"[..], name.as_bytes()].concat();
            rekey(base, &name, &key);
            sides.iter_mut().for_each(|side| rekey(side, &name, &key));
        }
    }
}

/// Gives the components called `name` that merge item by item the slot `key`.
fn rekey(entries: &mut [Entry<'_, '_>], name: &str, key: &[u8]) {
    for e in entries
        .iter_mut()
        .filter(|e| merged_component(e) == Some(name))
    {
        e.key = key.to_vec();
    }
}

type Slots<'e, 'd, 'a> = BTreeMap<&'e [u8], Vec<&'e Entry<'d, 'a>>>;

fn slots<'e, 'd, 'a>(entries: &'e [Entry<'d, 'a>]) -> Slots<'e, 'd, 'a> {
    let mut slots: Slots<'e, 'd, 'a> = BTreeMap::new();
    for e in entries {
        slots.entry(&e.key).or_default().push(e);
    }
    slots
}

/// The items of one slot (none when the side lacks it).
fn slot<'s, 'e, 'd, 'a>(slots: &'s Slots<'e, 'd, 'a>, key: &[u8]) -> &'s [&'e Entry<'d, 'a>] {
    slots.get(key).map_or(&[], |v| &v[..])
}

fn same(x: &[&Entry<'_, '_>], y: &[&Entry<'_, '_>]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(a, b)| a.norm == b.norm)
}

/// What a slot's merge writes: items as they are, or a merged component.
enum Out<'d, 'a> {
    Raw(&'d Item<'a>),
    Merged(Vec<u8>),
}

impl Out<'_, '_> {
    fn write(&self, out: &mut Writer) {
        match self {
            Out::Raw(item) => {
                let mut raw = Vec::new();
                item.write_raw(&mut raw);
                out.put(&raw);
            }
            Out::Merged(bytes) => out.put(bytes),
        }
    }
}

fn raw<'d, 'a>(side: &[&Entry<'d, 'a>]) -> Vec<Out<'d, 'a>> {
    side.iter().map(|e| Out::Raw(e.item)).collect()
}

/// Merges the items of one component (or of the file) and writes them in our order.
fn merge_items(
    schema: &dyn Schema,
    parent: &str,
    base: &[Item<'_>],
    ours: &[Item<'_>],
    theirs: &[Item<'_>],
    out: &mut Writer,
) -> Result<(), String> {
    let renamed = regroup(base, ours, theirs);
    let regrouped: Vec<Item<'_>>;
    let theirs = if renamed.is_empty() {
        theirs
    } else {
        regrouped = theirs
            .iter()
            .enumerate()
            .map(
                |(i, item)| match renamed.get(&i).and_then(|raw| Line::parse(raw)) {
                    Some(line) => Item::Property(line),
                    None => item.clone(),
                },
            )
            .collect();
        &regrouped
    };
    let (mut be, mut oe, mut te) = (
        entries(schema, parent, base),
        entries(schema, parent, ours),
        entries(schema, parent, theirs),
    );
    pair_lone(&mut be, &mut [&mut oe, &mut te]);
    let (bs, os, ts) = (slots(&be), slots(&oe), slots(&te));
    let keys: BTreeSet<&[u8]> = bs
        .keys()
        .chain(os.keys())
        .chain(ts.keys())
        .copied()
        .collect();
    let mut results = BTreeMap::new();
    for key in keys {
        results.insert(
            key,
            merge_slot(
                schema,
                slot(&bs, key),
                slot(&os, key),
                slot(&ts, key),
                out.eol,
            )?,
        );
    }
    layout(&oe, &te, &os, &results, out);
    Ok(())
}

/// The property lines of each group (vCard's `item1.EMAIL`, `item1.X-ABLabel`), normalized.
fn groups(items: &[Item<'_>]) -> BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> {
    let mut groups: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
    for item in items {
        if let Item::Property(line) = item
            && let Some(group) = line.group()
        {
            groups.entry(group).or_default().insert(line.normalized());
        }
    }
    groups
}

/// Renames each group that both sides introduced for different properties in theirs, so
/// that `item4.TEL` and its label added on one device and `item4.EMAIL` and its label added
/// on another do not end up sharing labels. Returns the new raw bytes of the renamed lines
/// of theirs, by index.
fn regroup(base: &[Item<'_>], ours: &[Item<'_>], theirs: &[Item<'_>]) -> BTreeMap<usize, Vec<u8>> {
    let (b, o, t) = (groups(base), groups(ours), groups(theirs));
    let mut taken: BTreeSet<Vec<u8>> = b.keys().chain(o.keys()).chain(t.keys()).cloned().collect();
    let mut fresh = BTreeMap::new();
    for (group, lines) in &t {
        if !b.contains_key(group) && o.get(group).is_some_and(|ours| ours != lines) {
            let name = fresh_group(group, &taken);
            taken.insert(name.to_ascii_uppercase());
            fresh.insert(group.clone(), name);
        }
    }
    let mut renamed = BTreeMap::new();
    for (i, item) in theirs.iter().enumerate() {
        let Item::Property(line) = item else { continue };
        let Some(name) = line.group().and_then(|g| fresh.get(&g)) else {
            continue;
        };
        let len = line.group().map_or(0, |g| g.len());
        let raw = line.raw();
        if raw.get(len) == Some(&b'.') {
            renamed.insert(i, [&name[..], &raw[len..]].concat());
        }
    }
    renamed
}

/// A group name not in `taken`: `ITEM7` after `ITEM4`, `ITEM5` and `ITEM6`, in lower case.
fn fresh_group(group: &[u8], taken: &BTreeSet<Vec<u8>>) -> Vec<u8> {
    let digits = group
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let prefix = &group[..group.len() - digits];
    let number = |g: &Vec<u8>| {
        g.strip_prefix(prefix)
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<u64>().ok())
    };
    let next = taken
        .iter()
        .filter_map(number)
        .max()
        .unwrap_or(0)
        .checked_add(1);
    // Past the largest number, or else (it was u64::MAX) the first gap, which exists.
    let name = next
        .into_iter()
        .chain(1..)
        .map(|n| [prefix, n.to_string().as_bytes()].concat())
        .find(|name| !taken.contains(name))
        .unwrap_or_default();
    name.to_ascii_lowercase()
}

/// Writes the merged slots: ours in our order, then what only theirs has after the item
/// preceding it in theirs (and after what only ours added there).
fn layout(
    ours: &[Entry<'_, '_>],
    theirs: &[Entry<'_, '_>],
    our_slots: &Slots<'_, '_, '_>,
    results: &BTreeMap<&[u8], Vec<Out<'_, '_>>>,
    out: &mut Writer,
) {
    let their_keys: BTreeSet<&[u8]> = theirs.iter().map(|e| &e.key[..]).collect();
    // Each placed item, and whether only ours has its slot.
    let mut placed = Vec::new();
    let mut at = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for e in ours {
        let nth = seen.entry(&e.key[..]).or_insert(0);
        let result = &results[&e.key[..]];
        let last = *nth + 1 == our_slots[&e.key[..]].len();
        let upto = if last { result.len() } else { *nth + 1 };
        for (i, item) in result.iter().enumerate().take(upto).skip(*nth) {
            at.insert((&e.key[..], i), placed.len());
            placed.push((item, !their_keys.contains(&e.key[..])));
        }
        *nth += 1;
    }
    let past_ours_only = |mut i: usize| {
        while placed.get(i).is_some_and(|p| p.1) {
            i += 1;
        }
        i
    };
    let mut inserted: BTreeMap<usize, Vec<&Out<'_, '_>>> = BTreeMap::new();
    let (mut cursor, mut seen) = (past_ours_only(0), BTreeMap::new());
    for e in theirs {
        let nth = seen.entry(&e.key[..]).or_insert(0);
        if let Some(&i) = at.get(&(&e.key[..], *nth)) {
            cursor = past_ours_only(i + 1);
        } else if !our_slots.contains_key(&e.key[..])
            && let Some(item) = results[&e.key[..]].get(*nth)
        {
            inserted.entry(cursor).or_default().push(item);
        }
        *nth += 1;
    }
    for i in 0..=placed.len() {
        inserted
            .get(&i)
            .into_iter()
            .flatten()
            .for_each(|item| item.write(out));
        if let Some((item, _)) = placed.get(i) {
            item.write(out);
        }
    }
}

/// Merges one slot.
fn merge_slot<'d, 'a>(
    schema: &dyn Schema,
    base: &[&Entry<'d, 'a>],
    ours: &[&Entry<'d, 'a>],
    theirs: &[&Entry<'d, 'a>],
    eol: &'static [u8],
) -> Result<Vec<Out<'d, 'a>>, String> {
    if same(ours, theirs) || same(theirs, base) {
        return Ok(raw(ours));
    }
    if same(ours, base) {
        return Ok(raw(theirs));
    }
    let Some(any) = ours.first().or(theirs.first()).or(base.first()) else {
        return Ok(Vec::new());
    };
    let component = |side: &[&Entry<'d, 'a>]| match side {
        [
            Entry {
                item: Item::Component(c),
                ..
            },
        ] => Some(c),
        _ => None,
    };
    match (any.tie, component(base), component(ours), component(theirs)) {
        (Tie::Conflict, b, Some(o), Some(t)) if base.is_empty() || b.is_some() => {
            let mut merged = Writer::new(eol);
            merged.put(o.begin.raw());
            merge_items(
                schema,
                &o.name,
                b.map_or(&[][..], |b| &b.items),
                &o.items,
                &t.items,
                &mut merged,
            )?;
            merged.put(o.end.raw());
            Ok(vec![Out::Merged(merged.buf)])
        }
        (Tie::Conflict, Some(b), o, t) if ours.is_empty() != theirs.is_empty() => {
            let kept = o.or(t).map_or(&[][..], |c| &c.items[..]);
            if (o.is_some() || t.is_some()) && only_bookkeeping(schema, &b.name, &b.items, kept) {
                Ok(Vec::new())
            } else {
                Err(format!(
                    "{} deleted on one side and changed on the other",
                    any.label()
                ))
            }
        }
        (Tie::Conflict, ..) => Err(format!("{} changed differently on both sides", any.label())),
        (tie, ..) => Ok(raw(if rank(tie, theirs) > rank(tie, ours) {
            theirs
        } else {
            ours
        })),
    }
}

/// Orders the two sides of a slot for a [`Tie`]: by number or timestamp first, then by
/// content, so that the choice does not depend on which side is ours.
fn rank(tie: Tie, side: &[&Entry<'_, '_>]) -> (Vec<u8>, Vec<u8>) {
    let value = side.first().and_then(|e| match e.item {
        Item::Property(line) => Some(line.value()),
        _ => None,
    });
    let digits = |v: &[u8]| {
        v.iter()
            .filter(|b| b.is_ascii_digit())
            .copied()
            .collect::<Vec<u8>>()
    };
    let primary = match (tie, value) {
        (Tie::Max, Some(v)) => {
            let n = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            n.map_or_else(Vec::new, |n| format!("1{n:020}").into_bytes())
        }
        (Tie::Later, Some(v)) => {
            let mut d = digits(v);
            d.resize(d.len().max(20), b'0');
            d
        }
        _ => Vec::new(),
    };
    (
        primary,
        side.iter().flat_map(|e| e.norm.iter().copied()).collect(),
    )
}

/// Whether `kept` differs from `base` only in bookkeeping: properties that never
/// conflict (timestamps, PRODID), also inside components present in both.
fn only_bookkeeping(
    schema: &dyn Schema,
    parent: &str,
    base: &[Item<'_>],
    kept: &[Item<'_>],
) -> bool {
    let (mut be, mut ke) = (entries(schema, parent, base), entries(schema, parent, kept));
    pair_lone(&mut be, &mut [&mut ke]);
    let (bs, ks) = (slots(&be), slots(&ke));
    bs.keys().chain(ks.keys()).all(|key| {
        let (b, k) = (slot(&bs, key), slot(&ks, key));
        if same(b, k) {
            return true;
        }
        match (b, k) {
            ([b], [k]) => match (b.item, k.item) {
                (Item::Component(bc), Item::Component(kc)) => {
                    only_bookkeeping(schema, &bc.name, &bc.items, &kc.items)
                }
                (Item::Property(_), Item::Property(_)) => matches!(b.tie, Tie::Later | Tie::Either),
                _ => false,
            },
            _ => b.iter().chain(k).all(|e| {
                matches!(e.item, Item::Property(_)) && matches!(e.tie, Tie::Later | Tie::Either)
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every property a set member, every component paired by name.
    struct Sets;

    impl Schema for Sets {
        fn format(&self) -> &'static str {
            "test file"
        }
        fn validate(&self, _bytes: &[u8]) -> bool {
            true
        }
        fn property(&self, _parent: &str, _line: &Line<'_>) -> Rule {
            Rule::Member
        }
        fn component(&self, component: &Component<'_>) -> Rule {
            Rule::Slot {
                key: component.name.clone().into_bytes(),
                tie: Tie::Conflict,
            }
        }
    }

    fn clean(base: &str, ours: &str, theirs: &str) -> String {
        match merge(
            &Sets,
            Some(base.as_bytes()),
            Some(ours.as_bytes()),
            Some(theirs.as_bytes()),
        ) {
            Merged::Clean(Some(bytes)) => String::from_utf8(bytes).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn additions_follow_their_predecessor_in_theirs() {
        let base = "BEGIN:X\r\nA:1\r\nB:1\r\nEND:X\r\n";
        let ours = "BEGIN:X\r\nB:1\r\nA:1\r\nC:1\r\nEND:X\r\n";
        let theirs = "BEGIN:X\r\nN:0\r\nA:1\r\nG.D:1\r\nG.E:1\r\nB:1\r\nEND:X\r\n";
        assert_eq!(
            clean(base, ours, theirs),
            "BEGIN:X\r\nN:0\r\nB:1\r\nA:1\r\nC:1\r\nG.D:1\r\nG.E:1\r\nEND:X\r\n"
        );
    }

    #[test]
    fn fresh_groups() {
        let taken: BTreeSet<Vec<u8>> = [&b"ITEM1"[..], b"ITEM4", b"OTHER9"]
            .iter()
            .map(|g| g.to_vec())
            .collect();
        assert_eq!(fresh_group(b"ITEM1", &taken), b"item5");
        assert_eq!(fresh_group(b"X", &taken), b"x1");
        let full: BTreeSet<Vec<u8>> = [format!("G{}", u64::MAX), "G1".into()]
            .iter()
            .map(|g| g.clone().into_bytes())
            .collect();
        assert_eq!(fresh_group(b"G1", &full), b"g2");
    }

    #[test]
    fn a_last_line_without_break_gets_ours_line_ending() {
        let base = "BEGIN:X\nA:1\nEND:X";
        let ours = "BEGIN:X\nA:2\nEND:X";
        let theirs = "BEGIN:X\nA:1\nEND:X\nBEGIN:Y\nEND:Y";
        assert_eq!(
            clean(base, ours, theirs),
            "BEGIN:X\nA:2\nEND:X\nBEGIN:Y\nEND:Y"
        );
    }

    #[test]
    fn a_component_deleted_on_one_side_and_changed_on_the_other_conflicts() {
        let base = "BEGIN:X\r\nBEGIN:Y\r\nA:1\r\nEND:Y\r\nEND:X\r\n";
        let ours = "BEGIN:X\r\nB:1\r\nEND:X\r\n";
        let theirs = "BEGIN:X\r\nBEGIN:Y\r\nA:2\r\nEND:Y\r\nEND:X\r\n";
        let merged = merge(
            &Sets,
            Some(base.as_bytes()),
            Some(ours.as_bytes()),
            Some(theirs.as_bytes()),
        );
        assert_eq!(
            merged,
            Merged::Conflict("Y deleted on one side and changed on the other".into())
        );
    }
}
