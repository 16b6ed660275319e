//! Keeping a store healthy: `fsck` verifies everything reachable, `gc` drops the rest,
//! and opening a store moves a branch whose head was lost back to its newest intact commit.

use std::collections::HashSet;

use crate::backend::RetainReport;
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::object::{EntryKind, Node, Object};
use crate::store::Store;

/// What `fsck` found.
#[derive(Clone, Debug, Default)]
pub struct FsckReport {
    /// Objects checked (each once).
    pub objects: u64,
    /// Bytes of object data checked.
    pub bytes: u64,
    /// Every damaged or missing object reached.
    pub damage: Vec<Damage>,
}

/// One object that is missing or does not verify.
#[derive(Clone, Debug)]
pub struct Damage {
    /// The object.
    pub hash: Hash,
    /// Where it was reached from: a branch, then a path.
    pub reached_from: String,
    /// What is wrong.
    pub problem: String,
}

/// What to visit: an object, the kind it must be, and how it was reached.
struct Visit {
    hash: Hash,
    kind: Expect,
    from: String,
    /// The object's path in its tree (`""` for commits and roots).
    path: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    Commit,
    Node,
    Blob,
}

impl Store {
    /// Reads and verifies every object reachable from every branch. `progress` is called
    /// with the count of objects checked so far.
    pub fn fsck(&self, progress: &mut dyn FnMut(u64)) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        let mut seen = HashSet::new();
        let mut stack = self.branch_visits()?;
        while let Some(visit) = stack.pop() {
            if !seen.insert(visit.hash) {
                continue;
            }
            report.objects += 1;
            if report.objects % 1024 == 0 {
                progress(report.objects);
            }
            match self.visit(&visit, true) {
                Ok((bytes, next)) => {
                    report.bytes += bytes;
                    stack.extend(next);
                }
                Err(Error::Corrupt { detail, .. }) => report.damage.push(damage(visit, detail)),
                Err(Error::Missing(_)) => report.damage.push(damage(visit, "missing".into())),
                Err(Error::Decode(detail)) => report.damage.push(damage(visit, detail)),
                Err(e) => return Err(e),
            }
        }
        progress(report.objects);
        Ok(report)
    }

    /// Drops every object not reachable from a branch. Refuses if anything reachable is
    /// missing or damaged (run `kith fsck`). Safe while readers and writers run: it waits
    /// for open transactions, and readers keep the files they have open.
    pub fn gc(&self) -> Result<RetainReport> {
        let _hold = self.objects.0.lock(true)?;
        let live = self.reachable(false)?;
        self.objects.0.retain(&|h| live.contains(h))
    }

    /// Every object reachable from a branch; reads blobs only when `verify_blobs`.
    fn reachable(&self, verify_blobs: bool) -> Result<HashSet<Hash>> {
        let mut seen = HashSet::new();
        let mut stack = self.branch_visits()?;
        while let Some(visit) = stack.pop() {
            if seen.insert(visit.hash) {
                stack.extend(self.visit(&visit, verify_blobs)?.1);
            }
        }
        Ok(seen)
    }

    /// A visit to every branch head.
    fn branch_visits(&self) -> Result<Vec<Visit>> {
        let branches = self.branches()?.into_iter();
        Ok(branches
            .map(|(name, hash)| Visit {
                hash,
                kind: Expect::Commit,
                from: name,
                path: String::new(),
            })
            .collect())
    }

    /// Reads one object as the kind expected; returns its size and what it refers to.
    fn visit(&self, visit: &Visit, read_blobs: bool) -> Result<(u64, Vec<Visit>)> {
        let child = |hash, kind, name: &str| Visit {
            hash,
            kind,
            from: format!("{}/{name}", visit.from),
            path: format!("{}/{name}", visit.path),
        };
        if visit.kind == Expect::Blob {
            if !read_blobs {
                return if self.objects.0.contains(&visit.hash)? {
                    Ok((0, vec![]))
                } else {
                    Err(Error::Missing(visit.hash))
                };
            }
            return Ok((self.objects.stored_blob(&visit.hash)?.len() as u64, vec![]));
        }
        let (object, size) = self.objects.object_sized(&visit.hash)?;
        let next = match (visit.kind, object) {
            (Expect::Commit, Object::Commit(c)) => {
                let mut next: Vec<Visit> = c
                    .parents
                    .iter()
                    .map(|p| Visit {
                        hash: *p,
                        kind: Expect::Commit,
                        from: format!("{}^", visit.from),
                        path: String::new(),
                    })
                    .collect();
                next.push(Visit {
                    hash: c.tree,
                    kind: Expect::Node,
                    from: format!("{}:", visit.from),
                    path: String::new(),
                });
                next
            }
            (Expect::Node, Object::Node(Node::Leaf(entries))) => entries
                .iter()
                .filter(|e| self.scope.reaches(&format!("{}/{}", visit.path, e.name)))
                .map(|e| {
                    child(
                        e.hash,
                        if e.kind == EntryKind::Dir {
                            Expect::Node
                        } else {
                            Expect::Blob
                        },
                        &e.name,
                    )
                })
                .collect(),
            (Expect::Node, Object::Node(Node::Inode { children, .. })) => children
                .iter()
                .map(|(_, h)| Visit {
                    hash: *h,
                    kind: Expect::Node,
                    from: visit.from.clone(),
                    path: visit.path.clone(),
                })
                .collect(),
            (_, other) => {
                return Err(Error::Corrupt {
                    hash: visit.hash,
                    detail: format!("a {:?} where another kind was expected", other.kind()),
                });
            }
        };
        Ok((size, next))
    }

    /// Moves every branch whose head commit or root tree cannot be read back to the newest
    /// entry of its history that is fully intact.
    pub(crate) fn recover_refs(&self) -> Result<()> {
        for (name, head) in self.branches()? {
            if self.head_readable(&head) {
                continue;
            }
            let fallback = self
                .refs
                .history(&name)?
                .into_iter()
                .find(|h| self.closure_intact(h));
            match fallback {
                Some(good) => {
                    tracing::warn!(
                        "branch {name}: head {head} is damaged; moved back to {good}, its newest intact commit"
                    );
                    self.set_branch(&name, Some(head), Some(good))?;
                }
                None => tracing::warn!(
                    "branch {name}: head {head} is damaged and no earlier commit is intact; run `kith fsck`"
                ),
            }
        }
        Ok(())
    }

    fn head_readable(&self, head: &Hash) -> bool {
        self.commit(head)
            .and_then(|c| self.objects.node(&c.tree))
            .is_ok()
    }

    fn closure_intact(&self, commit: &Hash) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![Visit {
            hash: *commit,
            kind: Expect::Commit,
            from: String::new(),
            path: String::new(),
        }];
        while let Some(visit) = stack.pop() {
            if seen.insert(visit.hash) {
                match self.visit(&visit, true) {
                    Ok((_, next)) => stack.extend(next),
                    Err(_) => return false,
                }
            }
        }
        true
    }
}

fn damage(visit: Visit, problem: String) -> Damage {
    Damage {
        hash: visit.hash,
        reached_from: visit.from,
        problem,
    }
}
