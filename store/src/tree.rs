//! Directory operations over the hash trie of [`Node`]s: lookup, listing, canonical
//! building from a full entry list, and batched changes that rewrite only touched nodes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::object::node::{FANOUT, MAX_DEPTH, MAX_LEAF, bucket, name_key};
use crate::object::{Entry, EntryKind, Node};
use crate::store::Objects;

/// What a directory entry is set to: `Some((kind, hash))`, or `None` to remove it.
pub type EntryValue = Option<(EntryKind, Hash)>;

/// A path split into validated names.
pub type PathNames = Vec<String>;

impl Objects {
    /// Reads a directory node.
    pub(crate) fn node(&self, hash: &Hash) -> Result<Arc<Node>> {
        if let Some(node) = self.1.get(hash) {
            return Ok(node);
        }
        match self.object(hash)? {
            crate::Object::Node(node) => {
                let node = Arc::new(node);
                self.1.insert(*hash, Arc::clone(&node));
                Ok(node)
            }
            other => Err(Error::Corrupt {
                hash: *hash,
                detail: format!("expected a directory node, found a {:?}", other.kind()),
            }),
        }
    }

    /// The entry called `name` in the directory rooted at `dir`.
    pub(crate) fn lookup(&self, dir: &Hash, name: &str) -> Result<Option<Entry>> {
        let key = name_key(name);
        let mut hash = *dir;
        loop {
            match &*self.node(&hash)? {
                Node::Leaf(entries) => {
                    return Ok(entries
                        .binary_search_by(|e| e.name.as_str().cmp(name))
                        .ok()
                        .map(|i| entries[i].clone()));
                }
                Node::Inode {
                    depth, children, ..
                } => {
                    let b = bucket(&key, *depth);
                    match children.binary_search_by_key(&b, |c| c.0) {
                        Ok(i) => hash = children[i].1,
                        Err(_) => return Ok(None),
                    }
                }
            }
        }
    }

    /// Calls `f` with every entry of a directory, in trie order (not sorted by name).
    pub(crate) fn for_each_entry(
        &self,
        dir: &Hash,
        f: &mut dyn FnMut(Entry) -> Result<()>,
    ) -> Result<()> {
        match &*self.node(dir)? {
            Node::Leaf(entries) => entries.iter().cloned().try_for_each(f),
            Node::Inode { children, .. } => children
                .iter()
                .try_for_each(|(_, child)| self.for_each_entry(child, f)),
        }
    }

    /// Every entry of a directory, sorted by name.
    pub(crate) fn entries(&self, dir: &Hash) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.for_each_entry(dir, &mut |e| {
            out.push(e);
            Ok(())
        })?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Writes the canonical trie for a full set of entries (names unique, any order) and
    /// returns its root.
    pub(crate) fn build_dir(&self, entries: Vec<Entry>) -> Result<Hash> {
        let keyed = entries
            .into_iter()
            .map(|e| (name_key(&e.name), e))
            .collect();
        Ok(self.build_at(keyed, 0)?.0)
    }

    fn build_at(&self, mut entries: Vec<([u8; 32], Entry)>, depth: u8) -> Result<(Hash, u64)> {
        let len = entries.len() as u64;
        if entries.len() <= MAX_LEAF || depth > MAX_DEPTH {
            entries.sort_by(|a, b| a.1.name.cmp(&b.1.name));
            let leaf = Node::Leaf(entries.into_iter().map(|(_, e)| e).collect());
            return Ok((self.write_node(leaf)?, len));
        }
        let mut buckets: Vec<Vec<([u8; 32], Entry)>> = (0..FANOUT).map(|_| Vec::new()).collect();
        for (key, e) in entries {
            buckets[usize::from(bucket(&key, depth))].push((key, e));
        }
        let mut children = Vec::new();
        for (b, group) in buckets.into_iter().enumerate() {
            if !group.is_empty() {
                children.push((b as u8, self.build_at(group, depth + 1)?.0));
            }
        }
        let inode = Node::Inode {
            depth,
            len,
            children,
        };
        Ok((self.write_node(inode)?, len))
    }

    /// Applies entry changes to a directory and returns its new root (`None`: now empty).
    /// Only nodes on the paths of changed names are rewritten.
    pub(crate) fn apply_dir(
        &self,
        dir: Option<&Hash>,
        changes: BTreeMap<String, EntryValue>,
    ) -> Result<Option<Hash>> {
        let keyed = changes
            .into_iter()
            .map(|(name, value)| (name_key(&name), name, value))
            .collect();
        let (root, _, len) = self.apply_at(dir, 0, keyed)?;
        Ok(if len == 0 { None } else { root })
    }

