//! Commits: a root tree, its parents, who made it, when and why.

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// A commit: one version of the whole tree and its place in history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The root directory node.
    pub tree: Hash,
    /// Parent commits: none for the first, two or more for a merge.
    pub parents: Vec<Hash>,
    /// The device or service that made it.
    pub author: String,
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    /// What the change was for.
    pub message: String,
}
