//! Merges of vCards as Apple Contacts, Google, DAVx5 and Thunderbird write them.

use super::{clean, merge};
use kith_contacts::VcardMerge;
use kith_store::{ContentMerge, Merged};

const APPLE: &str = include_str!("fixtures/apple.vcf");
const GOOGLE: &str = include_str!("fixtures/google.vcf");
const DAVX5: &str = include_str!("fixtures/davx5.vcf");
const THUNDERBIRD: &str = include_str!("fixtures/thunderbird.vcf");

/// `text` with `old` (which must occur once) replaced by `new`.
fn edit(text: &str, old: &str, new: &str) -> String {
    assert_eq!(text.matches(old).count(), 1, "{old:?} must occur once");
    text.replacen(old, new, 1)
}

#[test]
fn phone_added_on_one_side_email_changed_on_the_other() {
    let ours = edit(APPLE, "j.appleseed@example.net", "johnny@orchards.example");
    let theirs = edit(
        APPLE,
        "item2.X-ABADR:us\r\n",
        "item2.X-ABADR:us\r\nitem4.TEL;type=WORK:+1 (555) 010-0199\r\nitem4.X-ABLabel:_$!<Work>!$_\r\n",
    );
    let merged = clean(merge(APPLE.as_bytes(), ours.as_bytes(), theirs.as_bytes()));
    let expected = edit(
        &ours,
        "item2.X-ABADR:us\r\n",
        "item2.X-ABADR:us\r\nitem4.TEL;type=WORK:+1 (555) 010-0199\r\nitem4.X-ABLabel:_$!<Work>!$_\r\n",
    );
    assert_eq!(merged, expected);
    // The same from the other replica: the same properties, theirs' order.
    let mirrored = clean(merge(APPLE.as_bytes(), theirs.as_bytes(), ours.as_bytes()));
    assert_eq!(mirrored, expected);
}

#[test]
fn a_group_both_sides_introduced_is_renamed_in_theirs() {
    // Apple Contacts numbers groups itemN: two devices adding a labelled field both pick item4.
    let anchor = "item3.X-ABLabel:_$!<Father>!$_\r\n";
    let ours = edit(
        APPLE,
        anchor,
        &format!("{anchor}item4.TEL:+1 555 0142\r\nitem4.X-ABLabel:_$!<Work>!$_\r\n"),
    );
    let theirs = edit(
        APPLE,
        anchor,
        &format!("{anchor}item4.EMAIL:j@orchard.example\r\nitem4.X-ABLabel:school\r\n"),
    );
    let merged = clean(merge(APPLE.as_bytes(), ours.as_bytes(), theirs.as_bytes()));
    let both = "item4.TEL:+1 555 0142\r\nitem4.X-ABLabel:_$!<Work>!$_\r\nitem5.EMAIL:j@orchard.example\r\nitem5.X-ABLabel:school\r\n";
    assert_eq!(merged, edit(APPLE, anchor, &format!("{anchor}{both}")));
    // The same group added the same way on both sides stays one group.
    assert_eq!(
        clean(merge(APPLE.as_bytes(), ours.as_bytes(), ours.as_bytes())),
        ours
    );
}

#[test]
fn untouched_photo_and_folding_survive_byte_for_byte() {
    let ours = edit(APPLE, "TITLE:Head of Seeds", "TITLE:Chief Orchardist");
    let theirs = edit(
        APPLE,
        "BDAY;value=date:1774-09-26\r\n",
        "BDAY;value=date:1774-09-26\r\nX-PHONETIC-LAST-NAME:APL\r\n",
    );
    let merged = clean(merge(APPLE.as_bytes(), ours.as_bytes(), theirs.as_bytes()));
    let photo_start = APPLE.find("PHOTO;").unwrap();
    let photo_end = APPLE.find("X-IMAGETYPE").unwrap();
    assert!(merged.contains(&APPLE[photo_start..photo_end]));
    assert_eq!(
        merged,
        edit(
            &ours,
            "BDAY;value=date:1774-09-26\r\n",
            "BDAY;value=date:1774-09-26\r\nX-PHONETIC-LAST-NAME:APL\r\n"
        )
    );
}

