//! How mail lives in the store: one folder per mailbox, each message a blob kept byte
//! for byte, its flags a small file beside it.
//!
//! ```text
//! /mail/<user>/<mailbox>[/<child mailbox>...]/
//!     .uidvalidity          decimal; fixed when the mailbox is made
//!     .uidnext              decimal; the next UID (merges as the larger of two)
//!     .modseq               decimal; the highest mod-sequence (CONDSTORE, RFC 7162)
//!     .cur/<uid>.eml        a message with its UID
//!     .cur/<uid>.flags      its flags, one per line (merges as sets, see `flags`)
//!     .cur/<uid>.modseq     decimal; its mod-sequence (absent: 1)
//!     .cur/<uid>.date       its INTERNALDATE as an APPEND gave it, `dd-Mon-yyyy
//!                           hh:mm:ss +zzzz` (absent: from its Received: or Date:)
//!     .new/<id>.eml         a message that has no UID yet (delivered by another
//!     .new/<id>.flags       replica, or imported from a Maildir); `id` names its bytes
//!     .vanished/<uid>.<modseq>  empty; the message with `uid` was expunged at `modseq`
//! ```
//!
//! Names starting with `.` are the mailbox's own; a child mailbox's name never starts
//! with one. A message's bytes are one blob however many mailboxes hold it, so a copy
//! or a move costs a directory entry. UIDs are given by one replica, the one serving
//! IMAP ([`Mailbox::assign_uids`]); every other replica adds messages under `.new/`, so
//! two replicas never give the same UID to different messages. A flag change rewrites
//! one small file: a tiny commit that syncs and merges on its own.
//!
//! Tombstones under `.vanished/` let QRESYNC clients (RFC 7162) learn which UIDs went
//! since they last looked. Each is an empty file named by what it says, so two
//! replicas' tombstones merge as a set union without conflicts. At most
//! [`MAX_TOMBSTONES`] are kept; the oldest go first, and a UID missing without a
//! tombstone counts as vanished at any mod-sequence.
//!
//! The counters (`.uidnext`, `.modseq` and a message's `<uid>.modseq`) merge as the
//! larger of the two numbers ([`CounterMerge`]), so replicas that both counted on
//! never conflict over them. That alone would not keep UIDs distinct (two replicas
//! giving UID 5 to different messages would conflict over `.cur/5.eml`), which is why
//! only the serving replica gives them.

use std::collections::{BTreeMap, BTreeSet};

use kith_store::{ContentMerge, EntryKind, Hash, Merged, Store, Transaction};

use crate::flags::{format_flags, parse_flags};

/// The file holding a mailbox's UIDVALIDITY.
pub const UIDVALIDITY: &str = ".uidvalidity";
/// The file holding a mailbox's next UID.
pub const UIDNEXT: &str = ".uidnext";
/// The file holding a mailbox's highest mod-sequence.
pub const MODSEQ: &str = ".modseq";
/// The folder of messages with UIDs.
pub const CUR: &str = ".cur";
/// The folder of messages waiting for a UID.
pub const NEW: &str = ".new";
/// The folder of tombstones of expunged UIDs.
pub const VANISHED: &str = ".vanished";
/// Most tombstones a mailbox keeps.
pub const MAX_TOMBSTONES: usize = 10_000;

/// One message of a mailbox as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Where it is: its UID, or its name under `.new/`.
    pub key: Key,
    /// The blob of its bytes.
    pub blob: Hash,
    /// Its flags (`\Seen`, `\Flagged`, keywords...).
    pub flags: BTreeSet<String>,
    /// The blob of its `.date` file (an INTERNALDATE an APPEND gave), if it has one.
    pub date: Option<Hash>,
}

/// A message's place in its mailbox.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// Under `.cur/` with this UID.
    Uid(u32),
    /// Under `.new/` with this name.
    New(String),
}

