//! `kith merge` on real-world vCards, iCalendar events and mail flags, through the CLI.

mod common;

use common::Kith;

const CARD: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//iOS 17.0//EN\r\nN:Lovelace;Ada;;;\r\nFN:Ada Lovelace\r\n\
item1.EMAIL;type=INTERNET;type=pref:ada@example.org\r\nitem1.X-ABLabel:_$!<Other>!$_\r\nTEL;type=CELL;type=VOICE;type=pref:+44 20 7946 0000\r\n\
X-SOCIALPROFILE;type=twitter:http://twitter.com/ada\r\nNOTE:Analytical engine programmer; the first to see that a machine could\r\n  go beyond calculation.\r\n\
UID:ada-1815\r\nEND:VCARD\r\n";

/// Puts `body` at `path` on `branch` (creating the branch from main when asked).
fn put(k: &Kith, branch: &str, path: &str, body: &str) {
    let out = k.run_with(&["--branch", branch, "put", path], body.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_phone_added_here_and_an_email_changed_there_are_both_kept() {
    let k = Kith::init();
    let path = "/contacts/me/default/ada-1815.vcf";
    put(&k, "main", path, CARD);
    k.ok(&["branch", "phone"]);
    put(
        &k,
        "main",
        path,
        &CARD.replace("END:VCARD", "TEL;type=WORK:+44 20 7946 1111\r\nEND:VCARD"),
    );
    put(
        &k,
        "phone",
        path,
        &CARD.replace("ada@example.org", "ada@lovelace.example"),
    );
    let out = k.run_with(&["merge", "phone"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = k.ok(&["get", path]);
    assert!(
        merged.contains("TEL;type=WORK:+44 20 7946 1111\r\n"),
        "{merged}"
    );
    assert!(
        merged.contains("item1.EMAIL;type=INTERNET;type=pref:ada@lovelace.example\r\n"),
        "{merged}"
    );
    assert!(!merged.contains("ada@example.org"), "{merged}");
    for kept in [
        "item1.X-ABLabel:_$!<Other>!$_\r\n",
        "X-SOCIALPROFILE;type=twitter:http://twitter.com/ada\r\n",
        "could\r\n  go beyond",
    ] {
        assert!(merged.contains(kept), "lost {kept:?}: {merged}");
    }
    assert_eq!(k.json(&["conflicts"]), serde_json::json!([]));
}

#[test]
fn the_same_name_changed_two_ways_is_a_conflict_that_resolve_settles() {
    let k = Kith::init();
    let path = "/contacts/me/default/ada-1815.vcf";
    put(&k, "main", path, CARD);
    k.ok(&["branch", "phone"]);
    let laptop = CARD.replace("FN:Ada Lovelace", "FN:Augusta Ada King");
    put(&k, "main", path, &laptop);
    put(
        &k,
        "phone",
        path,
        &CARD.replace("FN:Ada Lovelace", "FN:Countess of Lovelace"),
    );
    let out = k.run_with(&["merge", "phone"], b"");
    assert_eq!(out.status.code(), Some(1));
    let conflicts = k.json(&["conflicts"]);
    assert_eq!(conflicts[0]["path"], path);
    assert!(
        conflicts[0]["why"].as_str().unwrap().contains("FN"),
        "{conflicts}"
    );
    assert_eq!(
        k.ok(&["get", path]),
        laptop,
        "our version is served while the conflict is open"
    );
    let theirs = k.ok(&["get", &format!("/.kith/conflicts{path}/theirs")]);
    assert!(theirs.contains("Countess"));
    let settled = CARD.replace("FN:Ada Lovelace", "FN:Ada King, Countess of Lovelace");
    let out = k.run_with(&["resolve", path, "-"], settled.as_bytes());
    assert!(out.status.success());
    assert_eq!(k.ok(&["get", path]), settled);
    assert_eq!(k.json(&["conflicts"]), serde_json::json!([]));
}

const SERIES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/London\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100\r\nTZNAME:BST\r\nDTSTART:19700329T010000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n\
BEGIN:STANDARD\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\nTZNAME:GMT\r\nDTSTART:19701025T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:standup-42\r\nDTSTAMP:20261101T090000Z\r\nDTSTART;TZID=Europe/London:20261102T093000\r\nDTEND;TZID=Europe/London:20261102T094500\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR\r\nSUMMARY:Stand-up\r\nORGANIZER:mailto:ada@example.org\r\nATTENDEE;CN=Ada:mailto:ada@example.org\r\nSEQUENCE:0\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:Stand-up\r\nEND:VALARM\r\nEND:VEVENT\r\n";

const OVERRIDE: &str = "BEGIN:VEVENT\r\nUID:standup-42\r\nRECURRENCE-ID;TZID=Europe/London:20261104T093000\r\nDTSTAMP:20261101T090000Z\r\n\
DTSTART;TZID=Europe/London:20261104T100000\r\nDTEND;TZID=Europe/London:20261104T101500\r\nSUMMARY:Stand-up\r\nSEQUENCE:0\r\nEND:VEVENT\r\n";

#[test]
fn an_override_moved_here_and_an_attendee_added_to_the_series_there_are_both_kept() {
    let k = Kith::init();
    let path = "/calendar/me/work/standup-42.ics";
    let base = format!("{SERIES}{OVERRIDE}END:VCALENDAR\r\n");
    put(&k, "main", path, &base);
    k.ok(&["branch", "phone"]);
    let moved = OVERRIDE
        .replace("20261104T100000", "20261104T110000")
        .replace("20261104T101500", "20261104T111500")
        .replace("SEQUENCE:0", "SEQUENCE:1");
    put(
        &k,
        "main",
        path,
        &format!("{SERIES}{moved}END:VCALENDAR\r\n"),
    );
    let invited = SERIES.replace(
        "ATTENDEE;CN=Ada:mailto:ada@example.org\r\n",
        "ATTENDEE;CN=Ada:mailto:ada@example.org\r\nATTENDEE;CN=Charles;PARTSTAT=NEEDS-ACTION:mailto:charles@example.org\r\n",
    );
    put(
        &k,
        "phone",
        path,
        &format!("{invited}{OVERRIDE}END:VCALENDAR\r\n"),
    );
    let out = k.run_with(&["merge", "phone"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = k.ok(&["get", path]);
    assert!(
        merged.contains("DTSTART;TZID=Europe/London:20261104T110000\r\n"),
        "the moved override: {merged}"
    );
    assert!(
        merged.contains("mailto:charles@example.org"),
        "the new attendee: {merged}"
    );
    assert!(
        merged.contains("TRIGGER:-PT5M")
            && merged.contains("RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"),
        "{merged}"
    );
}

#[test]
fn flags_merge_as_sets() {
    let k = Kith::init();
    let path = "/mail/me/INBOX/1234.flags";
    put(&k, "main", path, "$Label1\n");
    k.ok(&["branch", "phone"]);
    put(&k, "main", path, "$Label1\n\\Seen\n");
    put(&k, "phone", path, "\\Flagged\n");
    k.ok(&["merge", "phone"]);
    assert_eq!(k.ok(&["get", path]), "\\Flagged\n\\Seen\n");
}
