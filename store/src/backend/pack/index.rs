//! The index file: a sorted table from hash to record offset, covering a pack up to a
//! recorded length, memory-mapped and binary-searched.
//!
//! Layout: `KITHIDX\0` and format version (u32 LE) and four zero bytes; `count` entries of
//! `hash (32) | offset (u64 LE)` sorted by hash; a fanout table of 256 u32 LE (entry `b`
//! counts the entries whose first hash byte is at most `b`); the pack length covered (u64
//! LE); `count` (u64 LE); and blake3 over everything before it. An offset with
//! [`DAMAGED`] set points at a record that names that hash but did not verify when the
//! index was built. A file that fails any check is ignored and the index rebuilt.
//!
//! Memory: loading verifies the checksum by reading the file (not the mapping) and builds
//! a Bloom filter of 16 to 32 bits per entry on the way, so a lookup of an absent hash
//! (every new object written) seldom touches the mapping; and the mapping's pages are
//! dropped from the process every few hundred lookups. Importing a million small objects
//! so peaks near 34 MB resident; the index costs 40 bytes an object on disk.

use std::cmp::Ordering;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use super::io::positioned::read_exact_at;
use super::layout::{rename_durably, temp_path};
use crate::error::{Error, Result};
use crate::hash::Hash;

/// Index entries: hash and record offset.
pub(crate) type Entries = [(Hash, u64)];

/// Set in an entry's offset when the record there did not verify.
pub(crate) const DAMAGED: u64 = 1 << 63;

const MAGIC: [u8; 16] = *b"KITHIDX\0\x01\0\0\0\0\0\0\0";
const HEAD: u64 = MAGIC.len() as u64;
const ENTRY: u64 = 40;
const FANOUT: u64 = 256 * 4;
const FOOT: u64 = FANOUT + 8 + 8 + 32;
/// After this many lookups the mapping's pages are dropped from the process, so a large
/// index does not stay resident (the kernel's page cache still holds them).
const LOOKUPS_PER_RELEASE: u64 = 512;

/// A loaded index, or the empty one of a pack that has none yet.
pub(crate) struct Index {
    map: Option<map::Map>,
    file: Option<File>,
    fanout: Box<[u32; 256]>,
    count: u64,
    covered: u64,
    id: Option<(u64, u64)>,
    lookups: AtomicU64,
    path: PathBuf,
    bloom: Bloom,
}

impl Index {
    /// The index of nothing, covering the first `covered` bytes of the pack (its header).
    pub(crate) fn empty(covered: u64) -> Index {
        Index {
            map: None,
            file: None,
            fanout: Box::new([0; 256]),
            count: 0,
            covered,
            id: None,
            lookups: AtomicU64::new(0),
            path: PathBuf::new(),
            bloom: Bloom::new(0),
        }
    }

