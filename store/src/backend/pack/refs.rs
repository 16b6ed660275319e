//! Refs as files: `refs/<name>` holds the ref's value in one of two slots, and
//! `logs/<name>` appends every value a ref had before (its reflog).
//!
//! A ref file is two 4 KiB blocks, each starting with a slot, one text line:
//! `kith-ref <sequence> <hash> <check>` (sequence and check in hex, the check the first
//! eight bytes of the blake3 of what precedes it). The slot with the higher sequence
//! number that verifies is the ref's value.
//!
//! A change runs under an exclusive lock on `refs.lock`: read the current value, compare,
//! append the old value to the reflog, then write the next sequence number and the new
//! value over the *other* slot and fdatasync the file. The file keeps its size and blocks,
//! so that is one data flush, with no rename and no folder fsync. A torn slot (a power cut
//! mid-write, on storage without atomic sectors) fails its check and the other slot, the
//! previous value, stays in force; the slots live in separate blocks so a torn write of one
//! cannot damage the other. Readers take no lock: a slot caught mid-write fails its check
//! just the same, so they see the old value or the new one.
//!
//! A new ref is written whole to a temporary file, fsynced and renamed into place (and the
//! folder fsynced); a deleted one is removed and the folder fsynced. A file in the format
//! before slots (the hash in hex and a newline) still reads, and is rewritten in slots on
//! its next change. The reflog, a recovery aid for damaged heads, is not fsynced after each
//! line: a crash may lose its last lines, never a ref.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::io::positioned;
use super::layout::{
    LOGS, REFS, REFS_LOCK, create_dirs, open_append, parent, sync_dir, write_atomic,
};
use super::lock::LockFile;
use crate::backend::{RefStore, validate_ref_name};
use crate::error::{Error, Result};
use crate::hash::Hash;

/// Refs stored one file per ref in a store folder.
pub struct FileRefs {
    dir: PathBuf,
    lock: Mutex<LockFile>,
}

impl FileRefs {
    /// The refs of the store in `dir`, creating their folders if missing.
    pub(crate) fn open(dir: &Path) -> Result<FileRefs> {
        create_dirs(&dir.join(REFS))?;
        create_dirs(&dir.join(LOGS))?;
        let lock = Mutex::new(LockFile::open(&dir.join(REFS_LOCK))?);
        Ok(FileRefs {
            dir: dir.to_path_buf(),
            lock,
        })
    }

    fn path(&self, folder: &str, name: &str) -> Result<PathBuf> {
        if !validate_ref_name(name) {
            return Err(Error::BadBranch(name.to_string()));
        }
        Ok(self.dir.join(folder).join(name))
    }

    /// Moves the ref at `path` from `current` to `new`.
    fn set(&self, path: &Path, current: Option<Value>, new: Option<Hash>) -> Result<()> {
        match (current, new) {
            (Some(value), Some(hash)) if value.seq > 0 => overwrite_slot(path, value.seq + 1, hash),
            (current, Some(hash)) => {
                let seq = current.map_or(1, |value| value.seq + 1);
                create_dirs(parent(path))?;
                write_atomic(path, &encode_file(seq, hash))
            }
            (_, None) => {
                fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?;
                sync_dir(parent(path))?;
                self.prune(parent(path));
                Ok(())
            }
        }
    }

    /// Removes folders left empty under `refs/` after a delete; best effort.
    fn prune(&self, mut dir: &Path) {
        let root = self.dir.join(REFS);
        while dir != root && dir.starts_with(&root) && fs::remove_dir(dir).is_ok() {
            dir = parent(dir);
        }
    }

    fn collect(&self, dir: &Path, prefix: &str, out: &mut Vec<(String, Hash)>) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", dir, e))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let kind = entry
                .file_type()
                .map_err(|e| Error::io("stat", entry.path(), e))?;
            if !validate_ref_name(&name) {
                continue;
            } else if kind.is_dir() {
                self.collect(&entry.path(), &format!("{name}/"), out)?;
            } else if let Some(value) = read_ref(&entry.path())? {
                out.push((name, value.hash));
            }
        }
        Ok(())
    }
}

/// The start of a slot's line.
const SLOT_MAGIC: &str = "kith-ref";
/// Where each slot starts; the file is two blocks of this size.
const SLOT_SPACING: usize = 4096;

/// A ref's value as read from its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Value {
    hash: Hash,
    /// The sequence number of the slot it came from; 0 for the format before slots, whose
    /// file is rewritten whole on its next change (slots start at 1).
    seq: u64,
}

