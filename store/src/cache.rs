//! A bounded cache of decoded directory nodes.
//!
//! Nodes are immutable and named by their hash, so a cached node is never stale. Lookups
//! in large directories (a CardDAV multiget of 100 cards in a book of 10,000 walks three
//! trie levels per card) then cost a binary search instead of a read, a hash check and
//! a decode per level. Two generations bound the memory: when the young one is full it
//! becomes the old one and the previous old one is dropped; a hit in the old generation
//! moves the node back to the young one, so nodes in use stay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::hash::Hash;
use crate::object::Node;

/// How many entries (summed over cached nodes) one generation holds.
const GENERATION_ENTRIES: usize = 64 * 1024;

/// Decoded nodes by hash, at most about `2 * GENERATION_ENTRIES` entries in all.
#[derive(Default)]
pub(crate) struct NodeCache {
    generations: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<Hash, Arc<Node>>,
    young_entries: usize,
    old: HashMap<Hash, Arc<Node>>,
}

impl NodeCache {
    /// The node called `hash`, if cached.
    pub(crate) fn get(&self, hash: &Hash) -> Option<Arc<Node>> {
        let mut g = self.lock();
        if let Some(node) = g.young.get(hash) {
            return Some(Arc::clone(node));
        }
        let node = g.old.remove(hash)?;
        g.insert(*hash, Arc::clone(&node));
        Some(node)
    }

    /// Keeps `node`, read as `hash`.
    pub(crate) fn insert(&self, hash: Hash, node: Arc<Node>) {
        self.lock().insert(hash, node);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Generations {
    fn insert(&mut self, hash: Hash, node: Arc<Node>) {
        let weight = weight(&node);
        if self.young_entries + weight > GENERATION_ENTRIES {
            self.old = std::mem::take(&mut self.young);
            self.young_entries = 0;
        }
        self.young_entries += weight;
        self.young.insert(hash, node);
    }
}

/// A node's cost in the cache: its entries, or its children for an inner node.
fn weight(node: &Node) -> usize {
    match node {
        Node::Leaf(entries) => entries.len().max(1),
        Node::Inode { children, .. } => children.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Entry, EntryKind};

    fn leaf(n: usize) -> Arc<Node> {
        let entry = |i| Entry {
            name: format!("e{i}"),
            kind: EntryKind::File,
            hash: Hash::of(b"x"),
        };
        Arc::new(Node::Leaf((0..n).map(entry).collect()))
    }

    #[test]
    fn keeps_recently_used_nodes_and_bounds_the_rest() {
        let cache = NodeCache::default();
        let hot = Hash::of(b"hot");
        cache.insert(hot, leaf(32));
        for i in 0u32..20_000 {
            cache.insert(Hash::of(&i.to_le_bytes()), leaf(32));
            assert!(cache.get(&hot).is_some(), "the node in use was dropped");
        }
        let g = cache.lock();
        let held: usize = g
            .young
            .values()
            .chain(g.old.values())
            .map(|n| weight(n))
            .sum();
        assert!(held <= 2 * GENERATION_ENTRIES, "{held} entries held");
        assert!(g.young.len() + g.old.len() < 20_001, "nothing was evicted");
    }
}
