//! The merge functions of every app, registered for the files each owns.

use std::sync::Arc;

use kith_mail::mailbox::CounterMerge;
use kith_store::{Mergers, Rule};

/// A mailbox's own counters: removing one while the other side counts on conflicts.
const MAILBOX_COUNTER: CounterMerge = CounterMerge {
    removal_wins: false,
};

/// Every content merge Kith knows: vCards (`.vcf`, kith-contacts) property by property,
/// iCalendar objects (`.ics`, kith-calendar) by component and property, and a message's
/// flags (`.flags`, kith-mail) as sets, and a mailbox's counters (`.uidnext`, `.modseq`,
/// kith-mail) as the larger number. Anything else merges only when both sides agree.
pub fn all() -> Mergers {
    let mut mergers = Mergers::new();
    mergers
        .register(
            Rule::Suffix(".vcf".into()),
            Arc::new(kith_contacts::merge::VcardMerge),
        )
        .register(
            Rule::Suffix(".ics".into()),
            Arc::new(kith_calendar::merge::IcalMerge),
        )
        .register(
            Rule::Suffix(".flags".into()),
            Arc::new(kith_mail::flags::FlagsMerge),
        )
        .register(Rule::Suffix("/.uidnext".into()), Arc::new(MAILBOX_COUNTER))
        .register(Rule::Suffix("/.modseq".into()), Arc::new(MAILBOX_COUNTER))
        .register(
            Rule::Suffix(".modseq".into()),
            Arc::new(CounterMerge { removal_wins: true }),
        );
    mergers
}
