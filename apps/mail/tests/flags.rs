//! The flags merge: scenarios of two devices reading and filing mail, and properties.

use std::collections::BTreeSet;

use kith_mail::FlagsMerge;
use kith_mail::flags::{format_flags, parse_flags};
use kith_store::{ContentMerge, Merged};
use proptest::prelude::*;

const FLAGS: &[&str] = &[
    "\\Seen",
    "\\Answered",
    "\\Flagged",
    "\\Deleted",
    "\\Draft",
    "$Forwarded",
    "$Junk",
    "$Label1",
    "NonJunk",
];

fn file(flags: &[&str]) -> Vec<u8> {
    format_flags(&flags.iter().map(|f| f.to_string()).collect())
}

#[test]
fn phone_reads_while_laptop_answers_and_labels() {
    let base = file(&[]);
    let phone = file(&["\\Seen"]);
    let laptop = file(&["\\Answered", "\\Seen", "$Label1"]);
    let merged = FlagsMerge.merge(Some(&base), Some(&phone), Some(&laptop));
    assert_eq!(merged, Merged::Clean(Some(laptop.clone())));
    // The phone marks it unread again while the laptop answers: unread and answered.
    let base = file(&["\\Seen"]);
    let phone = file(&[]);
    let laptop = file(&["\\Answered", "\\Seen"]);
    assert_eq!(
        FlagsMerge.merge(Some(&base), Some(&phone), Some(&laptop)),
        Merged::Clean(Some(file(&["\\Answered"])))
    );
}

#[test]
fn expunged_on_one_device_while_flagged_on_the_other() {
    let base = file(&["\\Seen"]);
    let flagged = file(&["\\Flagged", "\\Seen"]);
    assert_eq!(
        FlagsMerge.merge(Some(&base), None, Some(&flagged)),
        Merged::Clean(None)
    );
    assert_eq!(
        FlagsMerge.merge(Some(&base), Some(&flagged), None),
        Merged::Clean(None)
    );
    assert_eq!(
        FlagsMerge.merge(Some(&base), None, None),
        Merged::Clean(None)
    );
}

fn flag_set() -> impl Strategy<Value = BTreeSet<String>> {
    proptest::sample::subsequence(FLAGS, 0..FLAGS.len())
        .prop_map(|f| f.iter().map(|s| s.to_string()).collect())
}

proptest! {
    #[test]
    fn merges_flag_by_flag(b in flag_set(), o in flag_set(), t in flag_set()) {
        let (bf, of, tf) = (format_flags(&b), format_flags(&o), format_flags(&t));
        let Merged::Clean(Some(merged)) = FlagsMerge.merge(Some(&bf), Some(&of), Some(&tf)) else {
            panic!("flags always merge");
        };
        let merged = parse_flags(&merged).expect("the merge writes a flags file");
        for flag in FLAGS {
            let has = |s: &BTreeSet<String>| s.contains(*flag);
            prop_assert_eq!(has(&merged), if has(&o) == has(&b) { has(&t) } else { has(&o) }, "{}", flag);
        }
        let mirrored = FlagsMerge.merge(Some(&bf), Some(&tf), Some(&of));
        prop_assert_eq!(mirrored, Merged::Clean(Some(format_flags(&merged))));
    }

    #[test]
    fn an_unchanged_side_gives_the_other_exactly(b in any::<Vec<u8>>(), o in any::<Vec<u8>>()) {
        prop_assert_eq!(FlagsMerge.merge(Some(&b), Some(&b), Some(&o)), Merged::Clean(Some(o.clone())));
        prop_assert_eq!(FlagsMerge.merge(Some(&b), Some(&o), Some(&b)), Merged::Clean(Some(o.clone())));
        prop_assert_eq!(FlagsMerge.merge(Some(&b), Some(&o), Some(&o)), Merged::Clean(Some(o.clone())));
    }

    #[test]
    fn parse_inverts_format(flags in flag_set()) {
        prop_assert_eq!(parse_flags(&format_flags(&flags)), Some(flags));
    }
}
