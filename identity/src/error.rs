//! The crate's one error type.

use std::path::PathBuf;

/// What went wrong in kith-identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed underneath.
    #[error("store: {0}")]
    Store(#[from] kith_store::Error),
    /// Reading or writing the local state folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A socket failed.
    #[error("network: {0}")]
    Net(#[from] std::io::Error),
    /// Making or reading a key or certificate failed.
    #[error("certificate: {0}")]
    Cert(String),
    /// The store has no identity yet.
    #[error("this store has no identity; run `kith init --zone NAME --device NAME`")]
    NoIdentity,
    /// The identity exists already.
    #[error("this store already has an identity for zone {0}")]
    IdentityExists(String),
    /// A private key this replica needs is not in its local state.
    #[error("{what} is not on this replica (looked in {path})")]
    MissingSecret {
        /// Which secret.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A device name is unusable.
    #[error("bad device name {name:?}: {reason}")]
    BadDeviceName {
        /// The name given.
        name: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The device is enrolled already.
    #[error("device {0} is enrolled already")]
    DeviceExists(String),
    /// No such device.
    #[error("no device named {0}; `kith ls /identity/devices` lists them")]
    NoDevice(String),
    /// A zone file in the store does not parse.
    #[error("zone file {path}: {detail}")]
    ZoneSyntax {
        /// The store path.
        path: String,
        /// The parser's complaint.
        detail: String,
    },
    /// A DNS name or message could not be built.
    #[error("dns: {0}")]
    Dns(String),
    /// A DNS server answered with an error or not at all.
    #[error("lookup of {name} failed: {detail}")]
    Lookup {
        /// The name looked up.
        name: String,
        /// What happened.
        detail: String,
    },
    /// A sync session with another replica failed.
    #[error(transparent)]
    Sync(#[from] kith_store::sync::TransportError),
    /// A push named a branch with no commits.
    #[error("branch {0} has no commits to push")]
    EmptyBranch(String),
    /// The branches kept moving while a sync tried to bring them together.
    #[error("{remote}'s {branch} kept moving while syncing; sync again")]
    Unsettled {
        /// The remote.
        remote: String,
        /// The branch.
        branch: String,
    },
}

impl From<hickory_proto::ProtoError> for Error {
    fn from(e: hickory_proto::ProtoError) -> Self {
        Error::Dns(e.to_string())
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Cert(e.to_string())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