/// The value in a ref file, `None` if there is no such file.
fn read_ref(path: &Path) -> Result<Option<Value>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    decode_file(&bytes).map(Some).ok_or_else(|| Error::Format {
        path: path.to_path_buf(),
        detail: "a ref file holds two slots of which at least one verifies".into(),
    })
}

/// The value of a ref file's bytes: the newest slot that verifies, or the one line of
/// the format before slots.
fn decode_file(bytes: &[u8]) -> Option<Value> {
    if let Some(hash) = parse_line(bytes) {
        return Some(Value { hash, seq: 0 });
    }
    bytes
        .chunks(SLOT_SPACING)
        .take(2)
        .filter_map(decode_slot)
        .max_by_key(|value| value.seq)
}

/// The slot at the start of `block`, if it is whole and verifies.
fn decode_slot(block: &[u8]) -> Option<Value> {
    let end = block.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&block[..end]).ok()?;
    let (signed, check) = line.rsplit_once(' ')?;
    if check != slot_check(signed) {
        return None;
    }
    let mut fields = signed.split(' ');
    let (magic, seq, hash) = (fields.next()?, fields.next()?, fields.next()?);
    if magic != SLOT_MAGIC || fields.next().is_some() {
        return None;
    }
    Some(Value {
        hash: hash.parse().ok()?,
        seq: u64::from_str_radix(seq, 16).ok()?,
    })
}

/// A slot's line.
fn encode_slot(seq: u64, hash: Hash) -> String {
    let signed = format!("{SLOT_MAGIC} {seq:016x} {hash}");
    let check = slot_check(&signed);
    format!("{signed} {check}\n")
}

/// The check of a slot: the first eight bytes of the blake3 of `signed`, in hex.
fn slot_check(signed: &str) -> String {
    let digest = blake3::hash(signed.as_bytes());
    digest.to_hex()[..16].to_string()
}

/// Where the slot of sequence number `seq` starts.
fn slot_offset(seq: u64) -> usize {
    (seq % 2) as usize * SLOT_SPACING
}

/// A whole ref file whose one filled slot holds `hash` at sequence number `seq`.
fn encode_file(seq: u64, hash: Hash) -> Vec<u8> {
    let mut file = vec![0; 2 * SLOT_SPACING];
    let slot = encode_slot(seq, hash);
    let at = slot_offset(seq);
    file[at..at + slot.len()].copy_from_slice(slot.as_bytes());
    file
}

/// Writes `hash` at sequence number `seq` over its slot of the ref file at `path`, and
/// makes it durable.
fn overwrite_slot(path: &Path, seq: u64, hash: Hash) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    positioned::write_all_at(
        &file,
        encode_slot(seq, hash).as_bytes(),
        slot_offset(seq) as u64,
    )
    .map_err(|e| Error::io("write", path, e))?;
    file.sync_data().map_err(|e| Error::io("fsync", path, e))
}

/// The hash on a line of hex and a newline (a reflog's line, or a ref file from before
/// slots).
fn parse_line(bytes: &[u8]) -> Option<Hash> {
    std::str::from_utf8(bytes.strip_suffix(b"\n")?)
        .ok()?
        .parse()
        .ok()
}

/// Appends `old` to a reflog (fsynced only when the log is created).
fn append_log(path: &Path, old: Hash) -> Result<()> {
    create_dirs(parent(path))?;
    let fresh = !path.exists();
    let mut file = open_append(path)?;
    file.write_all(format!("{old}\n").as_bytes())
        .map_err(|e| Error::io("write", path, e))?;
    if fresh {
        file.sync_all().map_err(|e| Error::io("fsync", path, e))?;
        sync_dir(parent(path))?;
    }
    Ok(())
}

impl RefStore for FileRefs {
    fn get(&self, name: &str) -> Result<Option<Hash>> {
        Ok(read_ref(&self.path(REFS, name)?)?.map(|value| value.hash))
    }

    fn compare_and_set(
        &self,
        name: &str,
        expected: Option<Hash>,
        new: Option<Hash>,
    ) -> Result<bool> {
        let path = self.path(REFS, name)?;
        let lock = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let _held = lock.lock()?;
        let current = read_ref(&path)?;
        if current.map(|value| value.hash) != expected {
            return Ok(false);
        }
        if let Some(old) = current {
            append_log(&self.path(LOGS, name)?, old.hash)?;
        }
        if current.is_some() || new.is_some() {
            self.set(&path, current, new)?;
        }
        Ok(true)
    }

