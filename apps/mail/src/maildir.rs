//! Mailboxes as Maildirs and mbox files, so notmuch, mutt and mbsync users can work
//! offline on the files and hand their changes back as one commit.
//!
//! Export writes `cur/<uid>.<blob>,U=<uid>:2,<flags>` for a message with a UID and
//! `cur/<id>:2,<flags>` for one still waiting for it, with the Maildir flag letters
//! (`D`raft, `F`lagged, `P`assed, `R`eplied, `S`een, `T`rashed) standing for `\Draft`,
//! `\Flagged`, `$Forwarded`, `\Answered`, `\Seen` and `\Deleted`. Other keywords stay in
//! the store. Import reads the folder back: a known file's flag letters replace the
//! message's standard flags, a file gone is an expunge, and any other file in `cur/` or
//! `new/` is a new message. Message bytes are never changed on the way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kith_store::{Hash, Store, Transaction};

use crate::mailbox::{Error, Key, Mailbox};

/// The Maildir flag letters and the IMAP flags they stand for, in Maildir's order.
const LETTERS: [(char, &str); 6] = [
    ('D', "\\Draft"),
    ('F', "\\Flagged"),
    ('P', "$Forwarded"),
    ('R', "\\Answered"),
    ('S', "\\Seen"),
    ('T', "\\Deleted"),
];

/// What an import changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// New messages.
    pub added: usize,
    /// Messages whose flags changed.
    pub flagged: usize,
    /// Messages removed.
    pub expunged: usize,
}

/// A message file's name in a Maildir.
pub fn file_name(message: &crate::mailbox::Message) -> String {
    let letters = letters(&message.flags);
    match &message.key {
        Key::Uid(uid) => format!("{uid}.{},U={uid}:2,{letters}", &message.blob.to_hex()[..12]),
        Key::New(id) => format!("{id}:2,{letters}"),
    }
}

fn letters(flags: &BTreeSet<String>) -> String {
    LETTERS
        .iter()
        .filter(|(_, flag)| flags.contains(*flag))
        .map(|(c, _)| *c)
        .collect()
}

/// Writes `mailbox` at `root` as a Maildir in `dir` (`cur/`, `new/`, `tmp/`); files of
/// messages no longer in it are deleted. Returns the messages written.
pub fn export(store: &Store, root: &Hash, mailbox: &Mailbox, dir: &Path) -> Result<usize, Error> {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| io(dir, e))?;
    }
    let mut keep = BTreeSet::new();
    let messages = mailbox.messages(store, root)?;
    for message in &messages {
        let path = dir.join("cur").join(file_name(message));
        if !path.exists() {
            let temp = dir.join("tmp").join(file_name(message));
            std::fs::write(&temp, store.blob(&message.blob)?).map_err(|e| io(&temp, e))?;
            std::fs::rename(&temp, &path).map_err(|e| io(&path, e))?;
        }
        keep.insert(path);
    }
    for file in files(dir)? {
        if !keep.contains(&file) {
            std::fs::remove_file(&file).map_err(|e| io(&file, e))?;
        }
    }
    Ok(messages.len())
}

/// Makes `mailbox` hold what the Maildir `dir` holds (see the module's rules), in `tx`.
pub fn import(
    store: &Store,
    tx: &mut Transaction,
    mailbox: &Mailbox,
    dir: &Path,
) -> Result<Imported, Error> {
    let root = tx.tree()?;
    let known: BTreeMap<Key, crate::mailbox::Message> = mailbox
        .messages(store, &root)?
        .into_iter()
        .map(|m| (m.key.clone(), m))
        .collect();
    let mut seen = BTreeSet::new();
    let mut report = Imported::default();
    for file in files(dir)? {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let (base, letters) = split_name(&name);
        let bytes = std::fs::read(&file).map_err(|e| io(&file, e))?;
        let flags = flags_of(letters);
        match key_of(base).and_then(|k| known.get(&k)) {
            Some(m) if store.blob(&m.blob)? == bytes => {
                seen.insert(m.key.clone());
                let merged = with_standard(&m.flags, &flags);
                if merged != m.flags {
                    mailbox.set_flags(tx, &m.key, &merged)?;
                    report.flagged += 1;
                }
            }
            _ => {
                let key = mailbox.add(tx, &bytes, &flags)?;
                seen.insert(key);
                report.added += 1;
            }
        }
    }
    for key in known.keys().filter(|k| !seen.contains(*k)) {
        mailbox.expunge(tx, key)?;
        report.expunged += 1;
    }
    Ok(report)
}

