//! Sync between replicas: a sans-IO protocol that fetches and pushes commits and the
//! objects they need, sending only what the other side lacks and verifying every object.
//!
//! Like smoltcp's layers, nothing here does I/O or reads a clock: [`Server`],
//! [`FetchClient`] and [`PushClient`] are [`Endpoint`]s fed [`Message`]s that return the
//! messages to send, and [`FrameDecoder`] turns a byte stream into messages. The transport
//! (TCP with mutual TLS checked against the user's root, in kith-identity's terms) is a
//! thin shell around them, and tests drive them over an in-memory link.
//!
//! [`run`] drives one side over any byte stream (TLS over TCP in practice).
//!
//! How a fetch finds what to send is described in [`receive`]; a push is a fetch in the
//! other direction followed by compare-and-set of the server's branches, refused unless
//! it is a fast-forward.

mod message;
pub mod receive;
mod send;
mod session;
pub mod transport;

pub use message::{
    FrameDecoder, FrameError, MAX_FRAME, Message, Mode, RefUpdate, Sent, VERSION, Want,
};
pub use receive::{FetchReport, Receiver};
pub use send::Sender;
pub use session::{Endpoint, FetchClient, PushClient, Server};
pub use transport::{Traffic, TransportError, run};

/// Branches under this prefix track other replicas' branches (`remotes/<remote>/<branch>`):
/// a server does not offer them, so they never travel.
pub const TRACKING_PREFIX: &str = "remotes/";

/// Branches under this prefix belong to one replica (a disk image's service keys, see
/// `kith disk write`): a server neither offers them nor takes pushes to them.
pub const LOCAL_PREFIX: &str = "local/";

/// Whether branch `name` travels between replicas: it is neither a tracking branch nor
/// a local one.
pub fn travels(name: &str) -> bool {
    !name.starts_with(TRACKING_PREFIX) && !name.starts_with(LOCAL_PREFIX)
}

/// The branch that tracks `branch` of the replica called `remote`.
pub fn tracking_branch(remote: &str, branch: &str) -> String {
    format!("{TRACKING_PREFIX}{remote}/{branch}")
}

use crate::hash::Hash;

/// Why a sync session ended early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// The peer sent bytes that do not hash to the object asked for, or do not decode as
    /// the kind expected; the session is cut off and the object is not kept.
    #[error("the peer sent a bad object for {0}; nothing of it was kept")]
    BadObject(Hash),
    /// The peer does not have an object its own tree refers to.
    #[error("the peer lacks object {0} that its history needs; run `kith fsck` there")]
    Missing(Hash),
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer reported an error and ended the session.
    #[error("the peer ended the session: {0}")]
    Peer(String),
}