    /// Loads the index at `path` for a pack of `pack_len` bytes; `None` if it is missing,
    /// or damaged (with a warning), so the caller rebuilds it.
    pub(crate) fn load(path: &Path, pack_len: u64) -> Result<Option<Index>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", path, e)),
        };
        match Index::check(file, path, pack_len)? {
            Ok(index) => Ok(Some(index)),
            Err(why) => {
                tracing::warn!(
                    "ignoring index {}: {why}; rebuilding it from the pack",
                    path.display()
                );
                Ok(None)
            }
        }
    }

    /// Verifies an index file and maps it; `Err(why)` inside when it is not valid.
    fn check(file: File, path: &Path, pack_len: u64) -> Result<Result<Index, String>> {
        let io = |e| Error::io("read", path, e);
        let meta = file.metadata().map_err(io)?;
        let len = meta.len();
        if len < HEAD + FOOT || !(len - HEAD - FOOT).is_multiple_of(ENTRY) {
            return Ok(Err(format!("length {len} is not that of an index")));
        }
        let mut head = [0; HEAD as usize];
        read_exact_at(&file, &mut head, 0).map_err(io)?;
        if head != MAGIC {
            return Ok(Err("no KITHIDX header of a known version".into()));
        }
        let mut foot = vec![0; FOOT as usize];
        read_exact_at(&file, &mut foot, len - FOOT).map_err(io)?;
        let (sum, bloom) = checksum(&file, len - 32, (len - HEAD - FOOT) / ENTRY).map_err(io)?;
        if sum[..] != foot[FOOT as usize - 32..] {
            return Ok(Err("checksum does not match".into()));
        }
        let word = |at: usize| u64::from_le_bytes(foot[at..at + 8].try_into().expect("8 bytes"));
        let (covered, count) = (word(FANOUT as usize), word(FANOUT as usize + 8));
        let mut fanout = Box::new([0u32; 256]);
        for (i, slot) in fanout.iter_mut().enumerate() {
            *slot = u32::from_le_bytes(foot[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        }
        if count != (len - HEAD - FOOT) / ENTRY
            || fanout.windows(2).any(|w| w[0] > w[1])
            || u64::from(fanout[255]) != count
        {
            return Ok(Err("entry count or fanout table inconsistent".into()));
        }
        if covered > pack_len {
            return Ok(Err(format!(
                "covers {covered} bytes but the pack has {pack_len}"
            )));
        }
        let map = map::map(&file).map_err(|e| Error::io("mmap", path, e))?;
        let id = map::file_id(&meta);
        let lookups = AtomicU64::new(0);
        let path = path.to_path_buf();
        Ok(Ok(Index {
            map: Some(map),
            file: Some(file),
            fanout,
            count,
            covered,
            id,
            lookups,
            path,
            bloom,
        }))
    }

    /// How many bytes of the pack this index covers.
    pub(crate) fn covered(&self) -> u64 {
        self.covered
    }

    /// How many entries it has.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Whether `path` still names the file this index was loaded from.
    pub(crate) fn is_file(&self, path: &Path) -> bool {
        let id = std::fs::metadata(path).ok().and_then(|m| map::file_id(&m));
        id.is_some() && id == self.id
    }

    /// The offset (with the [`DAMAGED`] bit) of `hash`'s record, if indexed.
    pub(crate) fn lookup(&self, hash: &Hash) -> Option<u64> {
        let map = self.map.as_ref()?;
        if !self.bloom.may_contain(&hash.0) {
            return None;
        }
        self.release_pages_now_and_then(map);
        let first = usize::from(hash.0[0]);
        let lo = if first == 0 {
            0
        } else {
            u64::from(self.fanout[first - 1])
        };
        let hi = u64::from(self.fanout[first]);
        let (lo, hi) = narrow(map, hash, lo, hi);
        search(map, hash, lo, hi)
    }

    /// Drops the mapping's pages from the process now (an idle service's memory).
    pub(crate) fn release_pages(&self) {
        if let Some(map) = &self.map {
            map::release(map);
        }
    }

    fn release_pages_now_and_then(&self, map: &map::Map) {
        if self.lookups.fetch_add(1, AtomicOrdering::Relaxed) % LOOKUPS_PER_RELEASE
            == LOOKUPS_PER_RELEASE - 1
        {
            map::release(map);
        }
    }

    /// Calls `f` with every entry, in hash order, in batches read from the
    /// file (not the mapping, so they do not stay resident).
    pub(crate) fn for_each_batch(&self, f: &mut dyn FnMut(&Entries) -> Result<()>) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        const BATCH: u64 = 1024;
        let mut bytes = vec![0; (BATCH * ENTRY) as usize];
        let mut batch = Vec::with_capacity(BATCH as usize);
        let mut done = 0;
        while done < self.count {
            let n = (self.count - done).min(BATCH);
            let buf = &mut bytes[..(n * ENTRY) as usize];
            read_exact_at(file, buf, HEAD + done * ENTRY)
                .map_err(|e| Error::io("read", &self.path, e))?;
            batch.clear();
            batch.extend(buf.chunks_exact(ENTRY as usize).map(parse_entry));
            f(&batch)?;
            done += n;
        }
        Ok(())
    }

    /// Writes a new index at `path`: this one's entries merged with `tail` (entries past
    /// it, sorted by the caller), covering `covered` bytes; then renames it into place
    /// durably and returns it loaded. On equal hashes a valid tail entry wins: the tail
    /// holds a second copy only when the indexed one is damaged.
    pub(crate) fn write_merged(
        &self,
        path: &Path,
        tail: &[(Hash, u64)],
        covered: u64,
    ) -> Result<Index> {
        let temp = temp_path(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|e| Error::io("create", &temp, e))?;
        let mut out = IndexWriter::new(&file);
        let mut tail = tail.iter().copied().peekable();
        self.for_each_batch(&mut |batch| {
            for &(hash, offset) in batch {
                let mut chosen = offset;
                while let Some(&(t, o)) = tail.peek().filter(|(t, _)| *t <= hash) {
                    tail.next();
                    if t < hash {
                        out.push(t, o);
                    } else if o & DAMAGED == 0 {
                        chosen = o;
                    }
                }
                out.push(hash, chosen);
            }
            Ok(())
        })?;
        tail.for_each(|(t, o)| out.push(t, o));
        out.finish(covered)
            .map_err(|e| Error::io("write", &temp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &temp, e))?;
        rename_durably(&temp, path)?;
        Index::check(file, path, covered)?.map_err(|why| Error::Format {
            path: path.into(),
            detail: why,
        })
    }
}