/// Adds every message of the mbox file `path` to `mailbox` (flags from `Status:` and
/// `X-Status:` headers are not read: mbox messages arrive unflagged); returns how many.
pub fn import_mbox(tx: &mut Transaction, mailbox: &Mailbox, path: &Path) -> Result<usize, Error> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let messages = split_mbox(&bytes).ok_or_else(|| Error::Corrupt {
        path: path.display().to_string(),
        detail: "not an mbox file: it does not start with a \"From \" line".into(),
    })?;
    for message in &messages {
        mailbox.add(tx, message, &BTreeSet::new())?;
    }
    Ok(messages.len())
}

/// The messages of an mbox (mboxrd: `>From ` lines lose one `>`); `None` if the bytes do
/// not start with a `From ` line.
pub fn split_mbox(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    if !bytes.starts_with(b"From ") {
        return if bytes.is_empty() {
            Some(Vec::new())
        } else {
            None
        };
    }
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            messages.push(Vec::new());
            continue;
        }
        let current = messages.last_mut()?;
        let quoted = line.iter().take_while(|b| **b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            current.extend_from_slice(&line[1..]);
        } else {
            current.extend_from_slice(line);
        }
    }
    for message in &mut messages {
        // The blank line that separates messages belongs to the mbox, not the message.
        if message.ends_with(b"\n\n") {
            message.pop();
        }
    }
    Some(messages)
}

/// A message file name's key part and its flag letters.
fn split_name(name: &str) -> (&str, &str) {
    match name.split_once(":2,") {
        Some((base, letters)) => (base, letters),
        None => (name.split(':').next().unwrap_or(name), ""),
    }
}

/// The message a file name stands for, if it is one Kith wrote.
fn key_of(base: &str) -> Option<Key> {
    if let Some((_, uid)) = base.split_once(",U=") {
        return uid.split(',').next()?.parse().ok().map(Key::Uid);
    }
    let id = base.split(',').next()?;
    (id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Key::New(id.into()))
}

fn flags_of(letters: &str) -> BTreeSet<String> {
    LETTERS
        .iter()
        .filter(|(c, _)| letters.contains(*c))
        .map(|(_, flag)| flag.to_string())
        .collect()
}

/// `old`'s keywords with the standard flags of `letters`.
fn with_standard(old: &BTreeSet<String>, standard: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = old
        .iter()
        .filter(|f| !LETTERS.iter().any(|(_, s)| s == f))
        .cloned()
        .collect();
    out.extend(standard.iter().cloned());
    out
}

/// The message files of a Maildir, in `cur/` and `new/`.
fn files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let folder = dir.join(sub);
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.map_err(|e| io(&folder, e))?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Store(kith_store::Error::io("maildir", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_messages_split_and_unquote() {
        let mbox = b"From a@b Mon Nov 23 10:00:00 2026\nSubject: one\n\n>From the start\n>>From kept\n\nFrom c@d Mon Nov 23 11:00:00 2026\nSubject: two\n\nbody\n";
        let messages = split_mbox(mbox).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0], b"Subject: one\n\nFrom the start\n>From kept\n");
        assert_eq!(messages[1], b"Subject: two\n\nbody\n");
        assert_eq!(split_mbox(b"Subject: not mbox\n"), None);
    }

    #[test]
    fn file_names_carry_uid_and_flags_back() {
        assert_eq!(key_of("17.0123456789ab,U=17"), Some(Key::Uid(17)));
        assert_eq!(split_name("17.x,U=17:2,FS"), ("17.x,U=17", "FS"));
        assert_eq!(key_of("1732363200.M1P2.host"), None);
        let flags = flags_of("RS");
        assert_eq!(letters(&flags), "RS");
        let old = BTreeSet::from(["$Label1".to_string(), "\\Seen".to_string()]);
        let merged = with_standard(&old, &flags_of("F"));
        assert_eq!(
            merged,
            BTreeSet::from(["$Label1".into(), "\\Flagged".into()])
        );
    }
}
