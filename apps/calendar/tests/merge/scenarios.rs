//! Merges of calendar objects as Google Calendar and Thunderbird write them.

use super::{clean, merge};
use kith_calendar::IcalMerge;
use kith_store::{ContentMerge, Merged};

const GOOGLE: &str = include_str!("fixtures/google-recurring.ics");
const THUNDERBIRD: &str = include_str!("fixtures/thunderbird.ics");

/// `text` with `old` replaced by `new` in the master (`in_override` false) or the
/// override; `old` must occur there.
fn edit_in(text: &str, in_override: bool, old: &str, new: &str) -> String {
    let split = text.rfind("BEGIN:VEVENT").expect("the override");
    let (master, rest) = text.split_at(split);
    let (master, rest) = if in_override {
        (master.to_string(), edit(rest, old, new))
    } else {
        (edit(master, old, new), rest.to_string())
    };
    master + &rest
}

/// `text` with the first `old` replaced by `new`.
fn edit(text: &str, old: &str, new: &str) -> String {
    assert!(text.contains(old), "{old:?} missing");
    text.replacen(old, new, 1)
}

const NEW_ATTENDEE: &str = "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=OPT-PARTICIPANT;PARTSTAT=NEEDS-ACTION;CN=Mary S\r\n omerville:mailto:mary@example.org\r\n";

/// The master's last attendee line, where an added attendee goes.
const LAST_ATTENDEE_END: &str = "X-NUM-GUESTS=0:mailto:charles@example.org\r\n";

#[test]
fn moved_override_and_new_attendee_on_the_series_are_both_kept() {
    let ours = edit_in(
        GOOGLE,
        true,
        "DTSTART;TZID=Europe/Berlin:20240311T140000",
        "DTSTART;TZID=Europe/Berlin:20240311T150000",
    );
    let ours = edit_in(
        &ours,
        true,
        "DTEND;TZID=Europe/Berlin:20240311T143000",
        "DTEND;TZID=Europe/Berlin:20240311T153000",
    );
    let ours = edit_in(&ours, true, "SEQUENCE:2", "SEQUENCE:3");
    let ours = edit_in(
        &ours,
        true,
        "DTSTAMP:20240301T120000Z",
        "DTSTAMP:20240302T080000Z",
    );
    let with_mary = format!("{LAST_ATTENDEE_END}{NEW_ATTENDEE}");
    let theirs = edit_in(GOOGLE, false, LAST_ATTENDEE_END, &with_mary);
    let theirs = edit_in(&theirs, false, "SEQUENCE:2", "SEQUENCE:3");
    let theirs = edit_in(
        &theirs,
        false,
        "DTSTAMP:20240301T120000Z",
        "DTSTAMP:20240303T090000Z",
    );

    let expected = edit_in(&ours, false, LAST_ATTENDEE_END, &with_mary);
    let expected = edit_in(&expected, false, "SEQUENCE:2", "SEQUENCE:3");
    let expected = edit_in(
        &expected,
        false,
        "DTSTAMP:20240301T120000Z",
        "DTSTAMP:20240303T090000Z",
    );
    assert_eq!(clean(merge(GOOGLE, &ours, &theirs)), expected);
    let mirrored = clean(merge(GOOGLE, &theirs, &ours));
    assert_eq!(
        mirrored, expected,
        "the other replica merges to the same bytes here"
    );
}

#[test]
fn override_added_on_one_side_is_kept() {
    let start = GOOGLE.rfind("BEGIN:VEVENT").unwrap();
    let end = GOOGLE.rfind("END:VCALENDAR").unwrap();
    let second = GOOGLE[start..end]
        .replace("20240311T1", "20240318T1")
        .replace("Room 102", "Room 7")
        .replace("Engine sync (moved)", "Engine sync (room change)");
    let theirs = format!("{}{second}{}", &GOOGLE[..end], &GOOGLE[end..]);
    let ours = edit_in(
        GOOGLE,
        false,
        "SUMMARY:Engine sync\r\n",
        "SUMMARY:Engine weekly\r\n",
    );
    let merged = clean(merge(GOOGLE, &ours, &theirs));
    let end = ours.rfind("END:VCALENDAR").unwrap();
    assert_eq!(merged, format!("{}{second}{}", &ours[..end], &ours[end..]));
}