/// How many entries on each side of the interpolated position a lookup first searches:
/// hashes are uniform, so the entry is there unless the bucket is very large.
const WINDOW: u64 = 48;

/// The part of `lo..hi` (sorted entries) where `hash` must be if present: hashes are
/// uniform, so its place is interpolated from the bytes after the first and a window
/// around it checked. A lookup so touches a page or two of the mapping instead of
/// the dozen a binary search of a large bucket does.
fn narrow(map: &map::Map, hash: &Hash, lo: u64, hi: u64) -> (u64, u64) {
    if hi - lo <= 2 * WINDOW {
        return (lo, hi);
    }
    let key = u64::from_be_bytes(hash.0[1..9].try_into().expect("8 bytes"));
    let guess = lo + ((u128::from(key) * u128::from(hi - lo)) >> 64) as u64;
    let (start, end) = (
        guess.saturating_sub(WINDOW).max(lo),
        (guess + WINDOW).min(hi),
    );
    let after_start = start == lo || entry(map, start - 1).0 < hash.0;
    let before_end = end == hi || entry(map, end).0 > hash.0;
    if after_start && before_end {
        (start, end)
    } else {
        (lo, hi)
    }
}

/// Binary search of the sorted entries `lo..hi` for `hash`.
fn search(map: &map::Map, hash: &Hash, mut lo: u64, mut hi: u64) -> Option<u64> {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let (h, offset) = entry(map, mid);
        match h.cmp(&hash.0) {
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
            Ordering::Equal => return Some(offset),
        }
    }
    None
}

fn entry(map: &map::Map, i: u64) -> ([u8; 32], u64) {
    let at = (HEAD + i * ENTRY) as usize;
    let (hash, offset) = parse_entry(&map[at..at + ENTRY as usize]);
    (hash.0, offset)
}

fn parse_entry(bytes: &[u8]) -> (Hash, u64) {
    let mut hash = [0; 32];
    hash.copy_from_slice(&bytes[..32]);
    (
        Hash(hash),
        u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes")),
    )
}

