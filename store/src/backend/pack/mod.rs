//! The pack backend: objects in an append-only pack file with a sorted index, refs as
//! files, all in one folder that several processes (a service and the CLI) share safely.
//!
//! # On-disk format
//!
//! ```text
//! CURRENT          "kith-store 1 pack <generation>\n": which pack is live; a store exists iff it does
//! pack-<g>.pack    "KITHPACK" 01 00 00 00 00 00 00 00, then records, appended only
//! pack-<g>.idx     sorted hash -> offset table covering the pack up to a recorded length
//! refs/<name>      a ref: two checksummed slots, the newer one its value (`/` in names makes folders)
//! logs/<name>      the ref's earlier values, one hex hash a line, oldest first
//! pack.lock        flock: held by whoever appends, trims or rewrites the index
//! refs.lock        flock: held while a ref changes
//! gc.lock          flock: the maintenance lock (shared by transactions, exclusive for gc)
//! ```
//!
//! A record is `MAGIC d3 4b 52 01 | payload length (u32 LE) | blake3 hash (32) | payload`,
//! the payload a codec byte (0 raw, 1 raw deflate with the inflated size prepended, used
//! only when smaller) and the object's canonical bytes in that codec. A record is valid when its
//! payload decodes to bytes with the recorded hash; every read checks that.
//!
//! The index is `KITHIDX\0 01 00 00 00 00 00 00 00`, then `count` entries of `hash (32) |
//! offset (u64 LE)` sorted by hash, a fanout table of 256 u32 LE (entry `b` counts the
//! entries whose first byte is at most `b`), the pack length it covers (u64 LE), `count`
//! (u64 LE), and blake3 over everything before. Offset bit 63 marks a record that names
//! the hash but did not verify. Records past the covered length are kept in memory until
//! the index is rewritten (past 64k of them, or on close when cheap).
//!
//! # Why a crash loses nothing acknowledged
//!
//! - [`ObjectStore::write`] only buffers (spilling to the pack, unsynced, past a few MB).
//!   [`ObjectStore::sync`] appends the buffer under `pack.lock` and fsyncs the pack before
//!   it returns. Bytes before an acknowledged sync are never written again.
//! - The index is written only after an fsync of the pack, so it never covers bytes that
//!   could vanish; it is written to a temporary file, fsynced, renamed over, and the
//!   folder fsynced. If it is missing, fails its checksum or claims more than the pack
//!   holds, it is ignored and rebuilt by scanning the pack.
//! - Opening a store, or taking `pack.lock` to append, scans the pack past what is known.
//!   A bad record with a valid record after it (found by searching for the magic) is
//!   damage: kept, skipped, reported, and reads of the hash it names return
//!   [`crate::Error::Corrupt`]. A bad record with nothing valid after it is a torn tail
//!   from an interrupted append, never acknowledged, and is trimmed.
//! - An indexed record that fails to verify when read is remembered as bad: `contains`
//!   then says no, so writing the object again (a sync from a replica) appends a good copy
//!   that takes its place, in this process, in others (which look for another copy when
//!   theirs fails) and in the next index.
//! - A ref moves only after the objects it names are synced (the [`crate::Store`]'s
//!   order), by writing the slot its file is not using and fdatasyncing, so it names the
//!   old commit or the new one (see `refs.rs`).
//! - Garbage collection copies the kept records into a new generation, fsyncs it and
//!   its index, and only then switches `CURRENT` (temporary file, fsync, rename, fsync
//!   folder) and deletes the old files.
//!
//! # Readers and writers in several processes
//!
//! Readers take no lock. On a miss a reader checks `CURRENT` (garbage collection may have
//! switched generations), reloads the index if it was rewritten, and scans what other
//! processes appended; without `pack.lock` it stops in front of a record that does not
//! verify, since that may be one being written, so it never sees half a record.
//!
//! # Limits
//!
//! - A bit flip in the last record looks like a torn tail and is trimmed (that object
//!   reads as absent, not damaged). A bit flip in a record's hash field makes the object
//!   read as absent. Neither ever returns wrong bytes.
//! - Searching past damage for the magic could land on a valid record embedded in a
//!   blob's raw bytes; that only ever yields bytes that verify against their hash.
//! - Garbage collection drops objects whose record no longer verifies (with a warning)
//!   and counts them as dropped. Its `keep` must not read from this store.
//! - One record holds at most 4 GiB.

