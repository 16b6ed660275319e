//! Immutable objects and their canonical encoding.
//!
//! An object's canonical bytes are a one-byte kind tag followed by its body: the raw bytes
//! for a [`Object::Blob`], the postcard encoding for a [`Node`] or a [`Commit`]. Its
//! [`Hash`] is blake3 over those bytes. Decoding accepts only canonical bytes (it re-encodes
//! and compares), so one object has exactly one hash.

mod commit;
pub(crate) mod node;

pub use commit::Commit;
pub use node::{Entry, EntryKind, Node, validate_name};

use crate::error::{Error, Result};
use crate::hash::Hash;

/// The kind tag that starts an object's canonical bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ObjectKind {
    /// File contents.
    Blob = 1,
    /// A directory node.
    Node = 2,
    /// A commit.
    Commit = 3,
}

impl ObjectKind {
    /// The kind named by a tag byte.
    pub fn from_tag(tag: u8) -> Option<ObjectKind> {
        match tag {
            1 => Some(ObjectKind::Blob),
            2 => Some(ObjectKind::Node),
            3 => Some(ObjectKind::Commit),
            _ => None,
        }
    }
}

/// One immutable object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// File contents, byte for byte.
    Blob(Vec<u8>),
    /// A directory, or one node of a large directory.
    Node(Node),
    /// A commit.
    Commit(Commit),
}

impl Object {
    /// The canonical bytes: kind tag, then body.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Object::Blob(bytes) => encode_blob(bytes),
            Object::Node(node) => encode_body(ObjectKind::Node, node),
            Object::Commit(commit) => encode_body(ObjectKind::Commit, commit),
        }
    }

    /// Decodes canonical bytes, refusing anything that does not re-encode to the same bytes.
    pub fn decode(bytes: &[u8]) -> Result<Object> {
        let (&tag, body) = bytes
            .split_first()
            .ok_or_else(|| Error::Decode("empty".into()))?;
        let object = match ObjectKind::from_tag(tag) {
            Some(ObjectKind::Blob) => return Ok(Object::Blob(body.to_vec())),
            Some(ObjectKind::Node) => {
                let node: Node = decode_body(body)?;
                node.validate()?;
                Object::Node(node)
            }
            Some(ObjectKind::Commit) => Object::Commit(decode_body(body)?),
            None => return Err(Error::Decode(format!("unknown kind tag {tag}"))),
        };
        if object.encode() != bytes {
            return Err(Error::Decode("not in canonical form".into()));
        }
        Ok(object)
    }

    /// The hash of the canonical bytes.
    pub fn hash(&self) -> Hash {
        Hash::of(&self.encode())
    }

    /// This object's kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Object::Blob(_) => ObjectKind::Blob,
            Object::Node(_) => ObjectKind::Node,
            Object::Commit(_) => ObjectKind::Commit,
        }
    }
}

/// The canonical bytes of a blob, without building an [`Object`].
pub fn encode_blob(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(ObjectKind::Blob as u8);
    out.extend_from_slice(bytes);
    out
}

fn encode_body<T: serde::Serialize>(kind: ObjectKind, body: &T) -> Vec<u8> {
    let out = vec![kind as u8];
    postcard::to_extend(body, out).expect("writing to a Vec cannot fail")
}

fn decode_body<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T> {
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| Error::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::Decode(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_entry() -> impl Strategy<Value = Entry> {
        ("[a-z0-9.]{1,12}", any::<bool>(), any::<[u8; 32]>()).prop_filter_map(
            "valid name",
            |(name, dir, h)| {
                validate_name(&name).ok()?;
                let kind = if dir { EntryKind::Dir } else { EntryKind::File };
                Some(Entry {
                    name,
                    kind,
                    hash: Hash(h),
                })
            },
        )
    }

    fn arb_object() -> impl Strategy<Value = Object> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Object::Blob),
            proptest::collection::btree_map("[a-z0-9]{1,12}", arb_entry(), 0..=32).prop_map(|m| {
                let entries = m.into_iter().map(|(name, e)| Entry { name, ..e }).collect();
                Object::Node(Node::Leaf(entries))
            }),
            (
                any::<[u8; 32]>(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..3),
                ".*",
                any::<i64>(),
                ".*"
            )
                .prop_map(|(tree, parents, author, time, message)| Object::Commit(
                    Commit {
                        tree: Hash(tree),
                        parents: parents.into_iter().map(Hash).collect(),
                        author,
                        time,
                        message,
                    }
                )),
        ]
    }

    proptest! {
        #[test]
        fn every_object_round_trips(object in arb_object()) {
            let bytes = object.encode();
            prop_assert_eq!(Object::decode(&bytes).unwrap(), object.clone());
            prop_assert_eq!(Hash::of(&bytes), object.hash());
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(object) = Object::decode(&bytes) {
                prop_assert_eq!(object.encode(), bytes);
            }
        }
    }

    #[test]
    fn unsorted_leaf_is_refused() {
        let e = |n: &str| Entry {
            name: n.into(),
            kind: EntryKind::File,
            hash: Hash([0; 32]),
        };
        let bytes = Object::Node(Node::Leaf(vec![e("b"), e("a")])).encode();
        assert!(Object::decode(&bytes).is_err());
    }
}
