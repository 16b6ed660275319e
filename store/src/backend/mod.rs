//! Where objects and branches live: the two small traits every backend implements.
//!
//! As in Irmin, a backend supplies only a content-addressed [`ObjectStore`] and an atomic
//! [`RefStore`]; [`crate::Store`] builds trees, commits, history and merge on top. The
//! [`memory`] backend keeps everything in RAM; the [`pack`] backend keeps an append-only
//! pack file, an index and ref files in a folder, crash-safe and shared between processes;
//! the [`disk`] backend keeps the same pack records and a ref table on one raw block device.

pub mod disk;
pub mod memory;
pub mod pack;

use crate::error::Result;
use crate::hash::Hash;

/// A content-addressed store of canonical object bytes.
///
/// Writes may be buffered; [`ObjectStore::sync`] makes every earlier write durable. A
/// backend never returns bytes that do not hash to the name asked for: it returns
/// [`crate::Error::Corrupt`] instead.
pub trait ObjectStore: Send + Sync {
    /// The canonical bytes stored under `hash`, verified, or `None` if absent.
    fn read(&self, hash: &Hash) -> Result<Option<Vec<u8>>>;
    /// Whether `hash` is stored (not verified).
    fn contains(&self, hash: &Hash) -> Result<bool>;
    /// Stores `canonical` under `hash`; the caller guarantees `hash == Hash::of(canonical)`.
    /// Writing an object that is already stored does nothing.
    fn write(&self, hash: &Hash, canonical: &[u8]) -> Result<()>;
    /// Makes every write so far durable.
    fn sync(&self) -> Result<()>;
    /// Calls `f` with every stored hash, in no particular order.
    fn for_each_hash(&self, f: &mut dyn FnMut(&Hash) -> Result<()>) -> Result<()>;
    /// Drops every object for which `keep` is false. Callers hold [`ObjectStore::lock`]
    /// exclusively, so no writer is between writing objects and moving a ref.
    fn retain(&self, keep: &dyn Fn(&Hash) -> bool) -> Result<RetainReport>;
    /// Takes the maintenance lock: shared by writers for the span of a transaction,
    /// exclusive for garbage collection. Released when the guard drops.
    fn lock(&self, exclusive: bool) -> Result<LockGuard>;
    /// Gives back memory that only speeds up lookups (an idle service calls it); the
    /// next lookups rebuild what they need.
    fn release_memory(&self) {}
}

/// Named, mutable pointers to commits, changed only by compare-and-set.
pub trait RefStore: Send + Sync {
    /// The commit a ref points at.
    fn get(&self, name: &str) -> Result<Option<Hash>>;
    /// Sets `name` to `new` (or deletes it for `None`) if it currently equals `expected`
    /// (`None`: absent). Returns whether it was set. Atomic, also across processes; durable
    /// when it returns.
    fn compare_and_set(
        &self,
        name: &str,
        expected: Option<Hash>,
        new: Option<Hash>,
    ) -> Result<bool>;
    /// Every ref with its commit, sorted by name.
    fn list(&self) -> Result<Vec<(String, Hash)>>;
    /// Earlier values of a ref, newest first (its reflog), used to recover from damage.
    fn history(&self, name: &str) -> Result<Vec<Hash>>;
    /// Whether anything but this handle's own store may move these refs (another
    /// process on a store folder). When not (a disk, which one process owns), every move
    /// goes through the store, so a watch waits for its moves instead of polling.
    fn shared(&self) -> bool {
        true
    }
}

/// What garbage collection did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetainReport {
    /// Objects kept.
    pub kept: u64,
    /// Objects dropped.
    pub dropped: u64,
    /// Bytes the backend's files took before.
    pub bytes_before: u64,
    /// Bytes they take after.
    pub bytes_after: u64,
}

/// Holds a maintenance lock until dropped.
pub struct LockGuard(#[allow(dead_code)] Box<dyn Send>);

impl LockGuard {
    /// Wraps whatever releases the lock when dropped.
    pub fn new(inner: impl Send + 'static) -> LockGuard {
        LockGuard(Box::new(inner))
    }
}

/// Checks a ref name: `/`-separated parts of letters, digits, `-`, `_` and `.`, none
/// empty or starting with `.`.
pub fn validate_ref_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}
