//! kith-mail is Kith's SMTP (inbound, submission, outbound queue) and IMAP over the store:
//! each message is kept byte for byte under `/mail/<mailbox>/`, next to a small flags
//! file, and served to Thunderbird, mutt and Apple Mail. It sits on kith-identity (the
//! zone, certificates, DKIM keys) and kith-store, and will build on imap-codec,
//! smtp-proto and mail-parser for the protocols.
//!
//! Today it holds the flags file's format and its merge function, [`FlagsMerge`], which the
//! store calls when two replicas changed the flags of the same message; the SMTP and IMAP
//! services arrive later.

pub mod flags;
pub mod mailbox;
pub mod maildir;

pub use flags::FlagsMerge;
