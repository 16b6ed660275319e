//! SMTP (RFC 5321): mail for the user's domains arrives on the inbound port and lands in
//! the recipient's INBOX in the store, one commit per message; the user's clients submit
//! mail on the submission ports (RFC 6409, RFC 8314) after signing in, and what is for
//! other domains goes to the outbound queue ([`crate::queue`]).
//!
//! [`session`] is the protocol, sans-IO, on `smtp-proto`'s parser; [`server`] runs it over
//! TCP with STARTTLS or implicit TLS (rustls, the `mail` service certificate) and
//! hands messages to [`writer`], which commits them to the store in batches; [`auth`]
//! checks SPF, DKIM and DMARC on the way in.

pub mod auth;
pub mod server;
pub mod session;
pub mod writer;

pub use session::{Action, Config, Directory, Envelope, Failure, Mode, Recipient, Session};
