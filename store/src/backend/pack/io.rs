//! Positioned reads and writes: the only way the pack touches its storage.
//!
//! Everything above this module sees a pack as a [`Storage`]: a byte array that can be
//! read at any offset, written at its end, cut short and flushed. Today that is a file; in
//! the unikernel it can be a range of a virtio-blk device without touching the record,
//! scan or index code.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A byte array with positioned access, as a pack needs it.
pub(crate) trait Storage: Send + Sync {
    /// What to name in messages: the file's path.
    fn path(&self) -> &Path;
    /// The current size in bytes.
    fn size(&self) -> Result<u64>;
    /// Reads into `buf` from `offset`; returns fewer bytes than asked only at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize>;
    /// Writes all of `bytes` at `offset`.
    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()>;
    /// Cuts the storage to `len` bytes.
    fn truncate(&self, len: u64) -> Result<()>;
    /// Makes every write so far durable.
    fn sync(&self) -> Result<()>;
}

/// A [`Storage`] backed by a file.
pub(crate) struct FileStorage {
    file: File,
    path: PathBuf,
}

impl FileStorage {
    /// Opens an existing file for reading and writing.
    pub(crate) fn open(path: &Path) -> Result<FileStorage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        Ok(FileStorage {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Creates (or empties) a file.
    pub(crate) fn create(path: &Path) -> Result<FileStorage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io("create", path, e))?;
        Ok(FileStorage {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl Storage for FileStorage {
    fn path(&self) -> &Path {
        &self.path
    }

    fn size(&self) -> Result<u64> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?;
        Ok(meta.len())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match positioned::read_at(&self.file, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", &self.path, e)),
            }
        }
        Ok(done)
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        positioned::write_all_at(&self.file, bytes, offset)
            .map_err(|e| Error::io("write", &self.path, e))
    }

    fn truncate(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io("truncate", &self.path, e))
    }

    fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("fsync", &self.path, e))
    }
}

/// Positioned reads and writes on a [`File`]: `pread`/`pwrite` on unix; elsewhere (the
/// hermit unikernel has no positional I/O) a seek and a read or write under one lock.
pub(crate) mod positioned {
    use std::fs::File;
    use std::io::Result;

    #[cfg(unix)]
    use std::os::unix::fs::FileExt;

    /// Reads into `buf` from `offset`; fewer bytes only at the end of the file.
    #[cfg(unix)]
    pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> Result<usize> {
        file.read_at(buf, offset)
    }

    /// Fills `buf` from `offset`.
    #[cfg(unix)]
    pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<()> {
        file.read_exact_at(buf, offset)
    }

    /// Writes all of `bytes` at `offset`.
    #[cfg(unix)]
    pub(crate) fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> Result<()> {
        file.write_all_at(bytes, offset)
    }

    #[cfg(not(unix))]
    static SEEK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Runs `f` on `file` after seeking to `offset`, with no other positioned call between.
    #[cfg(not(unix))]
    fn at<T>(file: &File, offset: u64, f: impl FnOnce(&mut &File) -> Result<T>) -> Result<T> {
        use std::io::{Seek, SeekFrom};
        let _held = SEEK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        f(&mut file)
    }

    /// Reads into `buf` from `offset`; fewer bytes only at the end of the file.
    #[cfg(not(unix))]
    pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> Result<usize> {
        at(file, offset, |f| std::io::Read::read(f, buf))
    }

    /// Fills `buf` from `offset`.
    #[cfg(not(unix))]
    pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<()> {
        at(file, offset, |f| std::io::Read::read_exact(f, buf))
    }

    /// Writes all of `bytes` at `offset`.
    #[cfg(not(unix))]
    pub(crate) fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> Result<()> {
        at(file, offset, |f| std::io::Write::write_all(f, bytes))
    }
}
