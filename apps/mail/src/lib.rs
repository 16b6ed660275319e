//! kith-mail is Kith's mail over the store: messages kept byte for byte in the user's
//! mailboxes under `/mail/<user>/`, each beside a small flags file, received over SMTP
//! and served over IMAP to Thunderbird, mutt, mbsync and Apple Mail. It sits on
//! kith-store; the `kith` CLI gives it kith-identity's certificates.
//!
//! [`mailbox`] is the layout in the store (UIDs, flags, messages waiting for a UID);
//! [`flags`] the flags file and its merge, [`FlagsMerge`], which the store calls when two
//! replicas changed the same message's flags; [`maildir`] turns mailboxes into Maildirs
//! and back, and reads mbox files; [`smtp`] receives mail for the user's domains; [`imap`]
//! serves the mailboxes. Still to come: submission, the outbound queue with DKIM, and
//! SPF/DKIM/DMARC checks.

pub mod flags;
pub mod imap;
pub mod mailbox;
pub mod maildir;
pub mod smtp;

pub use flags::FlagsMerge;
