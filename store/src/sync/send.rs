//! The sending role: answers a receiver's questions from the local store.

use std::collections::HashSet;

use super::SyncError;
use super::message::{Message, Sent, Want};
use crate::hash::Hash;
use crate::store::Store;

/// Objects answered per [`Message::WantObjects`] at most.
pub const MAX_WANT: usize = 16_384;
/// An answer stops adding objects once it holds this many bytes (it always holds one),
/// so frames stay far below [`super::MAX_FRAME`] and a progress bar keeps moving.
const ANSWER_BYTES: usize = 4 << 20;

/// Answers [`Message::Haves`], [`Message::WantCommits`] and [`Message::WantObjects`].
pub struct Sender {
    store: Store,
}

impl Sender {
    /// A sender over `store`.
    pub fn new(store: Store) -> Sender {
        Sender { store }
    }

    /// The answer to one receiver message, or `None` if it is not a question for a sender.
    pub fn answer(&self, message: &Message) -> Result<Option<Message>, SyncError> {
        Ok(Some(match message {
            Message::Haves(commits) => Message::Acks(self.known(commits)?),
            Message::WantCommits { heads, common } => {
                Message::Objects(self.commits(heads, common)?)
            }
            Message::WantObjects(hashes) if hashes.len() > MAX_WANT => {
                return Err(SyncError::Protocol(format!(
                    "asked for {} objects at once; at most {MAX_WANT}",
                    hashes.len()
                )));
            }
            Message::WantObjects(hashes) => Message::Objects(self.some_objects(hashes)?),
            _ => return Ok(None),
        }))
    }

    fn known(&self, commits: &[Hash]) -> Result<Vec<Hash>, SyncError> {
        let mut out = Vec::new();
        for c in commits {
            if self.store.object_store().contains(c)? {
                out.push(*c);
            }
        }
        Ok(out)
    }

    /// The first of the wanted objects, up to [`ANSWER_BYTES`], each as a change of its
    /// base when that is smaller.
    fn some_objects(&self, wants: &[Want]) -> Result<Vec<Sent>, SyncError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for want in wants {
            if bytes >= ANSWER_BYTES {
                break;
            }
            let sent = match self.store.object_store().read(&want.hash)? {
                None => Sent::Missing,
                Some(target) => {
                    let base = match want.base {
                        Some(b) => self.store.object_store().read(&b)?,
                        None => None,
                    };
                    Sent::encode(target, base.as_deref())
                }
            };
            bytes += sent.len();
            out.push(sent);
        }
        Ok(out)
    }

    fn objects(&self, hashes: &[Hash]) -> Result<Vec<Sent>, SyncError> {
        hashes
            .iter()
            .map(|h| {
                Ok(self
                    .store
                    .object_store()
                    .read(h)?
                    .map_or(Sent::Missing, Sent::Full))
            })
            .collect()
    }

    /// The commits reachable from `heads` and not from `common`, parents before children.
    fn commits(&self, heads: &[Hash], common: &[Hash]) -> Result<Vec<Sent>, SyncError> {
        let mut present = Vec::new();
        for c in common {
            if self.store.object_store().contains(c)? {
                present.push(*c);
            }
        }
        let known = self.store.ancestors_of(present)?;
        let mut order = Vec::new();
        let mut done = HashSet::new();
        let mut stack: Vec<(Hash, bool)> = heads.iter().map(|h| (*h, false)).collect();
        while let Some((hash, parents_done)) = stack.pop() {
            if known.contains(&hash) || (!parents_done && done.contains(&hash)) {
                continue;
            }
            if parents_done {
                if done.insert(hash) {
                    order.push(hash);
                }
                continue;
            }
            let commit = self.store.commit(&hash)?;
            stack.push((hash, true));
            stack.extend(
                commit
                    .parents
                    .iter()
                    .filter(|p| !done.contains(*p))
                    .map(|p| (*p, false)),
            );
        }
        self.objects(&order)
    }
}
