//! Three-way merge of commits and trees, with conflicts kept as data.
//!
//! Merging `theirs` into `ours` starts from their merge base; after criss-cross merges
//! there are several, and they are merged first, recursively, into one virtual base (as
//! git's merge-ort does) instead of picking one. Trees merge entry by entry, descending
//! the directory tries of the three versions in step so that every bucket one side left
//! as it was in the base is decided without being read; a file both sides changed goes to
//! the [`ContentMerge`] registered for its path.
//!
//! Paths are identities (a contact is `<uid>.vcf`), so there are no renames to detect.
//! Every case is decided:
//!
//! | base | ours | theirs | result |
//! | --- | --- | --- | --- |
//! | any | x | x | x (also delete/delete, add/add of equal bytes) |
//! | x | x | y | y; likewise x, y, x gives y |
//! | files | y | z | the content merge of x, y, z (absent sides as `None`) |
//! | dirs | dir | dir | merged entry by entry |
//! | any | dir | file (or the reverse) | the directory stays; the file is recorded as a conflict |
//!
//! A merge that cannot decide still commits: the path keeps our version (theirs if we
//! deleted it) so services keep serving it, and `/.kith/conflicts/<path>/` holds `base`,
//! `ours` and `theirs` (each only if that side has the file) and `why`. Every replica that
//! syncs the merge sees the same conflict; [`Transaction::resolve`] settles it.

mod content;

pub use content::{ContentMerge, Identical, Merged, Mergers, Rule};

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::object::{Commit, EntryKind, Node};
use crate::store::{Store, Transaction, now_millis};
use crate::tree::EntryValue;

/// Where conflict records live in the tree.
pub const CONFLICTS: &str = ".kith/conflicts";

/// One path the merge could not decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The file's path, without a leading `/`.
    pub path: String,
    /// The base version's blob, if the base had the file.
    pub base: Option<Hash>,
    /// Our version's blob, if we have the file.
    pub ours: Option<Hash>,
    /// Their version's blob, if they have the file.
    pub theirs: Option<Hash>,
    /// Why it could not merge.
    pub why: String,
}

/// A merged tree and the conflicts recorded in it.
#[derive(Clone, Debug)]
pub struct TreeMerge {
    /// The merged root tree (conflict records included).
    pub tree: Hash,
    /// The conflicts this merge recorded.
    pub conflicts: Vec<Conflict>,
}

/// How a branch took in another commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The other commit was already in the branch's history.
    UpToDate,
    /// The branch simply moved forward to the other commit.
    FastForward(Hash),
    /// A merge commit was made; it records these conflicts.
    Merged {
        /// The merge commit.
        commit: Hash,
        /// Conflicts it recorded.
        conflicts: Vec<Conflict>,
    },
}

type Value = Option<(EntryKind, Hash)>;

impl Store {
    /// Merges commit `theirs` into `branch` and moves the branch (compare-and-set):
    /// fast-forward when possible, else a merge commit with parents `[ours, theirs]`.
    pub fn merge_into(
        &self,
        branch: &str,
        theirs: Hash,
        mergers: &Mergers,
        author: &str,
        message: &str,
    ) -> Result<MergeOutcome> {
        let _hold = self.objects.0.lock(false)?;
        let Some(ours) = self.head(branch)? else {
            self.set_branch(branch, None, Some(theirs))?;
            return Ok(MergeOutcome::FastForward(theirs));
        };
        let bases = self.merge_bases(ours, theirs)?;
        if bases == [theirs] {
            return Ok(MergeOutcome::UpToDate);
        }
        if bases == [ours] {
            self.set_branch(branch, Some(ours), Some(theirs))?;
            return Ok(MergeOutcome::FastForward(theirs));
        }
        let merged = self.merge_from(&bases, ours, theirs, mergers)?;
        let commit = Commit {
            tree: merged.tree,
            parents: vec![ours, theirs],
            author: author.into(),
            time: now_millis(),
            message: message.into(),
        };
        let hash = self.write_commit(&commit)?;
        self.set_branch(branch, Some(ours), Some(hash))?;
        Ok(MergeOutcome::Merged {
            commit: hash,
            conflicts: merged.conflicts,
        })
    }