mod gc;
mod index;
pub(crate) mod io;
mod layout;
mod lock;
pub(crate) mod record;
mod refs;
pub(crate) mod scan;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) use self::layout::write_atomic;
pub use refs::FileRefs;

use self::index::{DAMAGED, Index};
use self::io::{FileStorage, Storage};
use self::layout::{
    CURRENT, GC_LOCK, PACK_LOCK, index_path, pack_path, read_current, write_current,
};
use self::lock::LockFile;
use self::record::PACK_HEADER;
use self::scan::{Stop, scan};
use super::{LockGuard, ObjectStore, RetainReport};
use crate::error::{Error, Result};
use crate::hash::Hash;

/// Buffered writes spill to the pack (without fsync) past this many bytes.
const SPILL_AT: usize = 4 << 20;
/// How many records a scan adds to the in-memory tail before it may rewrite the index.
const SCAN_BATCH: usize = 16_384;

/// Creates a store in `dir` (made if missing; it may hold other files, but no store).
pub fn create(dir: &Path) -> Result<(Arc<PackObjects>, Arc<FileRefs>)> {
    if dir.join(CURRENT).exists() {
        return Err(Error::StoreExists(dir.to_path_buf()));
    }
    layout::create_dirs(dir)?;
    let pack = FileStorage::create(&pack_path(dir, 1))?;
    pack.write_at(0, &PACK_HEADER)?;
    pack.sync()?;
    remove_if_present(&index_path(dir, 1))?;
    layout::sync_dir(dir)?;
    FileRefs::open(dir)?;
    write_current(dir, 1)?;
    open(dir)
}

/// Opens the store in `dir`, trimming a torn tail and rebuilding a damaged index.
pub fn open(dir: &Path) -> Result<(Arc<PackObjects>, Arc<FileRefs>)> {
    let objects = PackObjects::open(dir)?;
    let refs = FileRefs::open(dir)?;
    Ok((Arc::new(objects), Arc::new(refs)))
}

/// Objects in a pack file of a store folder.
pub struct PackObjects {
    dir: PathBuf,
    pack_lock: LockFile,
    view: RwLock<View>,
    writer: Mutex<Writer>,
}

/// What this process knows of the live generation.
struct View {
    generation: u64,
    pack: Arc<dyn Storage>,
    index: Arc<Index>,
    /// Records past the index, by hash (offsets may carry [`DAMAGED`]).
    tail: HashMap<Hash, u64>,
    /// How far the pack has been scanned: the index's coverage plus the tail.
    scanned: u64,
    /// Indexed objects whose record failed to verify when read: a copy in the tail, if
    /// one is written, takes their place.
    bad: HashSet<Hash>,
}

/// Writes not yet in the pack. Its mutex also serializes scans and appends in-process.
#[derive(Default)]
struct Writer {
    /// Encoded records, back to back.
    buffer: Vec<u8>,
    /// Where each buffered record starts.
    pending: HashMap<Hash, usize>,
    /// Whether anything was written (or found already present) since the last sync.
    touched: bool,
}

/// Where an object was found.
enum Found {
    /// A record in the pack, maybe known to be damaged.
    Pack {
        pack: Arc<dyn Storage>,
        offset: u64,
        damaged: bool,
    },
    /// A record still in the write buffer.
    Buffered(Vec<u8>),
}

impl View {
    fn load(dir: &Path, generation: u64) -> Result<View> {
        let pack: Arc<dyn Storage> = Arc::new(FileStorage::open(&pack_path(dir, generation))?);
        record::check_pack_header(&*pack)?;
        let index = Index::load(&index_path(dir, generation), pack.size()?)?
            .unwrap_or_else(|| Index::empty(PACK_HEADER.len() as u64));
        let scanned = index.covered();
        Ok(View {
            generation,
            pack,
            index: Arc::new(index),
            tail: HashMap::new(),
            scanned,
            bad: HashSet::new(),
        })
    }

    /// The offset of `hash`'s record, with [`DAMAGED`] if only a damaged one is known.
    fn lookup(&self, hash: &Hash) -> Option<u64> {
        let bad = |o: u64| {
            if self.bad.contains(hash) {
                o | DAMAGED
            } else {
                o
            }
        };
        let indexed = self.index.lookup(hash).map(bad);
        match indexed {
            Some(offset) if offset & DAMAGED == 0 => Some(offset),
            _ => self
                .tail
                .get(hash)
                .copied()
                .filter(|o| o & DAMAGED == 0)
                .or(indexed),
        }
    }

