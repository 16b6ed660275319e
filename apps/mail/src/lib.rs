//! kith-mail is Kith's mail over the store: messages kept byte for byte in the user's
//! mailboxes under `/mail/<user>/`, each beside a small flags file, received over SMTP
//! and served over IMAP to Thunderbird, mutt, mbsync and Apple Mail. It sits on
//! kith-store; the `kith` CLI gives it kith-identity's certificates.
//!
//! [`mailbox`] is the layout in the store (UIDs, flags, messages waiting for a UID);
//! [`flags`] the flags file and its merge, [`FlagsMerge`], which the store calls when two
//! replicas changed the same message's flags; [`maildir`] turns mailboxes into Maildirs
//! and back, and reads mbox files; [`smtp`] receives mail for the user's domains and
//! takes the user's own mail on the submission ports; [`queue`] keeps mail for other
//! domains in the store, DKIM-signed, until their servers take it; [`imap`] serves the
//! mailboxes. Inbound mail is checked for SPF, DKIM and DMARC on the way in.

pub mod flags;
pub mod imap;
pub mod mailbox;
pub mod maildir;
mod memory;
pub mod queue;
pub mod smtp;

pub use flags::FlagsMerge;

use std::sync::Arc;

use kith_store::{Mergers, Rule};
use mailbox::CounterMerge;

/// A mailbox's own counters: removing one while the other side counts on conflicts.
const MAILBOX_COUNTER: CounterMerge = CounterMerge {
    removal_wins: false,
};

/// Registers mail's merges for the files it keeps: a message's flags (`.flags`) as
/// sets, a mailbox's counters (`/.uidnext`, `/.modseq`) and a message's `.modseq` as the
/// larger number (an expunge beats a message's counter).
pub fn register_mergers(mergers: &mut Mergers) {
    mergers
        .register(Rule::Suffix(".flags".into()), Arc::new(FlagsMerge))
        .register(Rule::Suffix("/.uidnext".into()), Arc::new(MAILBOX_COUNTER))
        .register(Rule::Suffix("/.modseq".into()), Arc::new(MAILBOX_COUNTER))
        .register(
            Rule::Suffix(".modseq".into()),
            Arc::new(CounterMerge { removal_wins: true }),
        );
}

/// Checks a user's password, for IMAP and submission sign-in; the `kith` CLI backs it
/// with the accounts of `kith user add`.
pub trait Accounts: Send + Sync {
    /// Whether `password` is `user`'s password.
    fn verify(&self, user: &str, password: &str) -> bool;
}

/// A function checking passwords is a set of accounts (kith-dav's `password_check`).
impl<F: Fn(&str, &str) -> bool + Send + Sync> Accounts for F {
    fn verify(&self, user: &str, password: &str) -> bool {
        self(user, password)
    }
}
