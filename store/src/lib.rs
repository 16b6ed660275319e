//! kith-store is Kith's versioned store: every contact, event, message and DNS record
//! lives in it, every device holds a replica of it, and sync moves its objects between
//! replicas.
//!
//! The model is Irmin's, with git's durability. Immutable [`Object`]s are named by their
//! blake3 [`Hash`]: blobs hold file bytes exactly as stored, [`Node`]s hold directories
//! (split into a hash trie when large, so one change to a 100,000-entry mailbox rewrites a
//! few small nodes), and [`Commit`]s record a root tree with its parents, author device,
//! time and message. Branches are refs moved only by compare-and-set. A backend supplies
//! just an [`ObjectStore`] and a [`RefStore`]: the [`backend::memory`] one for tests, and a
//! crash-safe pack on disk shared by the services and the CLI of one device.
//!
//! [`Store`] is the API: read by path at a root, change a branch through a
//! [`Transaction`], walk history with [`Store::log`], compare trees with [`Store::diff`],
//! find [`Store::merge_bases`], and [`Store::watch`] branches move. Neighbours:
//! kith-identity keeps the zone under `/identity/`, the apps keep their data under their
//! own prefixes, and the `kith` CLI (sync-cli) drives all of it. This crate does no
//! network I/O.

pub mod backend;
mod cache;
mod diff;
mod error;
mod hash;
mod history;
mod maintenance;
pub mod merge;
mod object;
mod scope;
mod store;
pub mod sync;
mod tree;
pub mod watch;

pub use backend::{ObjectStore, RefStore, RetainReport};
pub use diff::Change;
pub use error::{Error, Result};
pub use hash::Hash;
pub use history::Log;
pub use maintenance::{Damage, FsckReport};
pub use merge::{Conflict, ContentMerge, MergeOutcome, Merged, Mergers, Rule, TreeMerge};
pub use object::{Commit, Entry, EntryKind, Node, Object, ObjectKind, encode_blob, validate_name};
pub use scope::Scope;
pub use store::{MAIN, Store, Transaction, now_millis, split_path};
