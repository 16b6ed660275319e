//! The iCalendar merge on arbitrary bytes: see `merge_common.rs` for the split and the checks.
#![no_main]

mod merge_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    merge_common::check_dav(&kith_calendar::IcalMerge, data);
});
