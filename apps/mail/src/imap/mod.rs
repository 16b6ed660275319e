//! IMAP (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1) over implicit TLS: the user's
//! mailboxes in the store, served to Thunderbird, mutt, mbsync and Apple Mail.
//!
//! [`session`] is the protocol over the store, sans-IO, on `imap-codec`; [`mime`] the
//! ENVELOPE, BODYSTRUCTURE and body sections cut from the stored bytes; [`search`] the
//! SEARCH keys; [`utf7`] the modified UTF-7 mailbox names of IMAP4rev1 clients; [`server`] runs sessions over TLS, one thread each, and wakes idling
//! clients when the store's branch moves. Flag changes, appends, copies, moves and
//! expunges are each one store commit; expunges leave tombstones, so QRESYNC clients
//! (RFC 7162) hear which UIDs vanished while they were away. Answers are written to the
//! connection as they are made, a long FETCH message by message.

mod list_extended;
pub mod mime;
pub mod search;
pub mod server;
pub mod session;
mod utf7;

pub use session::{Accounts, Config, Session};
