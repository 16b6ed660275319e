//! The merge functions of every app, registered for the files each owns.

use kith_store::Mergers;

/// Every content merge Kith knows: vCards (`.vcf`, kith-contacts) property by property,
/// iCalendar objects (`.ics`, kith-calendar) by component and property, a message's
/// flags (`.flags`) as sets and a mailbox's counters as the larger number (kith-mail).
/// Anything else merges only when both sides agree.
pub fn all() -> Mergers {
    let mut mergers = Mergers::new();
    kith_contacts::merge::register(&mut mergers);
    kith_calendar::merge::register(&mut mergers);
    kith_mail::register_mergers(&mut mergers);
    mergers
}
