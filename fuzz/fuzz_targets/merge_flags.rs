//! The flags merge on arbitrary bytes: see `merge_common.rs` for the split and the checks;
//! also, two present flags files that parse always merge into one that parses.
#![no_main]

mod merge_common;

use kith_mail::flags::parse_flags;
use kith_store::{ContentMerge, Merged};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [base, ours, theirs] = merge_common::versions(data);
    let merged = merge_common::check(&kith_mail::FlagsMerge, base, ours, theirs);
    let parses = |v: Option<&[u8]>| v.is_none_or(|v| parse_flags(v).is_some());
    if let (Some(_), Some(_)) = (ours, theirs)
        && parses(base)
        && parses(ours)
        && parses(theirs)
    {
        let Merged::Clean(Some(out)) = merged else { panic!("flags that parse always merge: {merged:?}") };
        let mirrored = kith_mail::FlagsMerge.merge(base, theirs, ours);
        let Merged::Clean(Some(other)) = mirrored else { panic!("the mirrored merge failed: {mirrored:?}") };
        assert_eq!(parse_flags(&out), parse_flags(&other), "both replicas merge to the same flags");
    }
});
