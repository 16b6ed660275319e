//! Bounded caches of decoded objects: directory nodes and small blobs.
//!
//! Objects are immutable and named by their hash, so a cached one is never stale.
//! Lookups in large directories (a CardDAV multiget of 100 cards in a book of 10,000
//! walks three trie levels per card) then cost a binary search instead of a read, a
//! hash check and a decode per level, and the small files clients read again and again
//! (vCards, events, mail headers' messages) skip the read, the check and the inflate.
//! Two generations bound the memory: when the young one is full it becomes the old one
//! and the previous old one is dropped; a hit in the old generation moves the object
//! back to the young one, so objects in use stay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::hash::Hash;
use crate::object::Node;

/// How many entries (summed over cached nodes) one generation of nodes holds.
const NODE_ENTRIES: usize = 32 * 1024;
/// How many bytes one generation of blobs holds.
const BLOB_BYTES: usize = 2 << 20;
/// The largest blob cached, in bytes.
pub(crate) const MAX_CACHED_BLOB: usize = 64 << 10;

/// Decoded nodes (at most about `2 * NODE_ENTRIES` entries) and blobs of at most
/// [`MAX_CACHED_BLOB`] bytes (at most `2 * BLOB_BYTES` in all), by hash.
pub(crate) struct NodeCache {
    nodes: Generational<Arc<Node>>,
    blobs: Generational<Arc<[u8]>>,
}

impl Default for NodeCache {
    fn default() -> NodeCache {
        NodeCache {
            nodes: Generational::new(NODE_ENTRIES, weight),
            blobs: Generational::new(BLOB_BYTES, |b: &Arc<[u8]>| b.len().max(1)),
        }
    }
}

impl NodeCache {
    /// The node called `hash`, if cached.
    pub(crate) fn get(&self, hash: &Hash) -> Option<Arc<Node>> {
        self.nodes.get(hash)
    }

    /// Keeps `node`, read as `hash`.
    pub(crate) fn insert(&self, hash: Hash, node: Arc<Node>) {
        self.nodes.insert(hash, node);
    }

    /// The contents of blob `hash`, if cached.
    pub(crate) fn blob(&self, hash: &Hash) -> Option<Arc<[u8]>> {
        self.blobs.get(hash)
    }

    /// Keeps the contents of blob `hash` when it is small enough.
    pub(crate) fn insert_blob(&self, hash: Hash, bytes: &[u8]) {
        if bytes.len() <= MAX_CACHED_BLOB {
            self.blobs.insert(hash, Arc::from(bytes));
        }
    }
}

/// One cache of two generations, each holding up to `limit` by `weight`.
struct Generational<V> {
    generations: Mutex<Generations<V>>,
    limit: usize,
    weight: fn(&V) -> usize,
}

struct Generations<V> {
    young: HashMap<Hash, V>,
    young_weight: usize,
    old: HashMap<Hash, V>,
}

impl<V: Clone> Generational<V> {
    fn new(limit: usize, weight: fn(&V) -> usize) -> Generational<V> {
        Generational {
            generations: Mutex::new(Generations {
                young: HashMap::new(),
                young_weight: 0,
                old: HashMap::new(),
            }),
            limit,
            weight,
        }
    }

    fn get(&self, hash: &Hash) -> Option<V> {
        let mut g = self.lock();
        if let Some(value) = g.young.get(hash) {
            return Some(value.clone());
        }
        let value = g.old.remove(hash)?;
        self.keep(&mut g, *hash, value.clone());
        Some(value)
    }

    fn insert(&self, hash: Hash, value: V) {
        let mut g = self.lock();
        self.keep(&mut g, hash, value);
    }

    fn keep(&self, g: &mut Generations<V>, hash: Hash, value: V) {
        let weight = (self.weight)(&value);
        if g.young_weight + weight > self.limit {
            g.old = std::mem::take(&mut g.young);
            g.young_weight = 0;
        }
        g.young_weight += weight;
        g.young.insert(hash, value);
    }

    fn lock(&self) -> MutexGuard<'_, Generations<V>> {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A node's cost in the cache: its entries, or its children for an inner node.
fn weight(node: &Arc<Node>) -> usize {
    match &**node {
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
        let g = cache.nodes.lock();
        let held: usize = g.young.values().chain(g.old.values()).map(weight).sum();
        assert!(held <= 2 * NODE_ENTRIES, "{held} entries held");
        assert!(g.young.len() + g.old.len() < 20_001, "nothing was evicted");
    }

    #[test]
    fn keeps_small_blobs_within_their_bound() {
        let cache = NodeCache::default();
        let big = vec![1; MAX_CACHED_BLOB + 1];
        cache.insert_blob(Hash::of(&big), &big);
        assert!(
            cache.blob(&Hash::of(&big)).is_none(),
            "a large blob was kept"
        );
        for i in 0u32..4_000 {
            let bytes = [i.to_le_bytes().as_slice(), &[0; 4092]].concat();
            cache.insert_blob(Hash::of(&bytes), &bytes);
            assert_eq!(cache.blob(&Hash::of(&bytes)).as_deref(), Some(&bytes[..]));
        }
        let g = cache.blobs.lock();
        let held: usize = g
            .young
            .values()
            .chain(g.old.values())
            .map(|b| b.len())
            .sum();
        assert!(held <= 2 * BLOB_BYTES, "{held} bytes held");
    }
}
