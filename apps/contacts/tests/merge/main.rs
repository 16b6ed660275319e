//! Tests of the vCard merge: scenarios on files as clients write them, and properties.

mod properties;
mod scenarios;

use kith_contacts::VcardMerge;
use kith_store::{ContentMerge, Merged};

/// Merges three present versions.
fn merge(base: &[u8], ours: &[u8], theirs: &[u8]) -> Merged {
    VcardMerge.merge(Some(base), Some(ours), Some(theirs))
}

/// The merged bytes of a clean merge, as text.
fn clean(merged: Merged) -> String {
    match merged {
        Merged::Clean(Some(bytes)) => String::from_utf8(bytes).expect("UTF-8"),
        other => panic!("expected a clean merge, got {other:?}"),
    }
}
