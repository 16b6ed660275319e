//! Inbound SMTP (RFC 5321): mail for the user's domains arrives here and lands in the
//! recipient's INBOX in the store, one commit per message.
//!
//! [`session`] is the protocol, sans-IO, on `smtp-proto`'s parser; [`server`] runs it over
//! TCP with STARTTLS (rustls, the `mail` service certificate) and delivers into the store.
//! Not yet here: SPF/DKIM/DMARC checks, submission with AUTH, the outbound queue.

pub mod server;
pub mod session;

pub use session::{Action, Config, Envelope, Session};
