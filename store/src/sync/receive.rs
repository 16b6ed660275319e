//! The receiving role: finds what it lacks, fetches it, verifies every object, and writes
//! it bottom-up so that an object in the store always has everything below it.
//!
//! 1. **Negotiate commits.** From each local head, walk first parents and offer commits at
//!    distances 0, 1, 2, 4, 8, ... ([`Message::Haves`]); the sender acks those it has. A
//!    line stops at its first ack, so a long shared history costs a few rounds.
//! 2. **Fetch commits** reachable from the wanted heads and not from the acked ones.
//! 3. **Fetch trees level by level**: ask only for the children the store lacks, so an
//!    unchanged subtree is never descended into and syncing one change walks one path.
//!    Blobs are written as they arrive; nodes and commits are held until everything below
//!    them is here, then written children first. An interrupted fetch therefore keeps its
//!    blobs, and the next one asks only for what is still missing.
//!
//! A partial replica (see [`crate::Scope`]) asks only for the objects its scope reaches.
//!
//! Every object's bytes must hash to the name asked for and decode as the kind expected;
//! anything else ends the session with [`SyncError::BadObject`] and is not kept.

use std::collections::{HashSet, VecDeque};

use super::SyncError;
use super::message::{Message, Sent, Want};
use super::send::MAX_WANT;
use crate::backend::LockGuard;
use crate::hash::Hash;
use crate::object::{Node, Object};
use crate::store::Store;

/// Commits offered per negotiation round.
const HAVES_PER_ROUND: usize = 32;

/// What a finished fetch brought.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// New commits.
    pub commits: u64,
    /// New objects of every kind (commits included).
    pub objects: u64,
    /// Their canonical bytes.
    pub bytes: u64,
    /// Negotiation rounds.
    pub rounds: u64,
}

/// One first-parent line of local history being offered.
struct Line {
    /// The last commit offered (the walk continues from it); `None` when the line is over.
    next: Option<Hash>,
    walked: u64,
    gap: u64,
    /// What this line offered in the current round.
    round: Vec<Hash>,
}

/// Offers per line per round.
const PER_LINE: usize = 4;

enum State {
    Negotiating {
        lines: Vec<Line>,
        acked: Vec<Hash>,
    },
    Commits,
    Trees {
        commits: Vec<(Hash, Vec<u8>)>,
        nodes: Vec<(Hash, Vec<u8>)>,
        asked: Vec<Queued>,
        queue: VecDeque<Queued>,
        seen: HashSet<Hash>,
    },
    Done,
}

/// An object to ask for: its path (a partial replica asks only for what its scope
/// reaches) and what this store holds at the same place, for the sender to send a change
/// of.
struct Queued {
    hash: Hash,
    path: String,
    base: Option<Hash>,
}

/// Fetches the commits `wants` (and everything they need) into a store.
///
/// Holds the store's maintenance lock until dropped: move refs to the fetched commits
/// before dropping it, so that `gc` cannot take the new objects first.
pub struct Receiver {
    store: Store,
    wants: Vec<Hash>,
    state: State,
    report: FetchReport,
    /// The root tree the fetched trees are likely close to: the newest common commit's.
    base_root: Option<Hash>,
    _hold: LockGuard,
}

impl Receiver {
    /// Starts fetching `wants`; returns the receiver and its first messages. With nothing
    /// to fetch (all wanted commits present) it is done at once.
    pub fn start(store: Store, wants: Vec<Hash>) -> Result<(Receiver, Vec<Message>), SyncError> {
        let hold = store.object_store().lock(false)?;
        let mut missing = Vec::new();
        for w in wants {
            if !store.object_store().contains(&w)? && !missing.contains(&w) {
                missing.push(w);
            }
        }
        let lines = store
            .branches()?
            .into_iter()
            .map(|(_, h)| Line {
                next: Some(h),
                walked: 0,
                gap: 1,
                round: Vec::new(),
            })
            .collect();
        let state = State::Negotiating {
            lines,
            acked: Vec::new(),
        };
        let mut receiver = Receiver {
            store,
            wants: missing,
            state,
            report: FetchReport::default(),
            base_root: None,
            _hold: hold,
        };
        if receiver.wants.is_empty() {
            receiver.state = State::Done;
            return Ok((receiver, Vec::new()));
        }
        let first = receiver.negotiate()?;
        Ok((receiver, first))
    }

    /// Whether everything wanted is in the store.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// What was fetched so far.
    pub fn report(&self) -> &FetchReport {
        &self.report
    }