    fn has_good(&self, hash: &Hash) -> bool {
        self.lookup(hash).is_some_and(|o| o & DAMAGED == 0)
    }

    /// Notes a record found at `offset`, unless a better copy is known.
    fn add(&mut self, hash: Hash, offset: u64) {
        match self.lookup(&hash) {
            Some(known) if known & DAMAGED == 0 || offset & DAMAGED != 0 => {}
            _ => {
                self.tail.insert(hash, offset);
            }
        }
    }

    /// How large the tail may grow before the index is rewritten.
    fn tail_limit(&self) -> usize {
        (self.index.count() / 8).clamp(65_536, 262_144) as usize
    }
}

impl PackObjects {
    fn open(dir: &Path) -> Result<PackObjects> {
        let generation = read_current(dir)?;
        let objects = PackObjects {
            dir: dir.to_path_buf(),
            pack_lock: LockFile::open(&dir.join(PACK_LOCK))?,
            view: RwLock::new(View::load(dir, generation)?),
            writer: Mutex::new(Writer::default()),
        };
        let _writer = objects.writer();
        let _held = objects.pack_lock.lock()?;
        objects.catch_up(true)?;
        let rebuilt =
            objects.read_view().index.count() == 0 && !objects.read_view().tail.is_empty();
        if rebuilt {
            objects.rewrite_index()?;
        }
        drop(_held);
        drop(_writer);
        Ok(objects)
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_view(&self) -> RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// After the indexed record of `hash` failed to verify: notes it as bad (so writing
    /// it again stores a good copy), rescans the unindexed part of the pack for another
    /// copy, and reads that if there is one.
    fn read_another_copy(&self, hash: &Hash, damage: Error) -> Result<Option<Vec<u8>>> {
        let _writer = self.writer();
        self.write_view().bad.insert(*hash);
        // Without the pack lock a rescan could stop short at a record being written.
        let Some(_held) = self.pack_lock.try_lock()? else {
            return Err(damage);
        };
        {
            let mut view = self.write_view();
            view.tail.clear();
            view.scanned = view.index.covered();
        }
        self.catch_up(true)?;
        match self.find_in_view(hash, false) {
            Some(Found::Pack { pack, offset, .. }) => record::read(&*pack, offset, hash).map(Some),
            _ => Err(damage),
        }
    }

    /// Finds `hash`: in the pack as known, in the write buffer, then in the pack again
    /// after catching up with other processes.
    fn find(&self, hash: &Hash) -> Result<Option<Found>> {
        if let found @ Some(_) = self.find_in_view(hash, false) {
            return Ok(found);
        }
        let writer = self.writer();
        if let Some(&start) = writer.pending.get(hash) {
            return buffered(&writer.buffer[start..], hash).map(|b| Some(Found::Buffered(b)));
        }
        match self.pack_lock.try_lock()? {
            Some(_held) => self.catch_up(true)?,
            None => self.catch_up(false)?,
        }
        Ok(self.find_in_view(hash, true))
    }

    fn find_in_view(&self, hash: &Hash, damaged_too: bool) -> Option<Found> {
        let view = self.read_view();
        let offset = view.lookup(hash)?;
        let damaged = offset & DAMAGED != 0;
        (damaged_too || !damaged).then(|| Found::Pack {
            pack: Arc::clone(&view.pack),
            offset: offset & !DAMAGED,
            damaged,
        })
    }

    /// Brings the view up to date with the pack (the caller holds the writer mutex, and
    /// with `locked` the pack lock): a new generation, a rewritten index, new records.
    fn catch_up(&self, locked: bool) -> Result<()> {
        let generation = read_current(&self.dir)?;
        if generation != self.read_view().generation {
            *self.write_view() = View::load(&self.dir, generation)?;
        } else if !locked {
            self.reload_rewritten_index()?;
        }
        self.advance(locked)
    }

    /// Takes in an index another process rewrote, if the pack has grown since.
    fn reload_rewritten_index(&self) -> Result<()> {
        let (generation, size, scanned, replaced) = {
            let view = self.read_view();
            let path = index_path(&self.dir, view.generation);
            (
                view.generation,
                view.pack.size()?,
                view.scanned,
                !view.index.is_file(&path),
            )
        };
        if size == scanned || !replaced {
            return Ok(());
        }
        if let Some(index) = Index::load(&index_path(&self.dir, generation), size)? {
            let mut view = self.write_view();
            view.scanned = index.covered();
            view.index = Arc::new(index);
            view.tail = HashMap::new();
        }
        Ok(())
    }

    /// Scans the pack from where the view ends to where the pack ends. With the pack lock
    /// it trims a torn tail and rewrites the index when the tail grows large.
    fn advance(&self, locked: bool) -> Result<()> {
        loop {
            let (pack, from) = {
                let view = self.read_view();
                (Arc::clone(&view.pack), view.scanned)
            };
            let size = pack.size()?;
            if size < from {
                return Err(self.shrunk(&*pack, size, from));
            }
            let segment = scan(&*pack, from, size, locked, SCAN_BATCH)?;
            {
                let mut view = self.write_view();
                segment
                    .entries
                    .into_iter()
                    .for_each(|(h, o)| view.add(h, o));
                view.scanned = segment.next;
            }
            if segment.stop == Stop::Torn {
                trim(&*pack, segment.next, size)?;
            }
            if locked && self.read_view().tail.len() > self.read_view().tail_limit() {
                self.rewrite_index()?;
            }
            if segment.stop != Stop::Limit {
                return Ok(());
            }
        }
    }

    fn shrunk(&self, pack: &dyn Storage, size: u64, from: u64) -> Error {
        let detail = format!("the pack shrank to {size} bytes below the {from} already read");
        Error::Format {
            path: pack.path().to_path_buf(),
            detail,
        }
    }

    /// Writes the index anew to cover everything scanned (caller holds the pack lock).
    fn rewrite_index(&self) -> Result<()> {
        let (generation, pack, covered) = {
            let view = self.read_view();
            (view.generation, Arc::clone(&view.pack), view.scanned)
        };
        pack.sync()?;
        let new = write_index(&self.read_view())?;
        let mut view = self.write_view();
        if view.generation == generation && view.scanned == covered {
            view.index = Arc::new(new);
            view.tail = HashMap::new();
        }
        Ok(())
    }

    /// Appends the write buffer to the pack under the pack lock, fsyncing it if `durable`.
    fn spill(&self, writer: &mut Writer, durable: bool) -> Result<()> {
        let _held = self.pack_lock.lock()?;
        self.catch_up(true)?;
        if !writer.buffer.is_empty() {
            self.append(writer)?;
        }
        if durable {
            self.read_view().pack.sync()?;
        }
        if self.read_view().tail.len() > self.read_view().tail_limit() {
            self.rewrite_index()?;
        }
        Ok(())
    }

    /// Appends the buffered records no one else appended meanwhile (caller holds the
    /// pack lock and has caught up), and empties the buffer.
    fn append(&self, writer: &mut Writer) -> Result<()> {
        let (pack, base) = {
            let view = self.read_view();
            (Arc::clone(&view.pack), view.scanned)
        };
        let mut starts: Vec<(usize, Hash)> = writer.pending.iter().map(|(h, s)| (*s, *h)).collect();
        starts.sort_unstable();
        let mut bytes = Vec::with_capacity(writer.buffer.len());
        let mut placed = Vec::with_capacity(starts.len());
        for (i, &(start, hash)) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map_or(writer.buffer.len(), |next| next.0);
            if !self.read_view().has_good(&hash) {
                placed.push((hash, base + bytes.len() as u64));
                bytes.extend_from_slice(&writer.buffer[start..end]);
            }
        }
        pack.write_at(base, &bytes)?;
        let mut view = self.write_view();
        placed.into_iter().for_each(|(h, o)| view.add(h, o));
        view.scanned = base + bytes.len() as u64;
        writer.buffer.clear();
        writer.pending.clear();
        Ok(())
    }

