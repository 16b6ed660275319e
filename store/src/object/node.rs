//! Directory nodes: a small directory is one sorted leaf; a large one is a hash trie.
//!
//! A directory with at most [`MAX_LEAF`] entries is one [`Node::Leaf`]. A larger one is a
//! [`Node::Inode`] that splits its entries into [`FANOUT`] buckets by five bits of the
//! blake3 hash of each name (bits `5*depth..5*depth+5`), each bucket again a node one level
//! deeper. The shape depends only on the set of entries, never on the order they were
//! inserted in, so equal directories have equal hashes; and changing one entry of a
//! 100,000-entry directory rewrites only the few small nodes on its path.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::Hash;

/// Entries a leaf holds before the directory splits into an inode.
pub const MAX_LEAF: usize = 32;
/// Children of an inode.
pub const FANOUT: usize = 32;
/// Deepest inode level: 5 bits per level over a 256-bit name hash.
pub const MAX_DEPTH: u8 = 50;

/// What a directory entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// A blob: the file's bytes.
    File,
    /// A directory's root node.
    Dir,
}

impl EntryKind {
    /// "file" or "directory", for messages.
    pub fn noun(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "directory",
        }
    }
}

/// One named entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The name within its directory.
    pub name: String,
    /// File or directory.
    pub kind: EntryKind,
    /// The blob, or the directory's root node.
    pub hash: Hash,
}

/// One node of a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Node {
    /// All the entries of a small directory (or of one bucket), sorted by name.
    Leaf(Vec<Entry>),
    /// A large directory split by name hash.
    Inode {
        /// Level in the trie: which five bits of the name hash choose the bucket.
        depth: u8,
        /// Entries below this node.
        len: u64,
        /// Non-empty buckets in ascending order: bucket number and child node.
        children: Vec<(u8, Hash)>,
    },
}

impl Node {
    /// The empty directory.
    pub fn empty() -> Node {
        Node::Leaf(Vec::new())
    }

    /// Entries below this node.
    pub fn len(&self) -> u64 {
        match self {
            Node::Leaf(entries) => entries.len() as u64,
            Node::Inode { len, .. } => *len,
        }
    }

    /// Whether the directory is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the invariants that make the encoding canonical.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: &str| Err(Error::Decode(format!("directory node: {why}")));
        match self {
            Node::Leaf(entries) => {
                if entries.len() > MAX_LEAF {
                    return bad("leaf over the size limit");
                }
                for e in entries {
                    validate_name(&e.name).map_err(|why| Error::Decode(why.into()))?;
                }
                if entries.windows(2).any(|w| w[0].name >= w[1].name) {
                    return bad("names not sorted and unique");
                }
            }
            Node::Inode {
                depth,
                len,
                children,
            } => {
                if *depth > MAX_DEPTH || *len <= MAX_LEAF as u64 || children.is_empty() {
                    return bad("inode depth or size out of range");
                }
                if children.iter().any(|(b, _)| usize::from(*b) >= FANOUT)
                    || children.windows(2).any(|w| w[0].0 >= w[1].0)
                {
                    return bad("buckets not ascending");
                }
            }
        }
        Ok(())
    }
}

/// Why a name cannot be a directory entry, if it cannot.
pub fn validate_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        Err("empty name")
    } else if name == "." || name == ".." {
        Err("`.` and `..` are not names")
    } else if name.contains('/') || name.contains('\0') {
        Err("a name cannot contain `/` or NUL")
    } else if name.len() > 255 {
        Err("a name is at most 255 bytes")
    } else {
        Ok(())
    }
}

/// The blake3 hash of a name, whose bits choose its bucket at each inode level.
pub(crate) fn name_key(name: &str) -> [u8; 32] {
    *blake3::hash(name.as_bytes()).as_bytes()
}

/// The bucket a name key falls in at an inode of the given depth.
pub(crate) fn bucket(key: &[u8; 32], depth: u8) -> u8 {
    let bit = usize::from(depth) * 5;
    let window = (u16::from(key[bit / 8]) << 8) | u16::from(*key.get(bit / 8 + 1).unwrap_or(&0));
    ((window >> (11 - bit % 8)) & 0x1f) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_all_values_and_depths() {
        let mut seen = [false; FANOUT];
        for i in 0..2000 {
            let key = name_key(&format!("n{i}"));
            for depth in 0..=MAX_DEPTH {
                assert!(usize::from(bucket(&key, depth)) < FANOUT);
            }
            seen[usize::from(bucket(&key, 0))] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("a.vcf").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
