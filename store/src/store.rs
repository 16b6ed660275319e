//! The [`Store`]: paths, commits and branches over any backend.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::backend::memory::{MemoryObjects, MemoryRefs};
use crate::backend::{LockGuard, ObjectStore, RefStore, validate_ref_name};
use crate::cache::NodeCache;
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::object::{Commit, Entry, EntryKind, Node, Object, encode_blob, validate_name};
use crate::scope::Scope;
use crate::tree::{EntryValue, PathNames};
use crate::watch::Watcher;

/// The default branch.
pub const MAIN: &str = "main";

/// Typed access to a backend's objects: decode on read (directory nodes and small blobs
/// through a cache), encode and hash on write.
#[derive(Clone)]
pub(crate) struct Objects(pub(crate) Arc<dyn ObjectStore>, pub(crate) Arc<NodeCache>);

impl Objects {
    /// Reads and decodes an object; a missing one is an error.
    pub(crate) fn object(&self, hash: &Hash) -> Result<Object> {
        Ok(self.object_sized(hash)?.0)
    }

    /// Reads and decodes an object; also returns the length of its canonical bytes.
    pub(crate) fn object_sized(&self, hash: &Hash) -> Result<(Object, u64)> {
        let bytes = self.0.read(hash)?.ok_or(Error::Missing(*hash))?;
        let object = Object::decode(&bytes).map_err(|e| Error::Corrupt {
            hash: *hash,
            detail: e.to_string(),
        })?;
        Ok((object, bytes.len() as u64))
    }

    /// Writes `node` and keeps it in the cache: the next commit walks the same paths.
    pub(crate) fn write_node(&self, node: Node) -> Result<Hash> {
        let object = Object::Node(node);
        let hash = self.write_canonical(&object.encode())?;
        if let Object::Node(node) = object {
            self.1.insert(hash, Arc::new(node));
        }
        Ok(hash)
    }

    /// Writes a blob, keeping it in the cache when it is small.
    pub(crate) fn write_blob(&self, bytes: &[u8]) -> Result<Hash> {
        let hash = self.write_canonical(&encode_blob(bytes))?;
        self.1.insert_blob(hash, bytes);
        Ok(hash)
    }

    pub(crate) fn write_canonical(&self, canonical: &[u8]) -> Result<Hash> {
        let hash = Hash::of(canonical);
        self.0.write(&hash, canonical)?;
        Ok(hash)
    }

    pub(crate) fn commit(&self, hash: &Hash) -> Result<Commit> {
        match self.object(hash)? {
            Object::Commit(c) => Ok(c),
            other => Err(Error::Corrupt {
                hash: *hash,
                detail: format!("expected a commit, found a {:?}", other.kind()),
            }),
        }
    }

    pub(crate) fn blob(&self, hash: &Hash) -> Result<Vec<u8>> {
        if let Some(bytes) = self.1.blob(hash) {
            return Ok(bytes.to_vec());
        }
        let bytes = self.stored_blob(hash)?;
        self.1.insert_blob(*hash, &bytes);
        Ok(bytes)
    }

    /// Reads blob `hash` from the backend, past the cache (as fsck must).
    pub(crate) fn stored_blob(&self, hash: &Hash) -> Result<Vec<u8>> {
        let mut bytes = self.0.read(hash)?.ok_or(Error::Missing(*hash))?;
        if bytes.first() != Some(&(crate::ObjectKind::Blob as u8)) {
            return Err(Error::Corrupt {
                hash: *hash,
                detail: "expected a blob".into(),
            });
        }
        bytes.remove(0);
        Ok(bytes)
    }
}

/// A versioned store: a tree of files per commit, commits in a graph, named branches.
///
/// Cheap to clone; clones share the backend. Reads take a root [`Hash`] (from
/// [`Store::head_tree`] or a commit) so a reader sees one consistent version however
/// branches move meanwhile.
#[derive(Clone)]
pub struct Store {
    pub(crate) objects: Objects,
    pub(crate) refs: Arc<dyn RefStore>,
    pub(crate) watcher: Arc<Watcher>,
    pub(crate) scope: Arc<Scope>,
}

impl Store {
    /// A store over the given backend halves.
    pub fn new(objects: Arc<dyn ObjectStore>, refs: Arc<dyn RefStore>) -> Store {
        let watcher = Arc::new(Watcher::new(Arc::clone(&refs)));
        Store {
            objects: Objects(objects, Arc::default()),
            refs,
            watcher,
            scope: Arc::new(Scope::full()),
        }
    }