impl Key {
    /// The store path of its message file (`kind` is `eml` or `flags`) in `mailbox`.
    pub fn path(&self, mailbox: &str, kind: &str) -> String {
        match self {
            Key::Uid(uid) => format!("{mailbox}/{CUR}/{uid}.{kind}"),
            Key::New(id) => format!("{mailbox}/{NEW}/{id}.{kind}"),
        }
    }
}

/// Why a mailbox operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] kith_store::Error),
    /// A mailbox name cannot be used.
    #[error(
        "bad mailbox name {0:?}: names are `/`-separated parts, none empty or starting with `.`"
    )]
    BadName(String),
    /// A file of the mailbox does not hold what it should.
    #[error("{path}: {detail}")]
    Corrupt {
        /// The store path.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// One mailbox at a root of the store.
#[derive(Clone, Debug)]
pub struct Mailbox {
    /// Its folder, e.g. `/mail/me/INBOX`.
    pub path: String,
}

impl Mailbox {
    /// The mailbox `name` (`INBOX`, `Archive/2024`) of `user`.
    pub fn of(user: &str, name: &str) -> Result<Mailbox, Error> {
        check_name(user)?;
        check_name(name)?;
        Ok(Mailbox {
            path: format!("/mail/{user}/{name}"),
        })
    }

    /// The mailbox at a store folder.
    pub fn at(path: &str) -> Mailbox {
        Mailbox {
            path: path.trim_end_matches('/').to_string(),
        }
    }

    /// Makes the mailbox if it does not exist (UIDVALIDITY from the clock's seconds).
    pub fn create(&self, tx: &mut Transaction, uidvalidity: u32) -> Result<(), Error> {
        let file = format!("{}/{UIDVALIDITY}", self.path);
        if tx.get(&file)?.is_none() {
            tx.put(&file, format!("{uidvalidity}\n").as_bytes())?;
            tx.put(&format!("{}/{UIDNEXT}", self.path), b"1\n")?;
        }
        Ok(())
    }

    /// Whether the folder at `root` is a mailbox.
    pub fn exists(&self, store: &Store, root: &Hash) -> Result<bool, Error> {
        Ok(store
            .find(root, &format!("{}/{UIDVALIDITY}", self.path))?
            .is_some())
    }

    /// The mailbox's UIDVALIDITY and next UID.
    pub fn uids(&self, store: &Store, root: &Hash) -> Result<(u32, u32), Error> {
        let at = Source::Tree(store, root);
        let validity = self.number(at, UIDVALIDITY)?.unwrap_or(1);
        let next = self.number(at, UIDNEXT)?.unwrap_or(1);
        Ok((validity, next))
    }

    /// The mailbox's highest mod-sequence (1 when nothing was counted yet).
    pub fn highest_modseq(&self, store: &Store, root: &Hash) -> Result<u64, Error> {
        Ok(self
            .number(Source::Tree(store, root), MODSEQ)?
            .unwrap_or(1)
            .max(1))
    }

    /// Counts one more change: writes and returns the next mod-sequence.
    pub fn bump_modseq(&self, store: &Store, tx: &mut Transaction) -> Result<u64, Error> {
        let next = self
            .number(Source::Changes(store, tx), MODSEQ)?
            .unwrap_or(1)
            .max(1)
            + 1;
        tx.put(
            &format!("{}/{MODSEQ}", self.path),
            format!("{next}\n").as_bytes(),
        )?;
        Ok(next)
    }

    /// Sets the mod-sequence of the message with `uid`.
    pub fn set_modseq(&self, tx: &mut Transaction, uid: u32, modseq: u64) -> Result<(), Error> {
        let path = Key::Uid(uid).path(&self.path, "modseq");
        tx.put(&path, format!("{modseq}\n").as_bytes())?;
        Ok(())
    }

    /// The mod-sequences written for messages (those without one have 1).
    pub fn modseqs(&self, store: &Store, root: &Hash) -> Result<BTreeMap<u32, u64>, Error> {
        let dir = format!("{}/{CUR}", self.path);
        let mut out = BTreeMap::new();
        if store.find(root, &dir)?.is_none() {
            return Ok(out);
        }
        for entry in store.list(root, &dir)? {
            let Some(uid) = entry
                .name
                .strip_suffix(".modseq")
                .and_then(|stem| stem.parse().ok())
            else {
                continue;
            };
            let text = String::from_utf8_lossy(&store.blob(&entry.hash)?).into_owned();
            if let Ok(modseq) = text.trim().parse() {
                out.insert(uid, modseq);
            }
        }
        Ok(out)
    }

    fn number<T: std::str::FromStr>(&self, at: Source<'_>, file: &str) -> Result<Option<T>, Error> {
        let path = format!("{}/{file}", self.path);
        let Some(bytes) = at.get(&path)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        text.trim().parse().map(Some).map_err(|_| Error::Corrupt {
            path,
            detail: format!("{:?} is not a number", text.trim()),
        })
    }

    /// Every message, UIDs first in order, then those waiting for one.
    pub fn messages(&self, store: &Store, root: &Hash) -> Result<Vec<Message>, Error> {
        let uid = |stem: &str| stem.parse().ok().map(Key::Uid);
        let at = Source::Tree(store, root);
        let mut out = self.folder(at, CUR, uid, usize::MAX)?;
        let new = |stem: &str| Some(Key::New(stem.to_string()));
        out.extend(self.folder(at, NEW, new, usize::MAX)?);
        Ok(out)
    }

    fn folder(
        &self,
        at: Source<'_>,
        folder: &str,
        key: impl Fn(&str) -> Option<Key>,
        limit: usize,
    ) -> Result<Vec<Message>, Error> {
        let dir = format!("{}/{folder}", self.path);
        let mut blobs: BTreeMap<Key, Hash> = BTreeMap::new();
        let mut flags: BTreeMap<Key, Hash> = BTreeMap::new();
        let mut dates: BTreeMap<Key, Hash> = BTreeMap::new();
        for entry in at.list(&dir)? {
            let Some((stem, kind)) = entry.name.rsplit_once('.') else {
                continue;
            };
            match (key(stem), kind, entry.kind) {
                (Some(k), "eml", EntryKind::File) => blobs.insert(k, entry.hash),
                (Some(k), "flags", EntryKind::File) => flags.insert(k, entry.hash),
                (Some(k), "date", EntryKind::File) => dates.insert(k, entry.hash),
                _ => None,
            };
        }
        let mut out = Vec::new();
        for (key, blob) in blobs.into_iter().take(limit) {
            let flags = match flags.get(&key) {
                Some(h) => parse_flags(&at.store().blob(h)?).ok_or_else(|| Error::Corrupt {
                    path: key.path(&self.path, "flags"),
                    detail: "not a flags file (one flag per line)".into(),
                })?,
                None => BTreeSet::new(),
            };
            let date = dates.get(&key).copied();
            out.push(Message {
                key,
                blob,
                flags,
                date,
            });
        }
        Ok(out)
    }

    /// Adds a message without a UID (to `.new/`); returns its key.
    pub fn add(
        &self,
        tx: &mut Transaction,
        bytes: &[u8],
        flags: &BTreeSet<String>,
    ) -> Result<Key, Error> {
        let key = Key::New(Hash::of(&kith_store::encode_blob(bytes)).to_hex()[..24].to_string());
        tx.put(&key.path(&self.path, "eml"), bytes)?;
        self.set_flags(tx, &key, flags)?;
        Ok(key)
    }

    /// Sets a message's flags (no file when there are none).
    pub fn set_flags(
        &self,
        tx: &mut Transaction,
        key: &Key,
        flags: &BTreeSet<String>,
    ) -> Result<(), Error> {
        let path = key.path(&self.path, "flags");
        if flags.is_empty() {
            tx.remove(&path)?;
        } else {
            tx.put(&path, &format_flags(flags))?;
        }
        Ok(())
    }

    /// Removes a message and its flags.
    pub fn expunge(&self, tx: &mut Transaction, key: &Key) -> Result<(), Error> {
        tx.remove(&key.path(&self.path, "eml"))?;
        tx.remove(&key.path(&self.path, "flags"))?;
        tx.remove(&key.path(&self.path, "modseq"))?;
        tx.remove(&key.path(&self.path, "date"))?;
        Ok(())
    }

    /// Keeps `date` (`dd-Mon-yyyy hh:mm:ss +zzzz`) as the INTERNALDATE of `uid`.
    pub fn set_date(&self, tx: &mut Transaction, uid: u32, date: &str) -> Result<(), Error> {
        tx.put(
            &Key::Uid(uid).path(&self.path, "date"),
            format!("{date}\n").as_bytes(),
        )?;
        Ok(())
    }

    /// Expunges the messages with `uids` as one change: counts one mod-sequence, leaves a
    /// tombstone for each and drops the oldest tombstones beyond [`MAX_TOMBSTONES`].
    /// Returns the mod-sequence of the expunge.
    pub fn expunge_uids(
        &self,
        store: &Store,
        tx: &mut Transaction,
        uids: &[u32],
    ) -> Result<u64, Error> {
        let modseq = self.bump_modseq(store, tx)?;
        for &uid in uids {
            self.expunge(tx, &Key::Uid(uid))?;
            tx.put(&format!("{}/{VANISHED}/{uid}.{modseq}", self.path), b"")?;
        }
        let mut all: Vec<(u64, String)> = self
            .tombstone_entries(store, &tx.tree()?)?
            .into_iter()
            .map(|(_, modseq, name)| (modseq, name))
            .collect();
        if all.len() > MAX_TOMBSTONES {
            all.sort_unstable();
            for (_, name) in &all[..all.len() - MAX_TOMBSTONES] {
                tx.remove(&format!("{}/{VANISHED}/{name}", self.path))?;
            }
        }
        Ok(modseq)
    }

    /// The expunged UIDs still remembered, each with the mod-sequence of its expunge
    /// (the highest when replicas expunged it apart).
    pub fn tombstones(&self, store: &Store, root: &Hash) -> Result<BTreeMap<u32, u64>, Error> {
        let mut out = BTreeMap::new();
        for (uid, modseq, _) in self.tombstone_entries(store, root)? {
            let at = out.entry(uid).or_insert(modseq);
            *at = (*at).max(modseq);
        }
        Ok(out)
    }

    fn tombstone_entries(
        &self,
        store: &Store,
        root: &Hash,
    ) -> Result<Vec<(u32, u64, String)>, Error> {
        let entries = store.list(root, &format!("{}/{VANISHED}", self.path))?;
        Ok(entries
            .into_iter()
            .filter_map(|e| {
                let (uid, modseq) = e.name.split_once('.')?;
                Some((uid.parse().ok()?, modseq.parse().ok()?, e.name))
            })
            .collect())
    }

    /// Puts an already stored blob in the mailbox under the next UID, with `flags`;
    /// returns the UID. A copy or an append on the replica serving IMAP.
    pub fn put_with_uid(
        &self,
        store: &Store,
        tx: &mut Transaction,
        blob: Hash,
        flags: &BTreeSet<String>,
    ) -> Result<u32, Error> {
        let next = self
            .number(Source::Changes(store, tx), UIDNEXT)?
            .unwrap_or(1);
        let key = Key::Uid(next);
        tx.set(&key.path(&self.path, "eml"), Some((EntryKind::File, blob)))?;
        self.set_flags(tx, &key, flags)?;
        let modseq = self.bump_modseq(store, tx)?;
        self.set_modseq(tx, next, modseq)?;
        tx.put(
            &format!("{}/{UIDNEXT}", self.path),
            format!("{}\n", next + 1).as_bytes(),
        )?;
        Ok(next)
    }

    /// Gives every message under `.new/` the next UID, in name order; returns the UIDs
    /// given. Only the replica serving IMAP does this.
    pub fn assign_uids(&self, store: &Store, tx: &mut Transaction) -> Result<Vec<u32>, Error> {
        self.assign_some_uids(store, tx, usize::MAX)
    }

    /// Like [`Mailbox::assign_uids`], for at most `limit` messages: a large import then
    /// takes several small commits instead of one that holds everything in memory.
    pub fn assign_some_uids(
        &self,
        store: &Store,
        tx: &mut Transaction,
        limit: usize,
    ) -> Result<Vec<u32>, Error> {
        let at = Source::Changes(store, tx);
        let mut next = self.number(at, UIDNEXT)?.unwrap_or(1);
        let new = |stem: &str| Some(Key::New(stem.to_string()));
        let waiting = self.folder(at, NEW, new, limit)?;
        let mut given = Vec::new();
        for message in waiting {
            let uid = Key::Uid(next);
            tx.set(
                &uid.path(&self.path, "eml"),
                Some((EntryKind::File, message.blob)),
            )?;
            self.set_flags(tx, &uid, &message.flags)?;
            self.expunge(tx, &message.key)?;
            given.push(next);
            next += 1;
        }
        if !given.is_empty() {
            tx.put(
                &format!("{}/{UIDNEXT}", self.path),
                format!("{next}\n").as_bytes(),
            )?;
            let modseq = self.bump_modseq(store, tx)?;
            for uid in &given {
                self.set_modseq(tx, *uid, modseq)?;
            }
        }
        Ok(given)
    }
}

/// Where a mailbox's files are read: a tree, or a transaction with its changes so far
/// (read without writing a tree for every question, as a delivery asks several).
#[derive(Clone, Copy)]
enum Source<'a> {
    Tree(&'a Store, &'a Hash),
    Changes(&'a Store, &'a Transaction),
}

