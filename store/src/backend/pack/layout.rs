//! File names in a store folder, the `CURRENT` file, and the helpers that make a file
//! or a rename durable.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The file naming the current pack generation; its existence makes a folder a store.
pub(crate) const CURRENT: &str = "CURRENT";
/// Held exclusively by whoever appends to the pack, trims it or rewrites its index.
pub(crate) const PACK_LOCK: &str = "pack.lock";
/// The maintenance lock: shared by transactions, exclusive for garbage collection.
pub(crate) const GC_LOCK: &str = "gc.lock";
/// Held exclusively while a ref changes.
pub(crate) const REFS_LOCK: &str = "refs.lock";
/// The folder of ref files.
pub(crate) const REFS: &str = "refs";
/// The folder of reflogs.
pub(crate) const LOGS: &str = "logs";

const CURRENT_PREFIX: &str = "kith-store 1 pack ";

/// The pack file of a generation.
pub(crate) fn pack_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("pack-{generation}.pack"))
}

/// The index file of a generation.
pub(crate) fn index_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("pack-{generation}.idx"))
}

/// The generation `CURRENT` names; [`Error::NoStore`] when there is none.
pub(crate) fn read_current(dir: &Path) -> Result<u64> {
    let path = dir.join(CURRENT);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::NoStore(dir.to_path_buf())),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| {
            text.strip_prefix(CURRENT_PREFIX)?
                .strip_suffix('\n')?
                .parse()
                .ok()
        })
        .ok_or_else(|| Error::Format {
            path,
            detail: "CURRENT does not name a pack generation".into(),
        })
}

/// Durably makes `generation` the current one.
pub(crate) fn write_current(dir: &Path, generation: u64) -> Result<()> {
    write_atomic(
        &dir.join(CURRENT),
        format!("{CURRENT_PREFIX}{generation}\n").as_bytes(),
    )
}

/// The temporary name a file is written under before it is renamed into place. It
/// starts with a dot, so it is never a valid ref name.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content:
/// write a temporary file, fsync it, rename it over, fsync the folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = temp_path(path);
    let mut file = File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("write", &temp, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", &temp, e))?;
    rename_durably(&temp, path)
}

/// Renames `from` over `to` and fsyncs the folder, so the rename survives a crash.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io("rename", from, e))?;
    sync_dir(parent(to))
}

/// Fsyncs a folder, making the creation, rename or removal of its entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("fsync", dir, e))
}

/// The folder holding `path`.
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` and any missing folders above it, fsyncing each new folder's parent.
pub(crate) fn create_dirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    create_dirs(parent(dir))?;
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent(dir)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create folder", dir, e)),
    }
}

/// Opens (creating if needed) a file to append to.
pub(crate) fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}