    /// The same store, holding only what `scope` reaches (for stores in memory; a store
    /// on disk records its scope when created, see [`Store::create_partial`]).
    pub fn with_scope(mut self, scope: Scope) -> Store {
        self.scope = Arc::new(scope);
        self
    }

    /// What part of the tree this replica holds.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// An empty store in memory.
    pub fn memory() -> Store {
        Store::new(Arc::new(MemoryObjects::new()), Arc::new(MemoryRefs::new()))
    }

    /// Creates a store in a new folder (or an empty one).
    pub fn create(dir: &Path) -> Result<Store> {
        let (objects, refs) = crate::backend::pack::create(dir)?;
        Ok(Store::new(objects, refs))
    }

    /// Creates a partial replica in a new folder: it will hold only what `scope` reaches.
    pub fn create_partial(dir: &Path, scope: Scope) -> Result<Store> {
        let store = Store::create(dir)?;
        scope.save(dir)?;
        Ok(store.with_scope(scope))
    }

    /// Opens the store in `dir`, trimming a torn tail and moving any branch whose head was
    /// lost back to its newest intact commit.
    pub fn open(dir: &Path) -> Result<Store> {
        let (objects, refs) = crate::backend::pack::open(dir)?;
        let store = Store::new(objects, refs).with_scope(Scope::load(dir)?);
        store.recover_refs()?;
        Ok(store)
    }

    /// Opens the store on the block device or disk image at `path` (see
    /// [`crate::backend::disk`]), moving any branch whose head was lost back.
    pub fn open_disk(path: &Path) -> Result<Store> {
        Store::on_disk(crate::backend::disk::Disk::open_path(path)?)
    }

    /// Writes an empty store onto the block device or disk image at `path`.
    pub fn create_disk(path: &Path) -> Result<Store> {
        Store::on_disk(crate::backend::disk::Disk::format_path(path)?)
    }

    /// A store over a [`crate::backend::disk::Disk`].
    pub fn on_disk<D: crate::backend::disk::Device>(
        disk: crate::backend::disk::Disk<D>,
    ) -> Result<Store> {
        let disk = Arc::new(disk);
        let store = Store::new(disk.clone(), disk);
        store.recover_refs()?;
        Ok(store)
    }