    /// Merges the trees of two commits from their (virtual) merge base, without committing.
    pub fn merge_commits(&self, ours: Hash, theirs: Hash, mergers: &Mergers) -> Result<TreeMerge> {
        self.merge_from(&self.merge_bases(ours, theirs)?, ours, theirs, mergers)
    }

    /// Merges the trees of two commits given their merge bases.
    fn merge_from(
        &self,
        bases: &[Hash],
        ours: Hash,
        theirs: Hash,
        mergers: &Mergers,
    ) -> Result<TreeMerge> {
        let base = self.base_tree(bases, mergers)?;
        let (o, t) = (self.commit(&ours)?.tree, self.commit(&theirs)?.tree);
        self.merge_trees(base, o, t, mergers)
    }

    /// The tree to merge from: the merge base's, or for several bases their recursive merge.
    fn base_tree(&self, bases: &[Hash], mergers: &Mergers) -> Result<Option<Hash>> {
        let Some((&first, rest)) = bases.split_first() else {
            return Ok(None);
        };
        let mut acc = first;
        for &next in rest {
            let merged = self.merge_commits_without_records(acc, next, mergers)?;
            let virtual_base = Commit {
                tree: merged,
                parents: vec![acc, next],
                author: "kith-merge".into(),
                time: 0,
                message: "virtual merge base".into(),
            };
            acc = self.write_commit(&virtual_base)?;
        }
        Ok(Some(self.commit(&acc)?.tree))
    }

    /// A merge for a virtual base: conflicted paths are left out, so that the real merge
    /// sees both sides' versions as additions and conflicts unless they agree.
    fn merge_commits_without_records(&self, a: Hash, b: Hash, mergers: &Mergers) -> Result<Hash> {
        let base = self.base_tree(&self.merge_bases(a, b)?, mergers)?;
        let (at, bt) = (self.commit(&a)?.tree, self.commit(&b)?.tree);
        let (root, conflicts) = self.merge_roots(base, at, bt, mergers)?;
        let mut changes = BTreeMap::new();
        for c in conflicts {
            changes.insert(crate::split_path(&c.path)?, None);
        }
        let root = self.objects.apply_paths(root.as_ref(), &changes)?;
        root.map_or_else(|| self.empty_tree(), Ok)
    }

    /// Merges three root trees (the base may be absent) and records conflicts in the result.
    pub fn merge_trees(
        &self,
        base: Option<Hash>,
        ours: Hash,
        theirs: Hash,
        mergers: &Mergers,
    ) -> Result<TreeMerge> {
        let (root, conflicts) = self.merge_roots(base, ours, theirs, mergers)?;
        let tree = self.record_conflicts(root, &conflicts)?;
        Ok(TreeMerge { tree, conflicts })
    }

    /// Merges three root trees; returns the merged root (`None`: empty) and the conflicts.
    fn merge_roots(
        &self,
        base: Option<Hash>,
        ours: Hash,
        theirs: Hash,
        mergers: &Mergers,
    ) -> Result<(Option<Hash>, Vec<Conflict>)> {
        let mut run = MergeRun {
            store: self,
            mergers,
            conflicts: Vec::new(),
        };
        let merged = run.merge_entry(base.map(dir), Some(dir(ours)), Some(dir(theirs)), "")?;
        Ok((merged.map(|(_, h)| h), run.conflicts))
    }
}

/// One tree merge under way: the store, the merge functions, and the conflicts found.
struct MergeRun<'a> {
    store: &'a Store,
    mergers: &'a Mergers,
    conflicts: Vec<Conflict>,
}

