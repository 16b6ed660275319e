//! Advisory file locks (flock) that order writers across processes.
//!
//! A lock is taken on an open file description, so two handles in one process exclude
//! each other like two processes do. Within one [`LockFile`] handle callers serialize
//! through a mutex of their own first.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An open lock file.
pub(crate) struct LockFile {
    file: File,
    path: PathBuf,
}

/// An exclusive hold on a [`LockFile`], released on drop.
pub(crate) struct Held<'a>(&'a LockFile);

impl LockFile {
    /// Opens (creating if needed) the lock file at `path`.
    pub(crate) fn open(path: &Path) -> Result<LockFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        Ok(LockFile {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Waits for the lock, exclusively.
    pub(crate) fn lock(&self) -> Result<Held<'_>> {
        self.file
            .lock()
            .map_err(|e| Error::io("lock", &self.path, e))?;
        Ok(Held(self))
    }

    /// Takes the lock exclusively if no one holds it.
    pub(crate) fn try_lock(&self) -> Result<Option<Held<'_>>> {
        match self.file.try_lock() {
            Ok(()) => Ok(Some(Held(self))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(Error::io("lock", &self.path, e)),
        }
    }

    /// Opens the lock file anew and waits for the lock, shared or exclusive; the returned
    /// file holds it until closed.
    pub(crate) fn hold(path: &Path, exclusive: bool) -> Result<File> {
        let lock = LockFile::open(path)?;
        let taken = if exclusive {
            lock.file.lock()
        } else {
            lock.file.lock_shared()
        };
        taken.map_err(|e| Error::io("lock", path, e))?;
        Ok(lock.file)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.file.unlock() {
            tracing::warn!(path = %self.0.path.display(), "unlocking failed: {e}");
        }
    }
}
