//! The component tree of a vCard or iCalendar file (`BEGIN:X` ... `END:X`), over
//! [`Line`]s that keep their bytes.

use crate::contentline::{Line, split};

/// How deep components may nest; deeper files are refused rather than recursed into.
pub const MAX_DEPTH: usize = 16;

const BOM: &[u8] = "\u{feff}".as_bytes();

/// What a component (or the file itself) holds, in file order.
#[derive(Clone, Debug)]
pub enum Item<'a> {
    /// A content line.
    Property(Line<'a>),
    /// A nested component.
    Component(Component<'a>),
    /// An empty line (tolerated, and kept).
    Blank(&'a [u8]),
}

/// One `BEGIN:NAME` ... `END:NAME` block.
#[derive(Clone, Debug)]
pub struct Component<'a> {
    /// The component name in upper case (`VCARD`, `VEVENT`).
    pub name: String,
    /// The `BEGIN` line.
    pub begin: Line<'a>,
    /// The properties, sub-components and blank lines between `BEGIN` and `END`.
    pub items: Vec<Item<'a>>,
    /// The `END` line.
    pub end: Line<'a>,
}

/// A whole file: an optional byte order mark, then top-level components and blank lines.
#[derive(Clone, Debug)]
pub struct Document<'a> {
    /// The UTF-8 byte order mark, when the file starts with one.
    pub bom: &'a [u8],
    /// Top-level components and blank lines.
    pub items: Vec<Item<'a>>,
}

struct Open<'a> {
    name: String,
    begin: Line<'a>,
    items: Vec<Item<'a>>,
}

impl<'a> Document<'a> {
    /// Parses a file; `None` when a line is not a content line, a property stands outside
    /// any component, components do not nest properly, or they nest deeper than
    /// [`MAX_DEPTH`].
    pub fn parse(bytes: &'a [u8]) -> Option<Document<'a>> {
        let (bom, body) = match bytes.strip_prefix(BOM) {
            Some(rest) => (&bytes[..BOM.len()], rest),
            None => (&bytes[..0], bytes),
        };
        let mut top = Vec::new();
        let mut open: Vec<Open<'a>> = Vec::new();
        for raw in split(body) {
            let item = if crate::contentline::unfold(raw).is_empty() {
                Item::Blank(raw)
            } else {
                let line = Line::parse(raw)?;
                match line.name().as_str() {
                    "BEGIN" => {
                        let name = component_name(&line)?;
                        if open.len() == MAX_DEPTH {
                            return None;
                        }
                        open.push(Open {
                            name,
                            begin: line,
                            items: Vec::new(),
                        });
                        continue;
                    }
                    "END" => {
                        let o = open.pop()?;
                        if component_name(&line)? != o.name {
                            return None;
                        }
                        Item::Component(Component {
                            name: o.name,
                            begin: o.begin,
                            items: o.items,
                            end: line,
                        })
                    }
                    _ => Item::Property(line),
                }
            };
            match (open.last_mut(), item) {
                (Some(o), item) => o.items.push(item),
                (None, Item::Property(_)) => return None,
                (None, item) => top.push(item),
            }
        }
        open.is_empty().then_some(Document { bom, items: top })
    }
}

/// The upper-case component name a `BEGIN` or `END` line carries.
fn component_name(line: &Line<'_>) -> Option<String> {
    let name = std::str::from_utf8(line.value())
        .ok()?
        .trim()
        .to_ascii_uppercase();
    (!name.is_empty() && line.after_name().starts_with(b":")).then_some(name)
}

impl Component<'_> {
    /// The first property called `name` (upper case).
    pub fn property(&self, name: &str) -> Option<&Line<'_>> {
        self.items.iter().find_map(|item| match item {
            Item::Property(line) if line.name() == name => Some(line),
            _ => None,
        })
    }
}

impl Item<'_> {
    /// Appends the item's bytes exactly as they appeared in the file.
    pub fn write_raw(&self, out: &mut Vec<u8>) {
        match self {
            Item::Property(line) => out.extend_from_slice(line.raw()),
            Item::Blank(raw) => out.extend_from_slice(raw),
            Item::Component(c) => {
                out.extend_from_slice(c.begin.raw());
                c.items.iter().for_each(|item| item.write_raw(out));
                out.extend_from_slice(c.end.raw());
            }
        }
    }

    /// The item's content without folding, line endings or case differences in names:
    /// equal exactly when two versions of the item say the same thing.
    pub fn normalized(&self) -> Vec<u8> {
        match self {
            Item::Property(line) => line.normalized(),
            Item::Blank(_) => Vec::new(),
            Item::Component(c) => {
                let mut out = format!("BEGIN:{}\n", c.name).into_bytes();
                for item in &c.items {
                    out.extend(item.normalized());
                    out.push(b'\n');
                }
                out.extend(format!("END:{}", c.name).bytes());
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(doc: &Document<'_>) -> Vec<u8> {
        let mut out = doc.bom.to_vec();
        doc.items.iter().for_each(|item| item.write_raw(&mut out));
        out
    }

    #[test]
    fn round_trips_bytes() {
        let input = "\u{feff}BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\n\r\nEND:VEVENT\r\nEND:vcalendar\r\n\r\n";
        let doc = Document::parse(input.as_bytes()).unwrap();
        assert_eq!(raw(&doc), input.as_bytes());
        assert_eq!(doc.items.len(), 2);
        let Item::Component(cal) = &doc.items[0] else {
            panic!()
        };
        assert_eq!(cal.name, "VCALENDAR");
        let Item::Component(event) = &cal.items[0] else {
            panic!()
        };
        assert_eq!(event.property("UID").unwrap().value(), b"1");
    }

    #[test]
    fn refuses_broken_structure() {
        for input in [
            &b"BEGIN:VCARD\nFN:x\n"[..],
            b"BEGIN:VCARD\nEND:VEVENT\n",
            b"FN:x\n",
            b"END:VCARD\n",
            b"BEGIN:VCARD\nnot a line\nEND:VCARD\n",
            b"BEGIN:\nEND:\n",
        ] {
            assert!(
                Document::parse(input).is_none(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let deep = "BEGIN:X\n".repeat(MAX_DEPTH + 1) + &"END:X\n".repeat(MAX_DEPTH + 1);
        assert!(Document::parse(deep.as_bytes()).is_none());
    }
}
