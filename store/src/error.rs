//! The store's one error type.

use std::path::PathBuf;

use crate::hash::Hash;

/// Everything that can go wrong in the store, with the data to say what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on a store file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Stored bytes do not hash to the name they are stored under: the object is damaged.
    #[error("object {hash} is damaged ({detail}); run `kith fsck` to see all damage")]
    Corrupt {
        /// The object that was asked for.
        hash: Hash,
        /// Where and how it failed.
        detail: String,
    },
    /// Bytes that are not a valid encoding of any object.
    #[error("not a valid object encoding: {0}")]
    Decode(String),
    /// An object the graph refers to is not in this store.
    #[error("object {0} is missing from the store")]
    Missing(Hash),
    /// A store file that is not in any format this version writes.
    #[error("{path} is not a Kith store file ({detail})")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// No store where one was expected.
    #[error("no Kith store at {0}; create one with `kith init`")]
    NoStore(PathBuf),
    /// A partial replica was asked to change a path it does not hold.
    #[error("this replica holds only {scope}; {path} is outside it: change it on a full replica")]
    OutOfScope {
        /// The path.
        path: String,
        /// The prefixes held.
        scope: String,
    },
    /// A store already exists where one was to be created.
    #[error("a Kith store already exists at {0}")]
    StoreExists(PathBuf),
    /// A hash written by a person did not parse.
    #[error("`{0}` is not a commit hash (64 hex digits) or a branch name")]
    BadHash(String),
    /// A path that cannot name anything in the store.
    #[error("invalid path `{path}`: {reason}")]
    BadPath {
        /// The path as given.
        path: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A branch name that cannot be used.
    #[error("invalid branch name `{0}`: use letters, digits, `-`, `_`, `.` and `/`")]
    BadBranch(String),
    /// The named branch does not exist.
    #[error("no branch `{0}`; `kith branch` lists them")]
    NoBranch(String),
    /// A path exists where it was used as something else (a file as a folder, or the reverse).
    #[error("`{path}` is a {found}, not a {wanted}")]
    WrongKind {
        /// The path.
        path: String,
        /// What it is.
        found: &'static str,
        /// What the operation needed.
        wanted: &'static str,
    },
    /// A compare-and-set on a branch lost a race: someone else moved it first.
    #[error(
        "branch `{branch}` moved while committing (expected {expected:?}, found {found:?}); retry"
    )]
    BranchMoved {
        /// The branch.
        branch: String,
        /// The head the writer started from.
        expected: Option<Hash>,
        /// The head found.
        found: Option<Hash>,
    },
}

impl Error {
    /// An I/O error with the operation and file it came from.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
