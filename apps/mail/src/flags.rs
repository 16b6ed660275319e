//! A message's flags file, and its three-way merge.
//!
//! The file lists the message's IMAP flags (RFC 9051 §2.3.2), one per line: system flags
//! such as `\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, and keywords such as
//! `$Forwarded` or `$Label1`. Lines are sorted by byte value, without duplicates, and each
//! ends with LF; no flags is an empty file. A flag is an IMAP atom (printable ASCII other
//! than `(){%*"\]` and space), optionally after one `\`. Flags are kept in the case they
//! were written. [`format_flags`] writes this form; [`parse_flags`] also accepts any order,
//! duplicates and a missing final LF, and refuses anything else.
//!
//! [`FlagsMerge`] merges per flag: a flag is set when theirs has it and ours did not change
//! it, or when ours has it and ours changed it. So one device marking a message `\Seen`
//! while another flags it gives both. A message expunged on one side while its flags
//! changed on the other is deleted: expunge wins, as IMAP clients expect (a flag change
//! does not bring an expunged message back). A side that does not parse merges only when
//! the merge is trivial.

use std::collections::BTreeSet;

use kith_store::{ContentMerge, Merged};

/// The store's merge function for flags files.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlagsMerge;

/// The flags in a flags file; `None` when it is not one.
pub fn parse_flags(bytes: &[u8]) -> Option<BTreeSet<String>> {
    if bytes.is_empty() {
        return Some(BTreeSet::new());
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n')
        .map(|flag| is_flag(flag).then(|| flag.to_string()))
        .collect()
}

/// The flags file listing `flags`.
pub fn format_flags(flags: &BTreeSet<String>) -> Vec<u8> {
    flags
        .iter()
        .flat_map(|flag| [flag.as_bytes(), b"\n"])
        .flatten()
        .copied()
        .collect()
}

/// Whether `flag` is an IMAP atom, optionally after one `\`.
fn is_flag(flag: &str) -> bool {
    let atom = flag.strip_prefix('\\').unwrap_or(flag);
    !atom.is_empty()
        && atom
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

impl ContentMerge for FlagsMerge {
    fn merge(&self, base: Option<&[u8]>, ours: Option<&[u8]>, theirs: Option<&[u8]>) -> Merged {
        if let Some(done) = Merged::trivial(base, ours, theirs) {
            return done;
        }
        match (ours, theirs) {
            (Some(o), Some(t)) => merge_sets(base, o, t),
            // One side expunged the message, the other changed its flags: expunge wins.
            _ => Merged::Clean(None),
        }
    }
}

/// Merges two present flags files flag by flag (an absent base has no flags).
fn merge_sets(base: Option<&[u8]>, ours: &[u8], theirs: &[u8]) -> Merged {
    let (Some(b), Some(o), Some(t)) = (
        base.map_or(Some(BTreeSet::new()), parse_flags),
        parse_flags(ours),
        parse_flags(theirs),
    ) else {
        return Merged::Conflict("both sides changed a flags file that does not parse".into());
    };
    let merged: BTreeSet<String> = b
        .iter()
        .chain(&o)
        .chain(&t)
        .filter(|f| {
            if o.contains(*f) == b.contains(*f) {
                t.contains(*f)
            } else {
                o.contains(*f)
            }
        })
        .cloned()
        .collect();
    let bytes = if merged == o {
        ours.to_vec()
    } else if merged == t {
        theirs.to_vec()
    } else {
        format_flags(&merged)
    };
    Merged::Clean(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(flags: &[&str]) -> BTreeSet<String> {
        flags.iter().map(|f| f.to_string()).collect()
    }

    fn file(flags: &[&str]) -> Vec<u8> {
        format_flags(&set(flags))
    }

    #[test]
    fn format_and_parse() {
        assert_eq!(
            file(&["\\Seen", "$Label1", "\\Flagged"]),
            b"$Label1\n\\Flagged\n\\Seen\n"
        );
        assert_eq!(
            parse_flags(b"\\Seen\n$Label1"),
            Some(set(&["$Label1", "\\Seen"]))
        );
        assert_eq!(parse_flags(b""), Some(BTreeSet::new()));
        for bad in [
            &b"\n"[..],
            b"\\Seen\n\n",
            b"two words\n",
            b"\\\n",
            b"\\Seen\r\n",
            b"\xff\n",
            b"a]\n",
            b"\\\\Seen\n",
        ] {
            assert_eq!(parse_flags(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn flags_merge_per_flag() {
        let base = file(&["\\Seen"]);
        let ours = file(&["\\Seen", "\\Flagged"]);
        let theirs = file(&["$Label1"]);
        let merged = FlagsMerge.merge(Some(&base), Some(&ours), Some(&theirs));
        assert_eq!(merged, Merged::Clean(Some(file(&["\\Flagged", "$Label1"]))));
    }

    #[test]
    fn expunge_wins() {
        let base = file(&["\\Seen"]);
        let changed = file(&["\\Seen", "\\Answered"]);
        assert_eq!(
            FlagsMerge.merge(Some(&base), None, Some(&changed)),
            Merged::Clean(None)
        );
        assert_eq!(
            FlagsMerge.merge(Some(&base), Some(&changed), None),
            Merged::Clean(None)
        );
    }

    #[test]
    fn added_on_both_sides_unites() {
        let ours = file(&["\\Seen"]);
        let theirs = file(&["\\Flagged"]);
        assert_eq!(
            FlagsMerge.merge(None, Some(&ours), Some(&theirs)),
            Merged::Clean(Some(file(&["\\Flagged", "\\Seen"])))
        );
    }

    #[test]
    fn unparsable_conflicts_unless_trivial() {
        let base = file(&["\\Seen"]);
        assert!(matches!(
            FlagsMerge.merge(Some(&base), Some(b"bad flag\n"), Some(b"")),
            Merged::Conflict(_)
        ));
        assert_eq!(
            FlagsMerge.merge(Some(&base), Some(b"bad flag\n"), Some(&base)),
            Merged::Clean(Some(b"bad flag\n".to_vec()))
        );
    }

    #[test]
    fn a_result_equal_to_one_side_keeps_its_bytes() {
        let base = b"\\Seen\n".to_vec();
        let ours = b"\\Seen\n\\Flagged".to_vec();
        let theirs = b"\\Flagged\n\\Seen\n".to_vec();
        assert_eq!(
            FlagsMerge.merge(Some(&base), Some(&ours), Some(&theirs)),
            Merged::Clean(Some(ours))
        );
    }
}
