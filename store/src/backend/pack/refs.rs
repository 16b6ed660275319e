//! Refs as files: `refs/<name>` holds the commit's hash in hex and a newline, and
//! `logs/<name>` appends every value a ref had before (its reflog).
//!
//! A change runs under an exclusive lock on `refs.lock`: read the current value, compare,
//! append the old value to the reflog, write the new value to a temporary file, fsync,
//! rename it over the ref, fsync the folder. Readers take no lock: a rename is atomic,
//! so they see the old value or the new one, and a crash leaves one or the other. The
//! reflog, a recovery aid for damaged heads, is not fsynced after each line: a crash may
//! lose its last lines, never a ref.

use std::fs;
use std::io::ErrorKind;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

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

    fn set(&self, path: &Path, new: Option<Hash>) -> Result<()> {
        match new {
            Some(hash) => {
                create_dirs(parent(path))?;
                write_atomic(path, format!("{hash}\n").as_bytes())
            }
            None => {
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
            } else if let Some(hash) = read_ref(&entry.path())? {
                out.push((name, hash));
            }
        }
        Ok(())
    }
}

/// The hash in a ref file, `None` if there is no such file.
fn read_ref(path: &Path) -> Result<Option<Hash>> {
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
    parse_line(&bytes).map(Some).ok_or_else(|| Error::Format {
        path: path.to_path_buf(),
        detail: "a ref file holds 64 hex digits and a newline".into(),
    })
}

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
        read_ref(&self.path(REFS, name)?)
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
        if current != expected {
            return Ok(false);
        }
        if let Some(old) = current {
            append_log(&self.path(LOGS, name)?, old)?;
        }
        if current.is_some() || new.is_some() {
            self.set(&path, new)?;
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
