//! Garbage collection: copy the records to keep into a new pack generation, then switch.
//!
//! Order: write the new pack and fsync it, write its index (temporary file, fsync,
//! rename, fsync folder), switch `CURRENT` the same way, and only then delete the old
//! generation's files. A crash before the switch leaves the old generation live (the half
//! written new one is overwritten by the next collection); a crash after it leaves only
//! stale files, removed by the next collection. A process still reading the old pack keeps
//! its open file and moves to the new generation on its next miss.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::index::{DAMAGED, Index};
use super::io::{FileStorage, Storage};
use super::layout::{index_path, pack_path, sync_dir, write_current};
use super::record::{self, PACK_HEADER};
use super::scan::{Stop, scan};
use super::{PackObjects, SCAN_BATCH, SPILL_AT, View, remove_if_present, write_index};
use crate::backend::RetainReport;
use crate::error::{Error, Result};
use crate::hash::Hash;

/// Copies the kept objects into the next generation and makes it current. The caller
/// holds the writer mutex and the pack lock, has flushed and caught up.
pub(super) fn retain(objects: &PackObjects, keep: &dyn Fn(&Hash) -> bool) -> Result<RetainReport> {
    let dir = &objects.dir;
    let (old_generation, old_pack, end) = {
        let view = objects.read_view();
        (view.generation, Arc::clone(&view.pack), view.scanned)
    };
    let mut report = RetainReport {
        bytes_before: old_pack.size()? + file_len(&index_path(dir, old_generation))?,
        ..RetainReport::default()
    };
    let mut copy = Copy::start(dir, old_generation + 1)?;
    let mut pos = PACK_HEADER.len() as u64;
    loop {
        let segment = scan(&*old_pack, pos, end, true, SCAN_BATCH)?;
        for (hash, offset) in segment.entries {
            let known = objects.read_view().lookup(&hash).map(|o| o & !DAMAGED);
            if known != Some(offset & !DAMAGED) {
                continue; // a second copy of an object
            } else if offset & DAMAGED != 0 {
                tracing::warn!(
                    "dropping damaged object {hash} at offset {} of the old pack",
                    offset & !DAMAGED
                );
                report.dropped += 1;
            } else if keep(&hash) {
                copy.record(hash, &record::read_raw(&*old_pack, offset)?)?;
                report.kept += 1;
            } else {
                report.dropped += 1;
            }
        }
        if segment.stop != Stop::Limit {
            break;
        }
        pos = segment.next;
    }
    let new = copy.finish(dir)?;
    report.bytes_after = new.pack.size()? + file_len(&index_path(dir, new.generation))?;
    *objects.write_view() = new;
    remove_other_generations(dir, old_generation + 1)?;
    Ok(report)
}

/// A new generation being written.
struct Copy {
    view: View,
    buffer: Vec<u8>,
    placed: Vec<(Hash, u64)>,
}

impl Copy {
    fn start(dir: &Path, generation: u64) -> Result<Copy> {
        remove_if_present(&index_path(dir, generation))?;
        let pack: Arc<dyn Storage> = Arc::new(FileStorage::create(&pack_path(dir, generation))?);
        pack.write_at(0, &PACK_HEADER)?;
        let start = PACK_HEADER.len() as u64;
        let index = Arc::new(Index::empty(start));
        let view = View {
            generation,
            pack,
            index,
            tail: HashMap::new(),
            scanned: start,
            bad: HashSet::new(),
        };
        Ok(Copy {
            view,
            buffer: Vec::new(),
            placed: Vec::new(),
        })
    }

    fn record(&mut self, hash: Hash, bytes: &[u8]) -> Result<()> {
        self.placed
            .push((hash, self.view.scanned + self.buffer.len() as u64));
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= SPILL_AT {
            self.flush()?;
        }
        if self.view.tail.len() > self.view.tail_limit() {
            self.view.pack.sync()?;
            self.view.index = Arc::new(write_index(&self.view)?);
            self.view.tail.clear();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.view.pack.write_at(self.view.scanned, &self.buffer)?;
        self.view.scanned += self.buffer.len() as u64;
        self.buffer.clear();
        let view = &mut self.view;
        self.placed.drain(..).for_each(|(h, o)| view.add(h, o));
        Ok(())
    }

    /// Makes the new generation durable and current.
    fn finish(mut self, dir: &Path) -> Result<View> {
        self.flush()?;
        self.view.pack.sync()?;
        sync_dir(dir)?;
        self.view.index = Arc::new(write_index(&self.view)?);
        self.view.tail.clear();
        write_current(dir, self.view.generation)?;
        Ok(self.view)
    }
}

fn file_len(path: &Path) -> Result<u64> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

/// Deletes the pack and index files (and their temporaries) of every other generation.
fn remove_other_generations(dir: &Path, live: u64) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let name = entry.map_err(|e| Error::io("list", dir, e))?.file_name();
        let name = name.to_string_lossy();
        let stem = name.trim_start_matches('.').trim_end_matches(".tmp");
        let generation = stem
            .strip_prefix("pack-")
            .and_then(|s| s.strip_suffix(".pack").or_else(|| s.strip_suffix(".idx")))
            .and_then(|g| g.parse::<u64>().ok());
        if generation.is_some_and(|g| g != live) {
            remove_if_present(&dir.join(name.as_ref()))?;
        }
    }
    sync_dir(dir)
}