    /// Every hash this process can see, without holding any lock while `f` runs.
    fn snapshot_hashes(&self) -> (Arc<Index>, Vec<Hash>) {
        let mut extra: Vec<Hash> = {
            let view = self.read_view();
            let tail = view.tail.keys().filter(|h| view.index.lookup(h).is_none());
            tail.copied().collect()
        };
        let writer = self.writer();
        let view = self.read_view();
        extra.extend(writer.pending.keys().filter(|h| view.lookup(h).is_none()));
        (Arc::clone(&view.index), extra)
    }
}

/// Writes a view's index anew, covering everything it scanned; the caller has fsynced
/// the pack up to there.
fn write_index(view: &View) -> Result<Index> {
    let mut tail: Vec<(Hash, u64)> = view.tail.iter().map(|(h, o)| (*h, *o)).collect();
    tail.sort_unstable();
    let path = index_path(
        view.pack.path().parent().unwrap_or(Path::new(".")),
        view.generation,
    );
    view.index.write_merged(&path, &tail, view.scanned)
}

/// The canonical bytes of a record in the write buffer.
fn buffered(record: &[u8], hash: &Hash) -> Result<Vec<u8>> {
    let payload = record
        .get(record::HEADER_LEN as usize..)
        .unwrap_or_default();
    let header = record.first_chunk().map(record::Header::parse);
    let len = header.map_or(0, |h| h.len as usize);
    record::verify(hash, payload.get(..len).unwrap_or_default())
        .map(|c| c.into_owned())
        .map_err(|why| Error::Corrupt {
            hash: *hash,
            detail: format!("write buffer: {why}"),
        })
}

