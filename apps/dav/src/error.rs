//! kith-dav's one error type.

/// What can go wrong serving WebDAV or managing accounts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed underneath.
    #[error(transparent)]
    Store(#[from] kith_store::Error),
    /// A request body that is not well-formed XML, or too large or deep.
    #[error("malformed XML body: {0}")]
    BadXml(String),
    /// A user name that cannot be used.
    #[error("invalid user name `{0}`: use 1 to 64 lower-case letters, digits, `-`, `_` or `.`")]
    BadUser(String),
    /// The account does not exist.
    #[error("no user `{0}`; `kith user list` shows the accounts")]
    NoUser(String),
    /// The account exists already.
    #[error("user `{0}` exists already; change the password with `kith user passwd`")]
    UserExists(String),
    /// An empty password.
    #[error("the password is empty")]
    EmptyPassword,
    /// Hashing a password failed.
    #[error("hashing the password: {0}")]
    Hash(String),
    /// The TLS certificate or key could not be used.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// A socket failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

/// kith-dav's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