/// blake3 over the first `len` bytes of `file` (an index of `count` entries), read in
/// chunks, and a [`Bloom`] filter of the entries' hashes built on the way.
fn checksum(file: &File, len: u64, count: u64) -> std::io::Result<([u8; 32], Bloom)> {
    const CHUNK: u64 = 1638 * ENTRY;
    let mut hasher = blake3::Hasher::new();
    let mut bloom = Bloom::new(count);
    let mut buf = vec![0; CHUNK as usize];
    let entries_end = HEAD + count * ENTRY;
    let mut at = 0;
    while at < len {
        let stop = if at < HEAD {
            HEAD
        } else if at < entries_end {
            entries_end.min(at + CHUNK)
        } else {
            len
        };
        let chunk = &mut buf[..(stop - at) as usize];
        read_exact_at(file, chunk, at)?;
        hasher.update(chunk);
        if (HEAD..entries_end).contains(&at) {
            chunk
                .chunks_exact(ENTRY as usize)
                .for_each(|e| bloom.insert(&e[..32]));
        }
        at = stop;
    }
    Ok((*hasher.finalize().as_bytes(), bloom))
}

/// A Bloom filter over the indexed hashes, so that looking up an absent hash (every new
/// object written) rarely touches the mapped index and large indexes stay off the
/// resident set. The probes are bits of the (uniform) hash itself.
struct Bloom {
    bits: Vec<u64>,
    mask: u64,
}

impl Bloom {
    const PROBES: usize = 6;

    /// 16 to 32 bits per entry: about 0.1% false positives.
    fn new(count: u64) -> Bloom {
        let bits = (count * 16).next_power_of_two().max(64);
        Bloom {
            bits: vec![0; (bits / 64) as usize],
            mask: bits - 1,
        }
    }

    fn probes(&self, hash: &[u8]) -> [u64; Bloom::PROBES] {
        std::array::from_fn(|j| {
            let b = &hash[4 + 4 * j..8 + 4 * j];
            u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])) & self.mask
        })
    }

    fn insert(&mut self, hash: &[u8]) {
        for bit in self.probes(hash) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    fn may_contain(&self, hash: &[u8]) -> bool {
        let set = |bit: u64| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0;
        self.probes(hash).into_iter().all(set)
    }
}

/// Streams sorted entries into an index file, hashing as it goes.
struct IndexWriter<'a> {
    out: BufWriter<&'a File>,
    hasher: blake3::Hasher,
    fanout: [u32; 256],
    count: u64,
    last: Option<Hash>,
    error: Option<std::io::Error>,
}

impl<'a> IndexWriter<'a> {
    fn new(file: &'a File) -> IndexWriter<'a> {
        let mut writer = IndexWriter {
            out: BufWriter::with_capacity(1 << 16, file),
            hasher: blake3::Hasher::new(),
            fanout: [0; 256],
            count: 0,
            last: None,
            error: None,
        };
        writer.bytes(&MAGIC);
        writer
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        if self.error.is_none() {
            self.error = self.out.write_all(bytes).err();
        }
    }

    /// Adds an entry; hashes must come in increasing order (a repeat is skipped).
    fn push(&mut self, hash: Hash, offset: u64) {
        if self.last.is_some_and(|last| last >= hash) {
            return;
        }
        self.last = Some(hash);
        self.bytes(&hash.0);
        self.bytes(&offset.to_le_bytes());
        self.fanout[usize::from(hash.0[0])] += 1;
        self.count += 1;
    }

    fn finish(mut self, covered: u64) -> std::io::Result<()> {
        let mut total = 0;
        for i in 0..256 {
            total += self.fanout[i];
            self.bytes(&total.to_le_bytes());
        }
        self.bytes(&covered.to_le_bytes());
        let count = self.count;
        self.bytes(&count.to_le_bytes());
        let sum = *self.hasher.finalize().as_bytes();
        self.bytes(&sum);
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

/// The index's bytes: a read-only mapping on unix; elsewhere (the hermit unikernel has no
/// `mmap`) a copy in memory. `file_id` tells whether a path still names the same file.
#[cfg(unix)]
mod map {
    use std::fs::{File, Metadata};
    use std::os::unix::fs::MetadataExt;

    use memmap2::{Mmap, UncheckedAdvice};

    /// The mapped index.
    pub(super) type Map = Mmap;

    /// Maps `file` read-only.
    pub(super) fn map(file: &File) -> std::io::Result<Map> {
        // SAFETY: index files are never modified in place (a new index is written under a
        // temporary name and renamed over), so the mapped bytes do not change under us.
        unsafe { Mmap::map(file) }
    }

    /// Drops the mapping's pages from the process.
    pub(super) fn release(map: &Map) {
        // SAFETY: the mapping is a read-only view of a file that is never modified in
        // place; dropping its pages only makes later reads fault them in again.
        let _ = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) };
    }

    /// The file's device and inode.
    pub(super) fn file_id(meta: &Metadata) -> Option<(u64, u64)> {
        Some((meta.dev(), meta.ino()))
    }
}

/// The index's bytes: a read-only mapping on unix; elsewhere (the hermit unikernel has no
/// `mmap`) a copy in memory. `file_id` tells whether a path still names the same file.
#[cfg(not(unix))]
mod map {
    use std::fs::{File, Metadata};
    use std::io::Read;

