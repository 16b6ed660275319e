//! Tests of the iCalendar merge: scenarios on files as clients write them, and properties.

mod properties;
mod scenarios;

use kith_calendar::IcalMerge;
use kith_store::{ContentMerge, Merged};

/// Merges three present versions.
fn merge(base: &str, ours: &str, theirs: &str) -> Merged {
    IcalMerge.merge(
        Some(base.as_bytes()),
        Some(ours.as_bytes()),
        Some(theirs.as_bytes()),
    )
}

/// The merged bytes of a clean merge, as text.
fn clean(merged: Merged) -> String {
    match merged {
        Merged::Clean(Some(bytes)) => String::from_utf8(bytes).expect("UTF-8"),
        other => panic!("expected a clean merge, got {other:?}"),
    }
}