    /// Handles the sender's answer; returns the next messages to send.
    pub fn handle(&mut self, message: Message) -> Result<Vec<Message>, SyncError> {
        match (&mut self.state, message) {
            (State::Negotiating { acked, .. }, Message::Acks(acks)) => {
                acked.extend(&acks);
                self.stop_acked_lines(&acks);
                self.negotiate()
            }
            (State::Commits, Message::Objects(objects)) => self.take_commits(objects),
            (State::Trees { .. }, Message::Objects(objects)) => self.take_trees(objects),
            (_, Message::Error(e)) => Err(SyncError::Peer(e)),
            (_, other) => Err(SyncError::Protocol(format!("unexpected {}", name(&other)))),
        }
    }

    /// The next round of haves, or the commit request once negotiation is over.
    fn negotiate(&mut self) -> Result<Vec<Message>, SyncError> {
        let State::Negotiating { lines, acked } = &mut self.state else {
            unreachable!("only while negotiating")
        };
        let mut haves = Vec::new();
        for line in lines.iter_mut() {
            line.round.clear();
            for _ in 0..PER_LINE {
                if haves.len() >= HAVES_PER_ROUND {
                    break;
                }
                let Some(offer) = advance(&self.store, line)? else {
                    break;
                };
                line.round.push(offer);
                haves.push(offer);
            }
        }
        if !haves.is_empty() {
            self.report.rounds += 1;
            return Ok(vec![Message::Haves(haves)]);
        }
        let common = std::mem::take(acked);
        self.base_root = self.base_root(&common)?;
        self.state = State::Commits;
        Ok(vec![Message::WantCommits {
            heads: self.wants.clone(),
            common,
        }])
    }

    /// The tree of the first common commit, else of the first local branch.
    fn base_root(&self, common: &[Hash]) -> Result<Option<Hash>, SyncError> {
        let local = self.store.branches()?.into_iter().map(|(_, h)| h);
        match common.iter().copied().chain(local).next() {
            Some(c) => Ok(Some(self.store.commit(&c)?.tree)),
            None => Ok(None),
        }
    }

    /// Ends the lines whose offered commit was acked.
    fn stop_acked_lines(&mut self, acks: &[Hash]) {
        if let State::Negotiating { lines, .. } = &mut self.state {
            for line in lines.iter_mut() {
                if line.round.iter().any(|offered| acks.contains(offered)) {
                    line.next = None;
                }
            }
        }
    }

    fn take_commits(&mut self, objects: Vec<Sent>) -> Result<Vec<Message>, SyncError> {
        let mut commits = Vec::new();
        let mut roots = VecDeque::new();
        let mut seen = HashSet::new();
        for sent in objects {
            let Sent::Full(bytes) = sent else {
                return Err(SyncError::Protocol(
                    "commits must be sent whole, and only those the sender has".into(),
                ));
            };
            let hash = Hash::of(&bytes);
            let Ok(Object::Commit(c)) = Object::decode(&bytes) else {
                return Err(SyncError::BadObject(hash));
            };
            if !self.store.object_store().contains(&c.tree)? && seen.insert(c.tree) {
                roots.push_back(Queued {
                    hash: c.tree,
                    path: String::new(),
                    base: self.base_root,
                });
            }
            commits.push((hash, bytes));
        }
        for w in &self.wants {
            if !commits.iter().any(|(h, _)| h == w) {
                return Err(SyncError::Protocol(format!(
                    "the sender did not send wanted commit {w}"
                )));
            }
        }
        self.state = State::Trees {
            commits,
            nodes: Vec::new(),
            asked: Vec::new(),
            queue: roots,
            seen,
        };
        self.ask_or_finish()
    }

    fn take_trees(&mut self, objects: Vec<Sent>) -> Result<Vec<Message>, SyncError> {
        let State::Trees { asked, queue, .. } = &mut self.state else {
            unreachable!("only fetching trees")
        };
        if objects.is_empty() || objects.len() > asked.len() {
            return Err(SyncError::Protocol(
                "answer does not match the request".into(),
            ));
        }
        let mut asked = std::mem::take(asked);
        for rest in asked.drain(objects.len()..).rev() {
            queue.push_front(rest);
        }
        for (want, sent) in asked.into_iter().zip(objects) {
            let bytes = self.rebuild(&want, sent)?;
            self.take_object(want, bytes)?;
        }
        self.ask_or_finish()
    }

    /// The bytes of a wanted object, whole or rebuilt from its base, verified.
    fn rebuild(&self, want: &Queued, sent: Sent) -> Result<Vec<u8>, SyncError> {
        let base = match (&sent, want.base) {
            (Sent::Missing, _) => return Err(SyncError::Missing(want.hash)),
            (Sent::Delta { .. }, Some(b)) => self.store.object_store().read(&b)?,
            _ => None,
        };
        let bytes = sent
            .decode(base.as_deref())
            .ok_or(SyncError::BadObject(want.hash))?;
        if Hash::of(&bytes) != want.hash {
            return Err(SyncError::BadObject(want.hash));
        }
        Ok(bytes)
    }