    /// The object store underneath.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.objects.0
    }

    /// The ref store underneath.
    pub fn ref_store(&self) -> &Arc<dyn RefStore> {
        &self.refs
    }

    // ---- branches

    /// The commit a branch points at, or `None` before its first commit.
    pub fn head(&self, branch: &str) -> Result<Option<Hash>> {
        check_branch(branch)?;
        self.refs.get(branch)
    }

    /// The root tree of a branch (the empty tree before its first commit).
    pub fn head_tree(&self, branch: &str) -> Result<Hash> {
        match self.head(branch)? {
            Some(c) => Ok(self.commit(&c)?.tree),
            None => self.empty_tree(),
        }
    }

    /// Every branch and its head, sorted by name.
    pub fn branches(&self) -> Result<Vec<(String, Hash)>> {
        self.refs.list()
    }

    /// Creates branch `name` at `commit`; fails if it exists.
    pub fn create_branch(&self, name: &str, commit: Hash) -> Result<()> {
        check_branch(name)?;
        self.commit(&commit)?;
        self.set_branch(name, None, Some(commit))
    }

    /// Deletes a branch (its commits stay until `gc`).
    pub fn delete_branch(&self, name: &str) -> Result<()> {
        let head = self
            .head(name)?
            .ok_or_else(|| Error::NoBranch(name.to_string()))?;
        self.set_branch(name, Some(head), None)
    }

    /// Moves a branch from `expected` to `new` by compare-and-set.
    pub fn set_branch(&self, name: &str, expected: Option<Hash>, new: Option<Hash>) -> Result<()> {
        check_branch(name)?;
        if self.refs.compare_and_set(name, expected, new)? {
            self.watcher.kick();
            Ok(())
        } else {
            Err(Error::BranchMoved {
                branch: name.to_string(),
                expected,
                found: self.refs.get(name)?,
            })
        }
    }

    /// Resolves a revision: a branch name, or a full or unique abbreviated commit hash
    /// reachable from a branch.
    pub fn resolve(&self, rev: &str) -> Result<Hash> {
        if validate_ref_name(rev)
            && let Some(h) = self.refs.get(rev)?
        {
            return Ok(h);
        }
        if let Ok(h) = rev.parse::<Hash>() {
            return Ok(h);
        }
        if rev.len() >= 4 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            let rev = rev.to_ascii_lowercase();
            for (_, head) in self.branches()? {
                for item in self.log(head) {
                    let (h, _) = item?;
                    if h.to_hex().starts_with(&rev) {
                        return Ok(h);
                    }
                }
            }
        }
        Err(Error::BadHash(rev.to_string()))
    }

    // ---- reading

    /// Reads a commit.
    pub fn commit(&self, hash: &Hash) -> Result<Commit> {
        self.objects.commit(hash)
    }

    /// The hash of the empty directory (writing it if needed).
    pub fn empty_tree(&self) -> Result<Hash> {
        self.objects.write_node(Node::empty())
    }

    /// What is at `path` in the tree `root`: its kind and hash.
    pub fn find(&self, root: &Hash, path: &str) -> Result<Option<(EntryKind, Hash)>> {
        let names = split_path(path)?;
        let mut current = (EntryKind::Dir, *root);
        for (i, name) in names.iter().enumerate() {
            if current.0 != EntryKind::Dir {
                let parent = names[..i].join("/");
                return Err(Error::WrongKind {
                    path: parent,
                    found: "file",
                    wanted: "directory",
                });
            }
            match self.objects.lookup(&current.1, name)? {
                Some(e) => current = (e.kind, e.hash),
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// The bytes of the file at `path`, exactly as stored.
    pub fn get(&self, root: &Hash, path: &str) -> Result<Option<Vec<u8>>> {
        match self.find(root, path)? {
            Some((EntryKind::File, h)) => Ok(Some(self.objects.blob(&h)?)),
            Some((EntryKind::Dir, _)) => Err(Error::WrongKind {
                path: path.into(),
                found: "directory",
                wanted: "file",
            }),
            None => Ok(None),
        }
    }

    /// The bytes of a blob.
    pub fn blob(&self, hash: &Hash) -> Result<Vec<u8>> {
        self.objects.blob(hash)
    }

    /// The entries of the directory at `path`, sorted by name.
    pub fn list(&self, root: &Hash, path: &str) -> Result<Vec<Entry>> {
        match self.find(root, path)? {
            Some((EntryKind::Dir, h)) => self.objects.entries(&h),
            Some((EntryKind::File, _)) => Err(Error::WrongKind {
                path: path.into(),
                found: "file",
                wanted: "directory",
            }),
            None => Ok(Vec::new()),
        }
    }

    /// Calls `f(path, blob)` for every file under directory `dir`, paths relative to it,
    /// in sorted order.
    pub fn walk_files(
        &self,
        dir: &Hash,
        f: &mut dyn FnMut(&str, &Hash) -> Result<()>,
    ) -> Result<()> {
        self.walk_inner(dir, &mut String::new(), None, f)
    }

    /// Calls `f` with every file under the directory at `path` (relative to it), skipping
    /// what a partial replica does not hold.
    pub fn walk_files_at(
        &self,
        root: &Hash,
        path: &str,
        f: &mut dyn FnMut(&str, &Hash) -> Result<()>,
    ) -> Result<()> {
        let base = format!("/{}", split_path(path)?.join("/"));
        match self.find(root, path)? {
            Some((EntryKind::Dir, dir)) => {
                self.walk_inner(&dir, &mut String::new(), Some(&base), f)
            }
            _ => Ok(()),
        }
    }

    /// Walks `dir`; with `base` (its path), skips directories the scope does not reach.
    fn walk_inner(
        &self,
        dir: &Hash,
        prefix: &mut String,
        base: Option<&str>,
        f: &mut dyn FnMut(&str, &Hash) -> Result<()>,
    ) -> Result<()> {
        for entry in self.objects.entries(dir)? {
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(&entry.name);
            let held = |b: &str| {
                self.scope
                    .reaches(&format!("{}/{prefix}", b.trim_end_matches('/')))
            };
            match entry.kind {
                EntryKind::File => f(prefix, &entry.hash)?,
                EntryKind::Dir if base.is_some_and(|b| !held(b)) => {}
                EntryKind::Dir => self.walk_inner(&entry.hash, prefix, base, f)?,
            }
            prefix.truncate(len);
        }
        Ok(())
    }

    /// Writes a directory built from a full list of entries; returns its root node.
    pub fn write_dir(&self, entries: Vec<Entry>) -> Result<Hash> {
        self.objects.build_dir(entries)
    }

    /// Writes file contents; returns the blob's hash.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Hash> {
        self.objects.write_blob(bytes)
    }

    // ---- writing

    /// Starts a change to `branch`, based on its current head.
    pub fn transaction(&self, branch: &str) -> Result<Transaction> {
        check_branch(branch)?;
        let hold = self.objects.0.lock(false)?;
        let base = self.refs.get(branch)?;
        let base_tree = match base {
            Some(c) => self.commit(&c)?.tree,
            None => self.empty_tree()?,
        };
        Ok(Transaction {
            store: self.clone(),
            branch: branch.to_string(),
            base,
            base_tree,
            checkpoint: None,
            changes: BTreeMap::new(),
            _hold: hold,
        })
    }

    /// Writes a commit object (without moving any branch) and makes it durable.
    pub fn write_commit(&self, commit: &Commit) -> Result<Hash> {
        let hash = self
            .objects
            .write_canonical(&Object::Commit(commit.clone()).encode())?;
        self.objects.0.sync()?;
        Ok(hash)
    }

    /// A channel that receives every move of every branch, by this process or another.
    pub fn watch(&self) -> std::sync::mpsc::Receiver<crate::watch::RefEvent> {
        self.watcher.subscribe()
    }
}

/// A set of changes to one branch, committed at once with [`Transaction::commit`].
///
/// Holds the store's maintenance lock shared, so `gc` cannot drop the objects it writes
/// before the branch points at them.
pub struct Transaction {
    store: Store,
    branch: String,
    base: Option<Hash>,
    base_tree: Hash,
    /// The last checkpoint, if any: the parent of the next commit.
    checkpoint: Option<Hash>,
    changes: BTreeMap<PathNames, EntryValue>,
    _hold: LockGuard,
}

impl Transaction {
    /// The commit this change is based on.
    pub fn base(&self) -> Option<Hash> {
        self.base
    }

    /// The store this change is for.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The root tree this change is based on.
    pub fn base_tree(&self) -> Hash {
        self.base_tree
    }

    /// Sets the file at `path` to `bytes`.
    pub fn put(&mut self, path: &str, bytes: &[u8]) -> Result<Hash> {
        let names = self.in_scope(path)?;
        if names.is_empty() {
            return Err(Error::BadPath {
                path: path.into(),
                reason: "the root is not a file",
            });
        }
        let hash = self.store.objects.write_blob(bytes)?;
        self.changes.insert(names, Some((EntryKind::File, hash)));
        Ok(hash)
    }

    /// Removes whatever is at `path` (a file, or a directory with everything under it).
    pub fn remove(&mut self, path: &str) -> Result<()> {
        let names = self.in_scope(path)?;
        if names.is_empty() {
            return Err(Error::BadPath {
                path: path.into(),
                reason: "the root cannot be removed",
            });
        }
        self.changes.insert(names, None);
        Ok(())
    }

    /// Points `path` at an already written entry (a directory root from
    /// [`Store::write_dir`], or a blob), or removes it with `None`.
    pub fn set(&mut self, path: &str, value: Option<(EntryKind, Hash)>) -> Result<()> {
        let names = self.in_scope(path)?;
        if names.is_empty() {
            return Err(Error::BadPath {
                path: path.into(),
                reason: "set the root with `set_root`",
            });
        }
        self.changes.insert(names, value);
        Ok(())
    }

    /// The path's names, if the replica holds it.
    fn in_scope(&self, path: &str) -> Result<PathNames> {
        let names = split_path(path)?;
        let normal = format!("/{}", names.join("/"));
        if !names.is_empty() && !self.store.scope.holds(&normal) {
            return Err(Error::OutOfScope {
                path: normal,
                scope: self.store.scope.to_string(),
            });
        }
        Ok(names)
    }

    /// Whether nothing has been changed yet.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// What is at `path` with the changes so far applied, as [`Store::find`] on
    /// [`Transaction::tree`] says; a tree is written only when a change lies above or
    /// under `path`.
    pub fn find(&self, path: &str) -> Result<Option<(EntryKind, Hash)>> {
        let names = split_path(path)?;
        if self.changed_above(&names) || self.changed_below(&names, 1) {
            return self.store.find(&self.tree()?, path);
        }
        match self.changes.get(&names) {
            Some(value) => Ok(*value),
            None => self.store.find(&self.base_tree, path),
        }
    }

    /// The bytes of the file at `path` with the changes so far applied (see
    /// [`Transaction::find`]).
    pub fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.find(path)? {
            Some((EntryKind::File, h)) => Ok(Some(self.store.blob(&h)?)),
            Some((EntryKind::Dir, _)) => Err(Error::WrongKind {
                path: path.into(),
                found: "directory",
                wanted: "file",
            }),
            None => Ok(None),
        }
    }

    /// The entries of the directory at `path` with the changes so far applied, sorted by
    /// name, as [`Store::list`] on [`Transaction::tree`] gives them; a tree is written
    /// only when the directory or one of its subdirectories changed, not for changes to
    /// its files.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>> {
        let names = split_path(path)?;
        if self.changed_above(&names)
            || self.changes.contains_key(&names)
            || self.changed_below(&names, 2)
        {
            return self.store.list(&self.tree()?, path);
        }
        let mut entries: BTreeMap<String, Entry> = (self.store.list(&self.base_tree, path)?)
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect();
        for (changed, value) in self.changes_below(&names) {
            let name = changed[names.len()].clone();
            match *value {
                Some((kind, hash)) => entries.insert(name.clone(), Entry { name, kind, hash }),
                None => entries.remove(&name),
            };
        }
        Ok(entries.into_values().collect())
    }

    /// Whether a change was made at a folder above `names`.
    fn changed_above(&self, names: &[String]) -> bool {
        (1..names.len()).any(|depth| self.changes.contains_key(&names[..depth]))
    }

    /// Whether a change was made `depth` or more levels below `names`.
    fn changed_below(&self, names: &[String], depth: usize) -> bool {
        self.changes_below(names)
            .any(|(changed, _)| changed.len() >= names.len() + depth)
    }

    /// The changes strictly below `names` (they sort right after it).
    fn changes_below<'a>(
        &'a self,
        names: &'a [String],
    ) -> impl Iterator<Item = (&'a PathNames, &'a EntryValue)> + 'a {
        let after = (Bound::Excluded(names), Bound::Unbounded);
        self.changes
            .range::<[String], _>(after)
            .take_while(move |(changed, _)| changed.starts_with(names))
    }

    /// The root tree with the changes applied (written, not committed).
    pub fn tree(&self) -> Result<Hash> {
        match self
            .store
            .objects
            .apply_paths(Some(&self.base_tree), &self.changes)?
        {
            Some(root) => Ok(root),
            None => self.store.empty_tree(),
        }
    }

    /// Commits the changes and moves the branch, if it is still at the base; returns the new
    /// commit, or `None` when the changes leave the tree as it was (and no checkpoint was
    /// made).
    pub fn commit(mut self, author: &str, message: &str) -> Result<Option<Hash>> {
        let tree = self.tree()?;
        let head = if tree == self.base_tree && (self.base.is_some() || self.checkpoint.is_some()) {
            self.checkpoint
        } else {
            Some(self.checkpoint(author, message)?)
        };
        let Some(head) = head else { return Ok(None) };
        self.store.objects.0.sync()?;
        self.store.set_branch(&self.branch, self.base, Some(head))?;
        Ok(Some(head))
    }

    /// Records the changes so far as a commit of their own and goes on from it; the branch
    /// moves past it only when the transaction commits, with one durable point for all.
    /// For bulk imports of history, where a commit each is wanted but not an fsync each.
    pub fn checkpoint(&mut self, author: &str, message: &str) -> Result<Hash> {
        let tree = self.tree()?;
        let commit = Commit {
            tree,
            parents: self.checkpoint.or(self.base).into_iter().collect(),
            author: author.into(),
            time: now_millis(),
            message: message.into(),
        };
        let hash = self
            .store
            .objects
            .write_canonical(&Object::Commit(commit).encode())?;
        self.checkpoint = Some(hash);
        self.base_tree = tree;
        self.changes.clear();
        Ok(hash)
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Splits a store path (`/a/b`, `a/b` and `a/b/` are the same) into checked names.
pub fn split_path(path: &str) -> Result<PathNames> {
    path.split('/')
        .filter(|p| !p.is_empty())
        .map(|name| {
            validate_name(name)
                .map(|_| name.to_string())
                .map_err(|reason| Error::BadPath {
                    path: path.into(),
                    reason,
                })
        })
        .collect()
}

fn check_branch(name: &str) -> Result<()> {
    if validate_ref_name(name) {
        Ok(())
    } else {
        Err(Error::BadBranch(name.to_string()))
    }
}