impl MergeRun<'_> {
    /// Merges one entry (file or directory) at `path`.
    fn merge_entry(
        &mut self,
        base: Value,
        ours: Value,
        theirs: Value,
        path: &str,
    ) -> Result<Value> {
        if ours == theirs || base == theirs {
            return Ok(ours);
        }
        if base == ours {
            return Ok(theirs);
        }
        let is = |v: Value, k| matches!(v, Some((kind, _)) if kind == k);
        let (base_dir, base_file) = (
            base.filter(|_| is(base, EntryKind::Dir)),
            base.filter(|_| is(base, EntryKind::File)),
        );
        match (ours, theirs) {
            (Some((EntryKind::Dir, _)) | None, Some((EntryKind::Dir, _)) | None) => {
                let merged = self.merge_dirs(
                    base_dir.map(|v| v.1),
                    ours.map(|v| v.1),
                    theirs.map(|v| v.1),
                    path,
                )?;
                Ok(merged.map(dir))
            }
            (Some((EntryKind::File, _)) | None, Some((EntryKind::File, _)) | None) => self
                .merge_file(
                    base_file.map(|v| v.1),
                    ours.map(|v| v.1),
                    theirs.map(|v| v.1),
                    path,
                ),
            (Some((EntryKind::Dir, d)), Some((EntryKind::File, f)))
            | (Some((EntryKind::File, f)), Some((EntryKind::Dir, d))) => {
                let ours_is_file = is(ours, EntryKind::File);
                self.conflicts.push(Conflict {
                    path: path.to_string(),
                    base: base_file.map(|v| v.1),
                    ours: ours_is_file.then_some(f),
                    theirs: (!ours_is_file).then_some(f),
                    why: "one side made this a folder, the other a file; the folder is kept".into(),
                });
                let merged = self.merge_dirs(base_dir.map(|v| v.1), Some(d), Some(d), path)?;
                Ok(merged.map(dir))
            }
        }
    }

    /// Merges one file's versions with the content merge registered for its path.
    fn merge_file(
        &mut self,
        base: Option<Hash>,
        ours: Option<Hash>,
        theirs: Option<Hash>,
        path: &str,
    ) -> Result<Value> {
        let read = |h: Option<Hash>| h.map(|h| self.store.blob(&h)).transpose();
        let (b, o, t) = (read(base)?, read(ours)?, read(theirs)?);
        match self
            .mergers
            .for_path(path)
            .merge(b.as_deref(), o.as_deref(), t.as_deref())
        {
            Merged::Clean(Some(bytes)) => {
                Ok(Some((EntryKind::File, self.store.write_blob(&bytes)?)))
            }
            Merged::Clean(None) => Ok(None),
            Merged::Conflict(why) => {
                self.conflicts.push(Conflict {
                    path: path.to_string(),
                    base,
                    ours,
                    theirs,
                    why,
                });
                Ok(ours.or(theirs).map(|h| (EntryKind::File, h)))
            }
        }
    }

    /// Merges three directories; returns the merged one (`None`: empty).
    fn merge_dirs(
        &mut self,
        base: Option<Hash>,
        ours: Option<Hash>,
        theirs: Option<Hash>,
        path: &str,
    ) -> Result<Option<Hash>> {
        let mut changes = BTreeMap::new();
        self.merge_nodes(base, ours, theirs, path, &mut changes)?;
        if changes.is_empty() {
            return Ok(ours);
        }
        self.store.objects.apply_dir(ours.as_ref(), changes)
    }

    /// Collects the entry changes to apply to `ours` so that it holds the merge; descends
    /// the three tries bucket by bucket while their shapes agree.
    fn merge_nodes(
        &mut self,
        base: Option<Hash>,
        ours: Option<Hash>,
        theirs: Option<Hash>,
        path: &str,
        changes: &mut BTreeMap<String, EntryValue>,
    ) -> Result<()> {
        if ours == theirs || base == theirs {
            return Ok(());
        }
        if base == ours {
            return self
                .store
                .changed_entries(ours.as_ref(), theirs.as_ref(), &mut |o, t| match (o, t) {
                    (_, Some(t)) => {
                        changes.insert(t.name.clone(), Some((t.kind, t.hash)));
                    }
                    (Some(o), None) => {
                        changes.insert(o.name, None);
                    }
                    (None, None) => {}
                });
        }
        let [b, o, t] =
            [base, ours, theirs].map(|h| h.map(|h| self.store.objects.node(&h)).transpose());
        let (b, o, t) = (b?, o?, t?);
        let nodes = [b.as_deref(), o.as_deref(), t.as_deref()];
        if same_inode_depth(&nodes) {
            let buckets = nodes.map(children);
            let all: std::collections::BTreeSet<u8> =
                buckets.iter().flat_map(|m| m.keys().copied()).collect();
            for bucket in all {
                let [bb, ob, tb] = [0, 1, 2].map(|i| buckets[i].get(&bucket).copied());
                self.merge_nodes(bb, ob, tb, path, changes)?;
            }
            return Ok(());
        }
        let [bm, om, tm] = [base, ours, theirs].map(|h| self.entry_map(h));
        let (bm, om, tm) = (bm?, om?, tm?);
        let names: std::collections::BTreeSet<&String> =
            bm.keys().chain(om.keys()).chain(tm.keys()).collect();
        for name in names {
            let (bv, ov, tv) = (
                bm.get(name).copied(),
                om.get(name).copied(),
                tm.get(name).copied(),
            );
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            let merged = self.merge_entry(bv, ov, tv, &child)?;
            if merged != ov {
                changes.insert(name.clone(), merged);
            }
        }
        Ok(())
    }

    fn entry_map(&self, node: Option<Hash>) -> Result<BTreeMap<String, (EntryKind, Hash)>> {
        let mut map = BTreeMap::new();
        if let Some(h) = node {
            self.store.objects.for_each_entry(&h, &mut |e| {
                map.insert(e.name, (e.kind, e.hash));
                Ok(())
            })?;
        }
        Ok(map)
    }
}

