//! History: walking commits newest first, and merge bases.

use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::error::Result;
use crate::hash::Hash;
use crate::object::Commit;
use crate::store::Store;

/// Commits reachable from a start, newest first (by time, then hash), each once.
pub struct Log {
    store: Store,
    queue: BinaryHeap<(i64, Hash)>,
    /// Commits queued and already read (for their time), so each is read once.
    pending: HashMap<Hash, Commit>,
    seen: HashSet<Hash>,
    failed: bool,
}

impl Iterator for Log {
    type Item = Result<(Hash, Commit)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let (_, hash) = self.queue.pop()?;
        let commit = match self.pending.remove(&hash) {
            Some(commit) => Ok(commit),
            None => self.store.commit(&hash),
        };
        match commit {
            Ok(commit) => {
                for parent in &commit.parents {
                    if self.seen.insert(*parent) {
                        match self.store.commit(parent) {
                            Ok(p) => {
                                self.queue.push((p.time, *parent));
                                self.pending.insert(*parent, p);
                            }
                            Err(e) => {
                                self.failed = true;
                                return Some(Err(e));
                            }
                        }
                    }
                }
                Some(Ok((hash, commit)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl Store {
    /// The history reachable from `start`, newest first.
    pub fn log(&self, start: Hash) -> Log {
        let mut pending = HashMap::new();
        let time = match self.commit(&start) {
            Ok(c) => {
                let time = c.time;
                pending.insert(start, c);
                time
            }
            Err(_) => i64::MAX,
        };
        Log {
            store: self.clone(),
            queue: BinaryHeap::from([(time, start)]),
            pending,
            seen: HashSet::from([start]),
            failed: false,
        }
    }

    /// The commits in the history of `start` that changed `path` (compared with their
    /// first parent), newest first.
    pub fn log_path(
        &self,
        start: Hash,
        path: &str,
    ) -> impl Iterator<Item = Result<(Hash, Commit)>> + '_ {
        let path = path.to_string();
        self.log(start).filter_map(move |item| {
            let keep = item
                .as_ref()
                .map_or(Ok(true), |(_, commit)| self.changes_path(commit, &path));
            match keep {
                Ok(true) => Some(item),
                Ok(false) => None,
                Err(e) => Some(Err(e)),
            }
        })
    }

    fn changes_path(&self, commit: &Commit, path: &str) -> Result<bool> {
        let now = self.find(&commit.tree, path)?;
        let before = match commit.parents.first() {
            Some(p) => self.find(&self.commit(p)?.tree, path)?,
            None => None,
        };
        Ok(now != before)
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: Hash, descendant: Hash) -> Result<bool> {
        Ok(self.ancestors(descendant)?.contains(&ancestor))
    }

    /// The merge bases of `a` and `b`: their common ancestors that are not ancestors of
    /// another common ancestor (several after criss-cross merges), sorted by hash.
    pub fn merge_bases(&self, a: Hash, b: Hash) -> Result<Vec<Hash>> {
        let of_a = self.ancestors(a)?;
        let of_b = self.ancestors(b)?;
        let common: HashSet<Hash> = of_a.intersection(&of_b).copied().collect();
        let mut parents = Vec::new();
        for c in &common {
            parents.extend(self.commit(c)?.parents);
        }
        let redundant = self.ancestors_of(parents)?;
        let mut bases: Vec<Hash> = common.difference(&redundant).copied().collect();
        bases.sort();
        Ok(bases)
    }

    /// `start` and every commit reachable from it.
    pub fn ancestors(&self, start: Hash) -> Result<HashSet<Hash>> {
        self.ancestors_of([start])
    }

    /// The `starts` and every commit reachable from any of them, in one walk.
    pub(crate) fn ancestors_of(
        &self,
        starts: impl IntoIterator<Item = Hash>,
    ) -> Result<HashSet<Hash>> {
        let mut seen: HashSet<Hash> = starts.into_iter().collect();
        let mut stack: Vec<Hash> = seen.iter().copied().collect();
        while let Some(h) = stack.pop() {
            for p in self.commit(&h)?.parents {
                if seen.insert(p) {
                    stack.push(p);
                }
            }
        }
        Ok(seen)
    }
}
