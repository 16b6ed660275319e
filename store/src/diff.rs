//! Differences between two trees, file by file, skipping every subtree whose hash is equal.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::hash::Hash;
use crate::object::{Entry, EntryKind, Node};
use crate::store::Store;

/// One file that differs between two trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The file's path from the root, without a leading `/`.
    pub path: String,
    /// Its blob before, if it existed.
    pub old: Option<Hash>,
    /// Its blob after, if it exists.
    pub new: Option<Hash>,
}

impl Store {
    /// Every file that differs between the trees `old` and `new`, sorted by path (on a
    /// partial replica, every file it holds).
    pub fn diff(&self, old: &Hash, new: &Hash) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        self.diff_dirs(Some(old), Some(new), &mut String::new(), &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn diff_dirs(
        &self,
        old: Option<&Hash>,
        new: Option<&Hash>,
        prefix: &mut String,
        out: &mut Vec<Change>,
    ) -> Result<()> {
        if old == new {
            return Ok(());
        }
        let mut pairs: BTreeMap<String, (Option<Entry>, Option<Entry>)> = BTreeMap::new();
        self.changed_entries(old, new, &mut |o, n| {
            let name = o
                .as_ref()
                .or(n.as_ref())
                .map(|e| e.name.clone())
                .unwrap_or_default();
            pairs.insert(name, (o, n));
        })?;
        for (name, (o, n)) in pairs {
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(&name);
            let (old_file, old_dir) = split(&o);
            let (new_file, new_dir) = split(&n);
            if old_file != new_file {
                out.push(Change {
                    path: prefix.clone(),
                    old: old_file,
                    new: new_file,
                });
            }
            let reached = self.scope.reaches(&format!("/{prefix}"));
            if reached && (old_dir.is_some() || new_dir.is_some()) {
                self.diff_dirs(old_dir.as_ref(), new_dir.as_ref(), prefix, out)?;
            }
            prefix.truncate(len);
        }
        Ok(())
    }

    /// Calls `f` with the entries that differ between two directories, descending the two
    /// tries in step where their shapes allow, so equal buckets are never read.
    pub(crate) fn changed_entries(
        &self,
        old: Option<&Hash>,
        new: Option<&Hash>,
        f: &mut dyn FnMut(Option<Entry>, Option<Entry>),
    ) -> Result<()> {
        if old == new {
            return Ok(());
        }
        let old_node = old.map(|h| self.objects.node(h)).transpose()?;
        let new_node = new.map(|h| self.objects.node(h)).transpose()?;
        if let (
            Some(Node::Inode {
                depth: d1,
                children: c1,
                ..
            }),
            Some(Node::Inode {
                depth: d2,
                children: c2,
                ..
            }),
        ) = (old_node.as_deref(), new_node.as_deref())
            && d1 == d2
        {
            let mut buckets: BTreeMap<u8, (Option<Hash>, Option<Hash>)> = BTreeMap::new();
            c1.iter()
                .for_each(|(b, h)| buckets.entry(*b).or_default().0 = Some(*h));
            c2.iter()
                .for_each(|(b, h)| buckets.entry(*b).or_default().1 = Some(*h));
            for (o, n) in buckets.values() {
                self.changed_entries(o.as_ref(), n.as_ref(), f)?;
            }
            return Ok(());
        }
        let collect = |h: Option<&Hash>| -> Result<BTreeMap<String, Entry>> {
            let mut m = BTreeMap::new();
            if let Some(h) = h {
                self.objects.for_each_entry(h, &mut |e| {
                    m.insert(e.name.clone(), e);
                    Ok(())
                })?;
            }
            Ok(m)
        };
        let mut o = collect(old)?;
        for (name, n) in collect(new)? {
            match o.remove(&name) {
                Some(prev) if prev == n => {}
                prev => f(prev, Some(n)),
            }
        }
        o.into_values().for_each(|prev| f(Some(prev), None));
        Ok(())
    }
}

fn split(entry: &Option<Entry>) -> (Option<Hash>, Option<Hash>) {
    match entry {
        Some(Entry {
            kind: EntryKind::File,
            hash,
            ..
        }) => (Some(*hash), None),
        Some(Entry {
            kind: EntryKind::Dir,
            hash,
            ..
        }) => (None, Some(*hash)),
        None => (None, None),
    }
}