    /// The index read into memory.
    pub(super) type Map = Vec<u8>;

    /// Reads all of `file`.
    pub(super) fn map(mut file: &File) -> std::io::Result<Map> {
        use std::io::{Seek, SeekFrom};
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Nothing to release: the copy is the index.
    pub(super) fn release(_map: &Map) {}

    /// Unknown without unix metadata: the index is reloaded whenever it is checked.
    pub(super) fn file_id(_meta: &Metadata) -> Option<(u64, u64)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index of `hashes` (offset = position in the list) written into `dir`.
    fn index_of(dir: &Path, hashes: &[Hash]) -> Index {
        let mut tail: Vec<(Hash, u64)> = hashes.iter().copied().zip(0..).collect();
        tail.sort_unstable();
        Index::empty(16)
            .write_merged(&dir.join("pack-1.idx"), &tail, 16)
            .expect("index written")
    }

    #[test]
    fn lookups_find_every_entry_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let hashes: Vec<Hash> = (0..60_000u32).map(|i| Hash::of(&i.to_le_bytes())).collect();
        let index = index_of(dir.path(), &hashes);
        for (i, hash) in hashes.iter().enumerate() {
            assert_eq!(index.lookup(hash), Some(i as u64));
        }
        let absent = (60_000..70_000u32).map(|i| Hash::of(&i.to_le_bytes()));
        absent.for_each(|hash| assert_eq!(index.lookup(&hash), None));
    }

    #[test]
    fn lookups_in_skewed_buckets_fall_back_to_the_whole_bucket() {
        // Hashes are uniform in a real store; these crowd one corner of the first
        // bucket, far from where interpolation looks, and one end of the last.
        let dir = tempfile::tempdir().unwrap();
        let skewed = |i: u32, first: u8, fill: u8| {
            let mut bytes = [fill; 32];
            bytes[0] = first;
            bytes[28..].copy_from_slice(&i.to_be_bytes());
            Hash(bytes)
        };
        let hashes: Vec<Hash> = (0..5_000)
            .map(|i| skewed(i, 0, 0))
            .chain((0..5_000).map(|i| skewed(i, 0xff, 0xff)))
            .chain((0..3).map(|i| skewed(i, 0x80, 0x80)))
            .collect();
        let index = index_of(dir.path(), &hashes);
        for (i, hash) in hashes.iter().enumerate() {
            assert_eq!(index.lookup(hash), Some(i as u64), "entry {i}");
        }
        assert_eq!(index.lookup(&skewed(5_001, 0, 0)), None);
        assert_eq!(index.lookup(&skewed(9, 0xff, 0xfe)), None);
    }
}
