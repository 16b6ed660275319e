//! The merge functions of every app, registered for the files each owns.

use std::sync::Arc;

use kith_store::{Mergers, Rule};

/// Every content merge Kith knows: vCards (`.vcf`, kith-contacts) property by property,
/// iCalendar objects (`.ics`, kith-calendar) by component and property, and a message's
/// flags (`.flags`, kith-mail) as sets. Anything else merges only when both sides agree.
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
        );
    mergers
}