impl Source<'_> {
    fn store(&self) -> &Store {
        match self {
            Source::Tree(store, _) | Source::Changes(store, _) => store,
        }
    }

    fn get(&self, path: &str) -> kith_store::Result<Option<Vec<u8>>> {
        match self {
            Source::Tree(store, root) => store.get(root, path),
            Source::Changes(_, tx) => tx.get(path),
        }
    }

    fn list(&self, path: &str) -> kith_store::Result<Vec<kith_store::Entry>> {
        match self {
            Source::Tree(store, root) => store.list(root, path),
            Source::Changes(_, tx) => tx.list(path),
        }
    }
}

/// The names of `user`'s mailboxes at `root` (`INBOX`, `Archive/2024`), sorted.
pub fn mailboxes(store: &Store, root: &Hash, user: &str) -> Result<Vec<String>, Error> {
    check_name(user)?;
    let mut out = Vec::new();
    collect(store, root, &format!("/mail/{user}"), "", &mut out)?;
    out.sort();
    Ok(out)
}

fn collect(
    store: &Store,
    root: &Hash,
    dir: &str,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<(), Error> {
    if !matches!(store.find(root, dir)?, Some((EntryKind::Dir, _))) {
        return Ok(());
    }
    for entry in store.list(root, dir)? {
        if entry.kind != EntryKind::Dir || entry.name.starts_with('.') {
            continue;
        }
        let name = format!("{prefix}{}", entry.name);
        let path = format!("{dir}/{}", entry.name);
        if Mailbox::at(&path).exists(store, root)? {
            out.push(name.clone());
        }
        collect(store, root, &path, &format!("{name}/"), out)?;
    }
    Ok(())
}

/// The store's merge function for the counter files: the larger number wins. When one
/// side removed the file and the other changed it, `removal_wins` decides: a message's
/// `<uid>.modseq` goes with its expunge; a mailbox's counters conflict instead.
#[derive(Clone, Copy, Debug)]
pub struct CounterMerge {
    /// Whether a removal beats a change on the other side.
    pub removal_wins: bool,
}

impl ContentMerge for CounterMerge {
    fn merge(&self, base: Option<&[u8]>, ours: Option<&[u8]>, theirs: Option<&[u8]>) -> Merged {
        if let Some(done) = Merged::trivial(base, ours, theirs) {
            return done;
        }
        match (ours, theirs) {
            (Some(o), Some(t)) => match (counter(o), counter(t)) {
                (Some(a), Some(b)) => Merged::Clean(Some(if a >= b { o } else { t }.to_vec())),
                _ => Merged::Conflict("both sides changed a counter that is not a number".into()),
            },
            _ if self.removal_wins => Merged::Clean(None),
            _ => Merged::Conflict("one side removed a counter the other changed".into()),
        }
    }
}

/// The number in a counter file (decimal, an optional final LF).
fn counter(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.strip_suffix('\n').unwrap_or(text).parse().ok()
}

/// Checks a `/`-separated mailbox or user name.
fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name
            .split('/')
            .all(|p| !p.is_empty() && !p.starts_with('.') && kith_store::validate_name(p).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_wait_under_new_until_the_serving_replica_gives_uids() {
        let store = Store::memory();
        let inbox = Mailbox::of("me", "INBOX").unwrap();
        let mut tx = store.transaction("main").unwrap();
        inbox.create(&mut tx, 7).unwrap();
        let seen = BTreeSet::from(["\\Seen".to_string()]);
        inbox
            .add(&mut tx, b"Subject: a\r\n\r\nA\r\n", &BTreeSet::new())
            .unwrap();
        inbox
            .add(&mut tx, b"Subject: b\r\n\r\nB\r\n", &seen)
            .unwrap();
        let root = tx.tree().unwrap();
        assert_eq!(inbox.messages(&store, &root).unwrap().len(), 2);
        assert_eq!(inbox.assign_uids(&store, &mut tx).unwrap(), vec![1, 2]);
        let root = tx.tree().unwrap();
        let messages = inbox.messages(&store, &root).unwrap();
        assert_eq!(
            messages.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
            [Key::Uid(1), Key::Uid(2)]
        );
        assert!(messages.iter().any(|m| m.flags == seen));
        assert_eq!(inbox.uids(&store, &root).unwrap(), (7, 3));
        inbox.expunge(&mut tx, &Key::Uid(2)).unwrap();
        inbox
            .add(&mut tx, b"Subject: c\r\n\r\nC\r\n", &BTreeSet::new())
            .unwrap();
        assert_eq!(
            inbox.assign_uids(&store, &mut tx).unwrap(),
            vec![3],
            "UIDs are never reused"
        );
        assert!(Mailbox::of("me", ".hidden").is_err() && Mailbox::of("me", "a//b").is_err());
    }

    #[test]
    fn counters_merge_as_the_larger_number() {
        let mailbox = CounterMerge {
            removal_wins: false,
        };
        let clean = |b: &[u8]| Merged::Clean(Some(b.to_vec()));
        assert_eq!(
            mailbox.merge(Some(b"5\n"), Some(b"9\n"), Some(b"12\n")),
            clean(b"12\n")
        );
        assert_eq!(
            mailbox.merge(Some(b"5\n"), Some(b"12\n"), Some(b"9\n")),
            clean(b"12\n")
        );
        assert_eq!(
            mailbox.merge(None, Some(b"3\n"), Some(b"2\n")),
            clean(b"3\n")
        );
        assert_eq!(
            mailbox.merge(Some(b"5\n"), Some(b"5\n"), Some(b"7\n")),
            clean(b"7\n")
        );
        assert!(matches!(
            mailbox.merge(Some(b"5\n"), Some(b"x\n"), Some(b"7\n")),
            Merged::Conflict(_)
        ));
        assert!(matches!(
            mailbox.merge(Some(b"5\n"), None, Some(b"7\n")),
            Merged::Conflict(_)
        ));
        let message = CounterMerge { removal_wins: true };
        assert_eq!(
            message.merge(Some(b"5\n"), None, Some(b"7\n")),
            Merged::Clean(None)
        );
    }
}