    /// Keeps a verified object: a blob at once, a node until its children are here.
    fn take_object(&mut self, want: Queued, bytes: Vec<u8>) -> Result<(), SyncError> {
        match Object::decode(&bytes).map_err(|_| SyncError::BadObject(want.hash))? {
            Object::Blob(_) => {
                self.store.object_store().write(&want.hash, &bytes)?;
                self.report.objects += 1;
                self.report.bytes += bytes.len() as u64;
            }
            Object::Node(node) => {
                let base = self.base_node(want.base)?;
                let State::Trees {
                    nodes, queue, seen, ..
                } = &mut self.state
                else {
                    unreachable!("only fetching trees")
                };
                for child in children(&node, base.as_ref(), &want.path) {
                    if self.store.scope().reaches(&child.path)
                        && !self.store.object_store().contains(&child.hash)?
                        && seen.insert(child.hash)
                    {
                        queue.push_back(child);
                    }
                }
                nodes.push((want.hash, bytes));
            }
            Object::Commit(_) => return Err(SyncError::BadObject(want.hash)),
        }
        Ok(())
    }

    /// The local node at the same place as a fetched one, if this store has it.
    fn base_node(&self, base: Option<Hash>) -> Result<Option<Node>, SyncError> {
        let Some(b) = base else { return Ok(None) };
        match self.store.object_store().read(&b)? {
            Some(bytes) => match Object::decode(&bytes) {
                Ok(Object::Node(node)) => Ok(Some(node)),
                _ => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Asks for the next batch of missing objects, or writes the held nodes and commits.
    fn ask_or_finish(&mut self) -> Result<Vec<Message>, SyncError> {
        let State::Trees { asked, queue, .. } = &mut self.state else {
            unreachable!("only fetching trees")
        };
        if !queue.is_empty() {
            let n = queue.len().min(MAX_WANT);
            *asked = queue.drain(..n).collect();
            let wants = asked
                .iter()
                .map(|q| Want {
                    hash: q.hash,
                    base: q.base,
                })
                .collect();
            return Ok(vec![Message::WantObjects(wants)]);
        }
        let State::Trees { commits, nodes, .. } = std::mem::replace(&mut self.state, State::Done)
        else {
            unreachable!()
        };
        for (hash, bytes) in nodes.iter().rev().chain(&commits) {
            self.store.object_store().write(hash, bytes)?;
            self.report.objects += 1;
            self.report.bytes += bytes.len() as u64;
        }
        self.report.commits = commits.len() as u64;
        self.store.object_store().sync()?;
        Ok(Vec::new())
    }
}

/// Moves a line to its next offer: distances 0, 1, 2, 4, 8, ... along first parents.
fn advance(store: &Store, line: &mut Line) -> Result<Option<Hash>, SyncError> {
    let Some(mut at) = line.next else {
        return Ok(None);
    };
    if line.walked > 0 {
        for _ in 0..line.gap {
            match store.commit(&at)?.parents.first() {
                Some(p) => at = *p,
                None => {
                    line.next = None;
                    return Ok(None);
                }
            }
        }
        line.gap = (line.gap * 2).min(1024);
    }
    line.walked += 1;
    line.next = Some(at);
    Ok(Some(at))
}

/// The objects a node of the directory at `path` refers to, each with the object at the
/// same place in `base` (the local node this one replaces): the entry of the same name,
/// or the trie child in the same slot.
fn children(node: &Node, base: Option<&Node>, path: &str) -> Vec<Queued> {
    match node {
        Node::Leaf(entries) => entries
            .iter()
            .map(|e| Queued {
                hash: e.hash,
                path: format!("{path}/{}", e.name),
                base: match base {
                    Some(Node::Leaf(old)) => old.iter().find(|o| o.name == e.name).map(|o| o.hash),
                    _ => None,
                },
            })
            .collect(),
        Node::Inode { children, .. } => children
            .iter()
            .map(|(slot, h)| Queued {
                hash: *h,
                path: path.to_string(),
                base: match base {
                    Some(Node::Inode { children: old, .. }) => {
                        old.iter().find(|(s, _)| s == slot).map(|(_, h)| *h)
                    }
                    _ => None,
                },
            })
            .collect(),
    }
}

fn name(m: &Message) -> &'static str {
    match m {
        Message::Hello { .. } => "Hello",
        Message::Refs(_) => "Refs",
        Message::Haves(_) => "Haves",
        Message::Acks(_) => "Acks",
        Message::WantCommits { .. } => "WantCommits",
        Message::WantObjects(_) => "WantObjects",
        Message::Objects(_) => "Objects",
        Message::Push(_) => "Push",
        Message::Pushed(_) => "Pushed",
        Message::Error(_) => "Error",
    }
}