#[test]
fn same_name_changed_two_ways_conflicts() {
    let ours = edit(GOOGLE, "FN:Ada Lovelace", "FN:Augusta Ada King");
    let theirs = edit(
        GOOGLE,
        "FN:Ada Lovelace",
        "FN:Ada King\\, Countess of Lovelace",
    );
    match merge(GOOGLE.as_bytes(), ours.as_bytes(), theirs.as_bytes()) {
        Merged::Conflict(why) => assert!(why.contains("FN"), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn same_change_on_both_sides_is_clean() {
    let ours = edit(GOOGLE, "FN:Ada Lovelace", "FN:Ada King");
    let theirs = edit(
        &ours,
        "TEL;TYPE=CELL:+44 20 7946 0000",
        "TEL;TYPE=CELL:+44 20 7946 0001",
    );
    let merged = clean(merge(GOOGLE.as_bytes(), ours.as_bytes(), theirs.as_bytes()));
    assert_eq!(merged, theirs);
}

#[test]
fn only_theirs_changed_gives_theirs_exactly() {
    let theirs = edit(DAVX5, "EMAIL;TYPE=work:grace@navy.example\n", "");
    let merged = VcardMerge.merge(
        Some(DAVX5.as_bytes()),
        Some(DAVX5.as_bytes()),
        Some(theirs.as_bytes()),
    );
    assert_eq!(merged, Merged::Clean(Some(theirs.into_bytes())));
}

#[test]
fn rev_takes_the_later_and_lf_endings_stay() {
    let ours = edit(DAVX5, "REV:20240301T100000Z", "REV:20240305T080000Z");
    let ours = edit(
        &ours,
        "EMAIL;TYPE=work:grace@navy.example",
        "EMAIL;TYPE=work:grace@navy.example\nEMAIL;TYPE=home:grace@home.example",
    );
    let theirs = edit(DAVX5, "REV:20240301T100000Z", "REV:20240302T090000Z");
    let theirs = edit(&theirs, "TEL;TYPE=cell;VALUE=uri:tel:+1-202-555-0142\n", "");
    let merged = clean(merge(DAVX5.as_bytes(), ours.as_bytes(), theirs.as_bytes()));
    assert_eq!(
        merged,
        edit(&ours, "TEL;TYPE=cell;VALUE=uri:tel:+1-202-555-0142\n", "")
    );
    assert!(!merged.contains('\r'));
}

#[test]
fn deletion_against_a_change() {
    let bumped = edit(DAVX5, "REV:20240301T100000Z", "REV:20240309T100000Z");
    assert_eq!(
        VcardMerge.merge(Some(DAVX5.as_bytes()), None, Some(bumped.as_bytes())),
        Merged::Clean(None)
    );
    let edited = edit(DAVX5, "FN:Grace Hopper", "FN:Grace B. Hopper");
    assert!(matches!(
        VcardMerge.merge(Some(DAVX5.as_bytes()), Some(edited.as_bytes()), None),
        Merged::Conflict(_)
    ));
}

#[test]
fn added_on_both_sides_unites_the_lists() {
    let ours = edit(
        THUNDERBIRD,
        "X-CUSTOM1:Bletchley",
        "X-CUSTOM1:Bletchley\r\nEMAIL:alan@example.org",
    );
    let merged = clean(VcardMerge.merge(None, Some(ours.as_bytes()), Some(THUNDERBIRD.as_bytes())));
    assert_eq!(merged, ours);
    let theirs = edit(
        THUNDERBIRD,
        "NICKNAME:Prof",
        "NICKNAME:Prof\r\nTEL;TYPE=home:+44 161 555 0100",
    );
    let merged = clean(VcardMerge.merge(None, Some(ours.as_bytes()), Some(theirs.as_bytes())));
    assert_eq!(
        merged,
        edit(
            &ours,
            "NICKNAME:Prof",
            "NICKNAME:Prof\r\nTEL;TYPE=home:+44 161 555 0100"
        )
    );
}

#[test]
fn refolded_line_counts_as_unchanged() {
    // Theirs rewrote the file with other folding and changed the nickname.
    let theirs = APPLE.replace("\r\n ", "");
    let theirs = edit(
        &theirs,
        "TITLE:Head of Seeds",
        "TITLE:Head of Seeds\r\nNICKNAME:Johnny",
    );
    let ours = edit(APPLE, "FN:Johnny Appleseed", "FN:John Chapman");
    let merged = clean(merge(APPLE.as_bytes(), ours.as_bytes(), theirs.as_bytes()));
    assert_eq!(
        merged,
        edit(
            &ours,
            "TITLE:Head of Seeds",
            "TITLE:Head of Seeds\r\nNICKNAME:Johnny"
        )
    );
}

#[test]
fn several_cards_pair_by_uid() {
    let both = format!("{THUNDERBIRD}{APPLE}");
    let ours = edit(&both, "X-CUSTOM1:Bletchley", "X-CUSTOM1:Manchester");
    let theirs = edit(&both, "TITLE:Head of Seeds", "TITLE:Seedsman");
    let merged = clean(merge(both.as_bytes(), ours.as_bytes(), theirs.as_bytes()));
    assert_eq!(merged, edit(&ours, "TITLE:Head of Seeds", "TITLE:Seedsman"));
}

#[test]
fn a_uid_changed_on_one_side_is_a_property_change() {
    let ours = edit(
        THUNDERBIRD,
        "UID:5a2c3f2e-8d3c-4a4c-9b39-3f4d2e1c0b9a",
        "UID:urn:uuid:5a2c3f2e-8d3c-4a4c-9b39-3f4d2e1c0b9a",
    );
    let theirs = edit(THUNDERBIRD, "NICKNAME:Prof", "NICKNAME:Alan");
    let merged = clean(merge(
        THUNDERBIRD.as_bytes(),
        ours.as_bytes(),
        theirs.as_bytes(),
    ));
    assert_eq!(merged, edit(&ours, "NICKNAME:Prof", "NICKNAME:Alan"));
    // Two different contacts created at the same path conflict on their UIDs.
    let other = edit(&ours, "uuid:5a2c3f2e", "uuid:00000000");
    match VcardMerge.merge(None, Some(ours.as_bytes()), Some(other.as_bytes())) {
        Merged::Conflict(why) => assert!(why.contains("UID"), "{why}"),
        merged => panic!("expected a conflict, got {merged:?}"),
    }
}

#[test]
fn not_a_vcard_merges_only_when_trivial() {
    let junk = b"BEGIN:VCARD\r\nthis is not a content line\r\nEND:VCARD\r\n";
    assert!(matches!(
        merge(junk, APPLE.as_bytes(), GOOGLE.as_bytes()),
        Merged::Conflict(_)
    ));
    assert!(matches!(
        merge(APPLE.as_bytes(), junk, GOOGLE.as_bytes()),
        Merged::Conflict(_)
    ));
    let ical = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
    assert!(matches!(
        merge(ical, APPLE.as_bytes(), GOOGLE.as_bytes()),
        Merged::Conflict(_)
    ));
    assert_eq!(
        merge(APPLE.as_bytes(), junk, junk),
        Merged::Clean(Some(junk.to_vec()))
    );
    let latin1 = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ren\xe9\r\nEND:VCARD\r\n";
    assert!(matches!(
        merge(APPLE.as_bytes(), latin1, GOOGLE.as_bytes()),
        Merged::Conflict(_)
    ));
}