    /// Applies keyed changes to the node `node` at `depth`; returns the new node (if any),
    /// the old entry count and the new one.
    fn apply_at(
        &self,
        node: Option<&Hash>,
        depth: u8,
        changes: Vec<([u8; 32], String, EntryValue)>,
    ) -> Result<(Option<Hash>, u64, u64)> {
        let current = match node {
            Some(h) => self.node(h)?,
            None => Arc::new(Node::empty()),
        };
        let old_len = current.len();
        match &*current {
            Node::Leaf(entries) => {
                let mut map: BTreeMap<String, Entry> = entries
                    .iter()
                    .map(|e| (e.name.clone(), e.clone()))
                    .collect();
                for (_, name, value) in changes {
                    match value {
                        Some((kind, hash)) => {
                            map.insert(name.clone(), Entry { name, kind, hash });
                        }
                        None => {
                            map.remove(&name);
                        }
                    }
                }
                let new_len = map.len() as u64;
                if new_len == 0 {
                    return Ok((None, old_len, 0));
                }
                let keyed = map.into_values().map(|e| (name_key(&e.name), e)).collect();
                Ok((Some(self.build_at(keyed, depth)?.0), old_len, new_len))
            }
            Node::Inode { children, .. } => {
                let mut groups: BTreeMap<u8, Vec<_>> = BTreeMap::new();
                for change in changes {
                    groups
                        .entry(bucket(&change.0, depth))
                        .or_default()
                        .push(change);
                }
                let mut children: BTreeMap<u8, Hash> = children.iter().copied().collect();
                let mut new_len = old_len;
                for (b, group) in groups {
                    let (child, before, after) =
                        self.apply_at(children.get(&b), depth + 1, group)?;
                    new_len = new_len + after - before;
                    match child {
                        Some(h) => children.insert(b, h),
                        None => children.remove(&b),
                    };
                }
                if new_len <= MAX_LEAF as u64 {
                    return self.collapse(children.values(), depth, old_len, new_len);
                }
                let inode = Node::Inode {
                    depth,
                    len: new_len,
                    children: children.into_iter().collect(),
                };
                Ok((Some(self.write_node(inode)?), old_len, new_len))
            }
        }
    }

    /// Rebuilds a node that shrank to a leaf's size from the entries of its children.
    fn collapse<'a>(
        &self,
        children: impl Iterator<Item = &'a Hash>,
        depth: u8,
        old_len: u64,
        new_len: u64,
    ) -> Result<(Option<Hash>, u64, u64)> {
        if new_len == 0 {
            return Ok((None, old_len, 0));
        }
        let mut entries = Vec::new();
        for child in children {
            self.for_each_entry(child, &mut |e| {
                entries.push((name_key(&e.name), e));
                Ok(())
            })?;
        }
        Ok((Some(self.build_at(entries, depth)?.0), old_len, new_len))
    }

    /// Applies changes keyed by path to the tree rooted at `root`; returns the new root.
    /// A change to `a/b` creates the directory `a`; a directory left empty disappears.
    pub(crate) fn apply_paths(
        &self,
        root: Option<&Hash>,
        changes: &BTreeMap<PathNames, EntryValue>,
    ) -> Result<Option<Hash>> {
        let mut direct: BTreeMap<String, EntryValue> = BTreeMap::new();
        let mut nested: BTreeMap<&str, BTreeMap<PathNames, EntryValue>> = BTreeMap::new();
        for (path, value) in changes {
            match path.as_slice() {
                [] => {
                    return Err(Error::BadPath {
                        path: "/".into(),
                        reason: "the root is not a file",
                    });
                }
                [name] => {
                    direct.insert(name.clone(), *value);
                }
                [name, rest @ ..] => {
                    nested
                        .entry(name.as_str())
                        .or_default()
                        .insert(rest.to_vec(), *value);
                }
            }
        }
        for (name, sub) in nested {
            let base = match direct.get(name) {
                Some(value) => *value,
                None => match root {
                    Some(r) => self.lookup(r, name)?.map(|e| (e.kind, e.hash)),
                    None => None,
                },
            };
            let child = match base {
                Some((EntryKind::Dir, h)) => Some(h),
                Some((EntryKind::File, _)) => {
                    return Err(Error::WrongKind {
                        path: name.to_string(),
                        found: "file",
                        wanted: "directory",
                    });
                }
                None => None,
            };
            let new_child = self.apply_paths(child.as_ref(), &sub)?;
            direct.insert(name.to_string(), new_child.map(|h| (EntryKind::Dir, h)));
        }
        self.apply_dir(root, direct)
    }
}