impl Store {
    /// Writes conflict records under [`CONFLICTS`] into a merged root.
    fn record_conflicts(&self, root: Option<Hash>, conflicts: &[Conflict]) -> Result<Hash> {
        let mut changes = BTreeMap::new();
        for c in conflicts {
            let record = format!("{CONFLICTS}/{}", c.path);
            for (side, blob) in [("base", c.base), ("ours", c.ours), ("theirs", c.theirs)] {
                if let Some(h) = blob {
                    changes.insert(
                        crate::split_path(&format!("{record}/{side}"))?,
                        Some((EntryKind::File, h)),
                    );
                }
            }
            let why = self.write_blob(c.why.as_bytes())?;
            changes.insert(
                crate::split_path(&format!("{record}/why"))?,
                Some((EntryKind::File, why)),
            );
        }
        match self.objects.apply_paths(root.as_ref(), &changes)? {
            Some(h) => Ok(h),
            None => self.empty_tree(),
        }
    }

    /// The conflicts recorded in a tree, sorted by path.
    pub fn conflicts(&self, root: &Hash) -> Result<Vec<Conflict>> {
        let mut by_path: BTreeMap<String, Conflict> = BTreeMap::new();
        self.walk_files_at(root, CONFLICTS, &mut |p, h| {
            let (path, side) = p.rsplit_once('/').unwrap_or(("", p));
            let c = by_path.entry(path.to_string()).or_insert_with(|| Conflict {
                path: path.to_string(),
                base: None,
                ours: None,
                theirs: None,
                why: String::new(),
            });
            match side {
                "base" => c.base = Some(*h),
                "ours" => c.ours = Some(*h),
                "theirs" => c.theirs = Some(*h),
                "why" => c.why = String::from_utf8_lossy(&self.blob(h)?).into_owned(),
                _ => {}
            }
            Ok(())
        })?;
        Ok(by_path.into_values().collect())
    }
}

impl Transaction {
    /// Settles the conflict at `path`: the file becomes `bytes` (or is deleted with
    /// `None`), and its conflict record is removed.
    pub fn resolve(&mut self, path: &str, bytes: Option<&[u8]>) -> Result<()> {
        let names = crate::split_path(path)?;
        let record = format!("{CONFLICTS}/{}", names.join("/"));
        if self.store().find(&self.base_tree(), &record)?.is_none() {
            return Err(Error::BadPath {
                path: path.into(),
                reason: "no conflict is recorded there; `kith conflicts` lists them",
            });
        }
        match bytes {
            Some(b) => drop(self.put(path, b)?),
            None => self.remove(path)?,
        }
        self.remove(&record)
    }
}

fn dir(h: Hash) -> (EntryKind, Hash) {
    (EntryKind::Dir, h)
}

/// Whether every present node is an inode, all at one depth, so buckets line up.
fn same_inode_depth(nodes: &[Option<&Node>]) -> bool {
    let mut depth = None;
    for n in nodes.iter().flatten() {
        match n {
            Node::Inode { depth: d, .. } if depth.is_none_or(|x| x == *d) => depth = Some(*d),
            _ => return false,
        }
    }
    depth.is_some()
}

fn children(node: Option<&Node>) -> BTreeMap<u8, Hash> {
    match node {
        Some(Node::Inode { children, .. }) => children.iter().copied().collect(),
        _ => BTreeMap::new(),
    }
}