#[test]
fn same_summary_changed_two_ways_conflicts() {
    let ours = edit_in(
        GOOGLE,
        false,
        "SUMMARY:Engine sync\r\n",
        "SUMMARY:Engine weekly\r\n",
    );
    let theirs = edit_in(
        GOOGLE,
        false,
        "SUMMARY:Engine sync\r\n",
        "SUMMARY:Difference engine\r\n",
    );
    match merge(GOOGLE, &ours, &theirs) {
        Merged::Conflict(why) => assert!(why.contains("SUMMARY"), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn sequence_takes_the_max_and_stamps_the_later() {
    let ours = edit_in(GOOGLE, false, "LOCATION:Room 101", "LOCATION:Room 12");
    let ours = edit_in(&ours, false, "SEQUENCE:2", "SEQUENCE:5");
    let ours = edit_in(
        &ours,
        false,
        "DTSTAMP:20240301T120000Z",
        "DTSTAMP:20240302T080000Z",
    );
    let ours = edit_in(
        &ours,
        false,
        "LAST-MODIFIED:20240301T115900Z",
        "LAST-MODIFIED:20240302T080000Z",
    );
    let theirs = edit_in(
        GOOGLE,
        false,
        "EXDATE;TZID=Europe/Berlin:20240401T100000\r\n",
        "EXDATE;TZID=Europe/Berlin:20240401T100000\r\nEXDATE;TZID=Europe/Berlin:20240408T100000\r\n",
    );
    let theirs = edit_in(&theirs, false, "SEQUENCE:2", "SEQUENCE:3");
    let theirs = edit_in(
        &theirs,
        false,
        "DTSTAMP:20240301T120000Z",
        "DTSTAMP:20240304T080000Z",
    );
    let theirs = edit_in(
        &theirs,
        false,
        "LAST-MODIFIED:20240301T115900Z",
        "LAST-MODIFIED:20240301T235900Z",
    );
    let merged = clean(merge(GOOGLE, &ours, &theirs));
    let expected = edit_in(
        &ours,
        false,
        "EXDATE;TZID=Europe/Berlin:20240401T100000\r\n",
        "EXDATE;TZID=Europe/Berlin:20240401T100000\r\nEXDATE;TZID=Europe/Berlin:20240408T100000\r\n",
    );
    let expected = edit_in(
        &expected,
        false,
        "DTSTAMP:20240302T080000Z",
        "DTSTAMP:20240304T080000Z",
    );
    assert_eq!(merged, expected);
}

#[test]
fn attendees_merge_by_address() {
    // Ours: Charles accepts (the address written in other case); theirs: Ada declines.
    let charles =
        "PARTSTAT=NEEDS-ACTION;CN=Charles Babbage;X-NUM-GUESTS=0:mailto:charles@example.org";
    let charles_folded = GOOGLE[GOOGLE
        .find("ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION")
        .unwrap()..]
        .split("\r\nX-GOOGLE")
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        charles_folded.replace("\r\n ", ""),
        format!("ROLE=REQ-PARTICIPANT;{charles}")
    );
    let ours = edit_in(
        GOOGLE,
        false,
        &charles_folded,
        "ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=Charles Babbage:mailto:Charles@Example.org",
    );
    // The line is folded after "CN=Ada Lo".
    let ada = "PARTSTAT=ACCEPTED;CN=Ada Lo";
    let theirs = edit_in(GOOGLE, false, ada, "PARTSTAT=DECLINED;CN=Ada Lo");
    let merged = clean(merge(GOOGLE, &ours, &theirs));
    assert_eq!(
        merged,
        edit_in(&ours, false, ada, "PARTSTAT=DECLINED;CN=Ada Lo")
    );
    // Both answering for Ada differently is a conflict that names her.
    let ours = edit_in(GOOGLE, false, ada, "PARTSTAT=TENTATIVE;CN=Ada Lo");
    match merge(GOOGLE, &ours, &theirs) {
        Merged::Conflict(why) => assert!(why.contains("ATTENDEE"), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn timezones_changed_on_both_sides_do_not_conflict() {
    let ours = edit(GOOGLE, "X-LIC-LOCATION:Europe/Berlin\r\n", "");
    let theirs = edit(GOOGLE, "TZNAME:CEST", "TZNAME:MESZ");
    let theirs = edit_in(&theirs, false, "LOCATION:Room 101", "LOCATION:Room 9");
    let merged = clean(merge(GOOGLE, &ours, &theirs));
    assert!(merged.contains("LOCATION:Room 9"));
    assert_eq!(merged.matches("BEGIN:VTIMEZONE").count(), 1);
    let mirrored = clean(merge(GOOGLE, &theirs, &ours));
    assert_eq!(
        merged.contains("MESZ"),
        mirrored.contains("MESZ"),
        "both replicas pick the same zone"
    );
}

#[test]
fn alarms_are_set_members() {
    let alarm = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;VALUE=DURATION:-PT1H\r\nDESCRIPTION:Default Mozilla Description\r\nEND:VALARM\r\n";
    let second = alarm.replace("-PT1H", "-P1D");
    let ours = edit(THUNDERBIRD, alarm, &format!("{alarm}{second}"));
    let theirs = edit(
        THUNDERBIRD,
        "CATEGORIES:Personal\r\n",
        "CATEGORIES:Personal\r\nCATEGORIES:Health\r\n",
    );
    let theirs = edit(&theirs, "X-MOZ-GENERATION:3", "X-MOZ-GENERATION:4");
    let merged = clean(merge(THUNDERBIRD, &ours, &theirs));
    let expected = edit(
        &ours,
        "CATEGORIES:Personal\r\n",
        "CATEGORIES:Personal\r\nCATEGORIES:Health\r\n",
    );
    assert_eq!(
        merged,
        edit(&expected, "X-MOZ-GENERATION:3", "X-MOZ-GENERATION:4")
    );
    // One side drops the alarm, the other moves it: the moved alarm stays, the old one goes.
    let dropped = edit(THUNDERBIRD, alarm, "");
    let moved = edit(THUNDERBIRD, "-PT1H", "-PT30M");
    assert_eq!(
        clean(merge(THUNDERBIRD, &dropped, &moved)),
        edit(
            &dropped,
            "END:VEVENT",
            &format!("{}END:VEVENT", alarm.replace("-PT1H", "-PT30M"))
        )
    );
}

#[test]
fn deletion_against_a_change() {
    let restamped = edit(
        THUNDERBIRD,
        "DTSTAMP:20240210T082000Z",
        "DTSTAMP:20240211T082000Z",
    );
    assert_eq!(
        IcalMerge.merge(
            Some(THUNDERBIRD.as_bytes()),
            None,
            Some(restamped.as_bytes())
        ),
        Merged::Clean(None)
    );
    let renamed = edit(
        THUNDERBIRD,
        "SUMMARY:Dentist",
        "SUMMARY:Dentist (Dr. Weiss)",
    );
    assert!(matches!(
        IcalMerge.merge(Some(THUNDERBIRD.as_bytes()), Some(renamed.as_bytes()), None),
        Merged::Conflict(_)
    ));
}

#[test]
fn malformed_merges_only_when_trivial() {
    let cut = &THUNDERBIRD[..THUNDERBIRD.len() - 30];
    assert!(matches!(
        merge(THUNDERBIRD, cut, GOOGLE),
        Merged::Conflict(_)
    ));
    assert_eq!(
        merge(THUNDERBIRD, cut, cut),
        Merged::Clean(Some(cut.as_bytes().to_vec()))
    );
    let vcard = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:x\r\nEND:VCARD\r\n";
    assert!(matches!(
        merge(vcard, THUNDERBIRD, GOOGLE),
        Merged::Conflict(_)
    ));
}