    fn list(&self) -> Result<Vec<(String, Hash)>> {
        let mut out = Vec::new();
        self.collect(&self.dir.join(REFS), "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn history(&self, name: &str) -> Result<Vec<Hash>> {
        let path = self.path(LOGS, name)?;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(Error::io("read", path, e)),
        };
        // A crash while appending can leave a last line without its newline: not yet logged.
        let complete = bytes.len() - bytes.iter().rev().take_while(|&&b| b != b'\n').count();
        let mut values = bytes[..complete]
            .split_inclusive(|&b| b == b'\n')
            .map(|line| {
                parse_line(line).ok_or_else(|| Error::Format {
                    path: path.clone(),
                    detail: "a reflog holds lines of 64 hex digits".into(),
                })
            })
            .collect::<Result<Vec<Hash>>>()?;
        values.reverse();
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> Hash {
        Hash::of(&[n])
    }

    fn refs() -> (tempfile::TempDir, FileRefs) {
        let dir = tempfile::tempdir().unwrap();
        let refs = FileRefs::open(dir.path()).unwrap();
        (dir, refs)
    }

    #[test]
    fn changes_alternate_slots_and_keep_the_file_in_place() {
        let (dir, refs) = refs();
        let path = dir.path().join("refs/main");
        assert!(refs.compare_and_set("main", None, Some(hash(1))).unwrap());
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let created = inode(&path);
        for n in 2..6 {
            assert!(
                refs.compare_and_set("main", Some(hash(n - 1)), Some(hash(n)))
                    .unwrap()
            );
            assert_eq!(refs.get("main").unwrap(), Some(hash(n)));
        }
        assert_eq!(inode(&path), created, "changed in place, not renamed");
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 * SLOT_SPACING);
        let seqs: Vec<u64> = (bytes.chunks(SLOT_SPACING))
            .map(|block| decode_slot(block).unwrap().seq)
            .collect();
        assert_eq!(seqs, [4, 5]);
        assert_eq!(refs.history("main").unwrap(), [4, 3, 2, 1].map(hash));
    }

    #[test]
    fn a_torn_slot_leaves_the_previous_value() {
        let (dir, refs) = refs();
        let path = dir.path().join("refs/main");
        refs.compare_and_set("main", None, Some(hash(1))).unwrap();
        refs.compare_and_set("main", Some(hash(1)), Some(hash(2)))
            .unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let newest = slot_offset(2);
        for cut in [1, 20, 60, 100] {
            let mut torn = bytes.clone();
            torn[newest + cut..newest + SLOT_SPACING].fill(0);
            fs::write(&path, &torn).unwrap();
            assert_eq!(refs.get("main").unwrap(), Some(hash(1)), "cut at {cut}");
        }
        bytes[newest + 30] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(refs.get("main").unwrap(), Some(hash(1)), "a flipped bit");
        assert!(
            refs.compare_and_set("main", Some(hash(1)), Some(hash(3)))
                .unwrap()
        );
        assert_eq!(refs.get("main").unwrap(), Some(hash(3)));
        assert!(matches!(
            refs.compare_and_set("main", Some(hash(1)), Some(hash(4))),
            Ok(false)
        ));
    }

    #[test]
    fn a_ref_from_before_slots_reads_and_moves_into_slots() {
        let (dir, refs) = refs();
        let path = dir.path().join("refs/team/main");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("{}\n", hash(1))).unwrap();
        assert_eq!(refs.get("team/main").unwrap(), Some(hash(1)));
        assert!(
            refs.compare_and_set("team/main", Some(hash(1)), Some(hash(2)))
                .unwrap()
        );
        assert_eq!(fs::read(&path).unwrap().len(), 2 * SLOT_SPACING);
        assert_eq!(refs.get("team/main").unwrap(), Some(hash(2)));
        assert!(
            refs.compare_and_set("team/main", Some(hash(2)), None)
                .unwrap()
        );
        assert!(!path.exists() && !path.parent().unwrap().exists());
    }

    #[test]
    fn a_file_with_no_slot_that_verifies_is_an_error() {
        let (dir, refs) = refs();
        fs::write(dir.path().join("refs/main"), vec![0; 2 * SLOT_SPACING]).unwrap();
        assert!(matches!(refs.get("main"), Err(Error::Format { .. })));
    }
}