/// Cuts a torn tail off the pack (the caller holds the pack lock).
fn trim(pack: &dyn Storage, at: u64, size: u64) -> Result<()> {
    let path = pack.path().display();
    tracing::warn!(
        "trimming a torn tail of {} bytes from {path} at offset {at}",
        size - at
    );
    pack.truncate(at)?;
    pack.sync()
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

impl ObjectStore for PackObjects {
    fn read(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        match self.find(hash)? {
            None => Ok(None),
            Some(Found::Buffered(bytes)) => Ok(Some(bytes)),
            Some(Found::Pack {
                pack,
                offset,
                damaged,
            }) => match record::read(&*pack, offset, hash) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e @ Error::Corrupt { .. }) if !damaged => self.read_another_copy(hash, e),
                Err(e) => Err(e),
            },
        }
    }

    fn contains(&self, hash: &Hash) -> Result<bool> {
        Ok(match self.find(hash)? {
            Some(Found::Pack { damaged, .. }) => !damaged,
            Some(Found::Buffered(_)) => true,
            None => false,
        })
    }

    fn write(&self, hash: &Hash, canonical: &[u8]) -> Result<()> {
        let present = self.read_view().has_good(hash);
        let mut writer = self.writer();
        writer.touched = true;
        if present || writer.pending.contains_key(hash) {
            return Ok(());
        }
        let start = writer.buffer.len();
        record::encode(hash, canonical, &mut writer.buffer)?;
        writer.pending.insert(*hash, start);
        if writer.buffer.len() >= SPILL_AT {
            self.spill(&mut writer, false)?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let mut writer = self.writer();
        if writer.touched {
            self.spill(&mut writer, true)?;
            writer.touched = false;
        }
        Ok(())
    }

    fn for_each_hash(&self, f: &mut dyn FnMut(&Hash) -> Result<()>) -> Result<()> {
        {
            let _writer = self.writer();
            match self.pack_lock.try_lock()? {
                Some(_held) => self.catch_up(true)?,
                None => self.catch_up(false)?,
            }
        }
        let (index, extra) = self.snapshot_hashes();
        index.for_each_batch(&mut |batch| batch.iter().try_for_each(|(h, _)| f(h)))?;
        extra.iter().try_for_each(f)
    }

    fn retain(&self, keep: &dyn Fn(&Hash) -> bool) -> Result<RetainReport> {
        let mut writer = self.writer();
        self.spill(&mut writer, true)?;
        writer.touched = false;
        let _held = self.pack_lock.lock()?;
        self.catch_up(true)?;
        gc::retain(self, keep)
    }

    fn lock(&self, exclusive: bool) -> Result<LockGuard> {
        Ok(LockGuard::new(LockFile::hold(
            &self.dir.join(GC_LOCK),
            exclusive,
        )?))
    }

    fn release_memory(&self) {
        let mut view = self.write_view();
        view.index.release_pages();
        view.tail.shrink_to_fit();
        view.bad.shrink_to_fit();
    }
}

impl Drop for PackObjects {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::warn!(
                "syncing the pack in {} on close failed: {e}",
                self.dir.display()
            );
        }
        let worth = {
            let view = self.read_view();
            !view.tail.is_empty() && view.tail.len() as u64 * 8 >= view.index.count()
        };
        let _writer = self.writer();
        let rewritten = match self.pack_lock.try_lock() {
            Ok(Some(_held)) if worth => self.catch_up(true).and_then(|()| self.rewrite_index()),
            _ => Ok(()),
        };
        if let Err(e) = rewritten {
            tracing::warn!(
                "writing the index in {} on close failed: {e}",
                self.dir.display()
            );
        }
    }
}
