//! A whole store on one raw block device: the unikernel's `/dev/vda`, or a disk image
//! file on a host.
//!
//! Layout (offsets in bytes):
//!
//! ```text
//! 0        superblock: KITHDISK, version (u32 LE), the offsets of ref tables A and B,
//!          their length and the pack region's offset (u64 LE each), blake3 of all that
//! 4096     ref table A    \  each: KITHREFS, sequence number, pack end (u64 LE), count
//! 69632    ref table B    /  (u32 LE), (name length u16 LE, name, hash)..., blake3
//! 135168   pack region: exactly a pack file (KITHPACK header, then records)
//! ```
//!
//! Objects are buffered in memory and appended to the pack region by
//! [`ObjectStore::sync`]. A ref change first syncs the objects, then writes the complete
//! ref table into the older of the two slots with the next sequence number and the pack's
//! end; opening takes the valid table with the highest sequence number, so a torn table
//! write leaves the previous one in force. Opening scans the pack region up to the table's
//! pack end (stepping over damage), then on past it until the first record that does not
//! verify: that is where the next append goes. The index lives in memory. One process
//! owns a device, so there are no cross-process locks, no reflog and no garbage collection.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::pack::io::Storage;
use super::pack::record::{self, HEADER_LEN, PACK_HEADER};
use super::pack::scan::{Stop, scan};
use super::{LockGuard, ObjectStore, RefStore, RetainReport, validate_ref_name};
use crate::error::{Error, Result};
use crate::hash::Hash;

const DISK_MAGIC: [u8; 8] = *b"KITHDISK";
const VERSION: u32 = 1;
const TABLE_MAGIC: [u8; 8] = *b"KITHREFS";
const SUPERBLOCK_LEN: usize = 8 + 4 + 4 * 8 + 32;
/// Where ref table A starts.
const TABLE_A: u64 = 4096;
/// The length of each ref table.
const TABLE_LEN: u64 = 64 * 1024;
/// Where the pack region starts.
const PACK: u64 = TABLE_A + 2 * TABLE_LEN;
/// The smallest device a store fits on.
pub const MIN_SIZE: u64 = 1 << 20;
/// Set in the offsets of records a scan found damaged.
const DAMAGED: u64 = 1 << 63;

/// A block device, or a file standing in for one.
pub trait Device: Read + Write + Seek + Send + 'static {
    /// Makes every write so far durable.
    fn sync_device(&mut self) -> std::io::Result<()>;
}

impl Device for File {
    fn sync_device(&mut self) -> std::io::Result<()> {
        // On hermit a write is durable when it returns, and std's fsync fails.
        if cfg!(target_os = "hermit") {
            Ok(())
        } else {
            self.sync_data()
        }
    }
}

impl Device for std::io::Cursor<Vec<u8>> {
    fn sync_device(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The objects and refs of a store kept on one [`Device`]; implements both backend traits.
pub struct Disk<D: Device> {
    dev: Mutex<D>,
    name: PathBuf,
    region: u64,
    state: Mutex<State>,
}

/// What is known in memory.
struct State {
    refs: BTreeMap<String, Hash>,
    seq: u64,
    index: HashMap<Hash, u64>,
    end: u64,
    pending: Vec<u8>,
}

/// The pack region seen as a pack's [`Storage`].
struct Region<'a, D: Device> {
    dev: &'a Mutex<D>,
    name: &'a Path,
    len: u64,
}

impl Disk<File> {
    /// Opens the store on the device or disk image at `path`.
    pub fn open_path(path: &Path) -> Result<Disk<File>> {
        Disk::open(open_rw(path)?, path)
    }

    /// Writes an empty store onto the device or disk image at `path`, which must exist
    /// and hold at least [`MIN_SIZE`] bytes.
    pub fn format_path(path: &Path) -> Result<Disk<File>> {
        Disk::format(open_rw(path)?, path)
    }
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}

impl<D: Device> Disk<D> {
    /// Writes an empty store onto `dev` (named `name` in messages), erasing what was there.
    pub fn format(dev: D, name: &Path) -> Result<Disk<D>> {
        let disk = Disk::with(dev, name)?;
        let mut superblock = Vec::with_capacity(SUPERBLOCK_LEN);
        superblock.extend_from_slice(&DISK_MAGIC);
        superblock.extend_from_slice(&VERSION.to_le_bytes());
        for field in [TABLE_A, TABLE_A + TABLE_LEN, TABLE_LEN, PACK] {
            superblock.extend_from_slice(&field.to_le_bytes());
        }
        superblock.extend_from_slice(blake3::hash(&superblock).as_bytes());
        let mut pack = PACK_HEADER.to_vec();
        pack.resize(4096, 0);
        disk.write_dev(PACK, &pack)?;
        disk.write_dev(TABLE_A + TABLE_LEN, &[0; 8])?;
        let empty = encode_table(1, PACK_HEADER.len() as u64, &BTreeMap::new());
        disk.write_dev(TABLE_A, &empty.expect("an empty ref table fits"))?;
        disk.write_dev(0, &superblock)?;
        disk.sync_dev()?;
        Disk::open(
            disk.dev
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
            name,
        )
    }

    /// Opens the store on `dev` (named `name` in messages), finding the pack's end.
    pub fn open(dev: D, name: &Path) -> Result<Disk<D>> {
        let disk = Disk::with(dev, name)?;
        disk.check_superblock()?;
        let (seq, committed, refs) = disk.newest_table()?;
        let region = disk.region();
        record::check_pack_header(&region)?;
        let mut index = HashMap::new();
        let known = scan(
            &region,
            PACK_HEADER.len() as u64,
            committed,
            true,
            usize::MAX,
        )?;
        if known.stop == Stop::Torn {
            tracing::warn!(
                "{}: the pack is cut short at {} before its recorded end {committed}; run `kith fsck`",
                name.display(),
                known.next
            );
        }
        let more = scan(
            &region,
            known.next.max(committed),
            disk.region,
            false,
            usize::MAX,
        )?;
        for (hash, offset) in known.entries.into_iter().chain(more.entries) {
            if offset & DAMAGED == 0 {
                index.entry(hash).or_insert(offset);
            }
        }
        *disk.state() = State {
            refs,
            seq,
            index,
            end: more.next,
            pending: Vec::new(),
        };
        Ok(disk)
    }

    fn with(mut dev: D, name: &Path) -> Result<Disk<D>> {
        let size = dev
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io("measure", name, e))?;
        if size < MIN_SIZE {
            return Err(Error::Format {
                path: name.into(),
                detail: format!(
                    "{size} bytes is too small for a store; use a disk of at least {MIN_SIZE}"
                ),
            });
        }
        Ok(Disk {
            dev: Mutex::new(dev),
            name: name.to_path_buf(),
            region: size - PACK,
            state: Mutex::new(State {
                refs: BTreeMap::new(),
                seq: 0,
                index: HashMap::new(),
                end: PACK_HEADER.len() as u64,
                pending: Vec::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn region(&self) -> Region<'_, D> {
        Region {
            dev: &self.dev,
            name: &self.name,
            len: self.region,
        }
    }

    fn format_error(&self, detail: impl Into<String>) -> Error {
        Error::Format {
            path: self.name.clone(),
            detail: detail.into(),
        }
    }

    fn check_superblock(&self) -> Result<()> {
        let mut block = [0; SUPERBLOCK_LEN];
        self.read_dev(0, &mut block)?;
        if block[..8] != DISK_MAGIC {
            return Err(self.format_error(
                "no KITHDISK superblock; write a store onto it with `kith disk write`",
            ));
        }
        let (body, sum) = block.split_at(SUPERBLOCK_LEN - 32);
        if blake3::hash(body).as_bytes() != sum {
            return Err(self.format_error("the superblock's checksum does not match"));
        }
        let mut expected = VERSION.to_le_bytes().to_vec();
        for field in [TABLE_A, TABLE_A + TABLE_LEN, TABLE_LEN, PACK] {
            expected.extend_from_slice(&field.to_le_bytes());
        }
        if body[8..] != expected[..] {
            return Err(self.format_error("a disk layout this version does not know"));
        }
        Ok(())
    }

    /// The valid ref table with the highest sequence number.
    fn newest_table(&self) -> Result<Table> {
        let mut best = None;
        for slot in [TABLE_A, TABLE_A + TABLE_LEN] {
            let mut bytes = vec![0; TABLE_LEN as usize];
            self.read_dev(slot, &mut bytes)?;
            if let Some(table) = decode_table(&bytes)
                && best.as_ref().is_none_or(|b: &Table| table.0 > b.0)
            {
                best = Some(table);
            }
        }
        best.ok_or_else(|| self.format_error("neither ref table is intact"))
    }

    fn read_dev(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut dev = self.dev.lock().unwrap_or_else(PoisonError::into_inner);
        dev.seek(SeekFrom::Start(offset))
            .and_then(|_| dev.read_exact(buf))
            .map_err(|e| Error::io("read", &self.name, e))
    }

    fn write_dev(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        let mut dev = self.dev.lock().unwrap_or_else(PoisonError::into_inner);
        dev.seek(SeekFrom::Start(offset))
            .and_then(|_| dev.write_all(bytes))
            .map_err(|e| Error::io("write", &self.name, e))
    }

    fn sync_dev(&self) -> Result<()> {
        let mut dev = self.dev.lock().unwrap_or_else(PoisonError::into_inner);
        dev.flush()
            .and_then(|()| dev.sync_device())
            .map_err(|e| Error::io("sync", &self.name, e))
    }

    /// Appends the buffered records to the pack region and makes them durable.
    fn flush(&self, state: &mut State) -> Result<()> {
        if state.pending.is_empty() {
            return Ok(());
        }
        self.write_dev(PACK + state.end, &state.pending)?;
        self.sync_dev()?;
        state.end += state.pending.len() as u64;
        state.pending.clear();
        Ok(())
    }
}

impl<D: Device> ObjectStore for Disk<D> {
    fn read(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        let state = self.state();
        let Some(&offset) = state.index.get(hash) else {
            return Ok(None);
        };
        if offset < state.end {
            drop(state);
            return record::read(&self.region(), offset, hash).map(Some);
        }
        let at = (offset - state.end) as usize;
        let head: &[u8; HEADER_LEN as usize] = state.pending[at..at + HEADER_LEN as usize]
            .try_into()
            .expect("a header is 40 bytes");
        let len = record::Header::parse(head).len as usize;
        let payload = &state.pending[at + HEADER_LEN as usize..][..len];
        let canonical = record::verify(hash, payload).map_err(|detail| Error::Corrupt {
            hash: *hash,
            detail,
        })?;
        Ok(Some(canonical.into_owned()))
    }

    fn contains(&self, hash: &Hash) -> Result<bool> {
        Ok(self.state().index.contains_key(hash))
    }

    fn write(&self, hash: &Hash, canonical: &[u8]) -> Result<()> {
        let mut state = self.state();
        if state.index.contains_key(hash) {
            return Ok(());
        }
        let offset = state.end + state.pending.len() as u64;
        record::encode(hash, canonical, &mut state.pending)?;
        if state.end + state.pending.len() as u64 > self.region {
            let before = (offset - state.end) as usize;
            state.pending.truncate(before);
            let detail = format!(
                "the disk is full ({} bytes of pack); copy the store onto a larger disk image",
                self.region
            );
            return Err(self.format_error(detail));
        }
        state.index.insert(*hash, offset);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.flush(&mut self.state())
    }

    fn for_each_hash(&self, f: &mut dyn FnMut(&Hash) -> Result<()>) -> Result<()> {
        let hashes: Vec<Hash> = self.state().index.keys().copied().collect();
        hashes.iter().try_for_each(f)
    }

    fn retain(&self, _keep: &dyn Fn(&Hash) -> bool) -> Result<RetainReport> {
        let why = "garbage collection of a store on a disk is not supported yet; run \
`kith gc` on the store folder the image was written from, then `kith disk write` again";
        Err(Error::io(
            "gc",
            &self.name,
            std::io::Error::new(std::io::ErrorKind::Unsupported, why),
        ))
    }

    fn lock(&self, _exclusive: bool) -> Result<LockGuard> {
        Ok(LockGuard::new(()))
    }
}

impl<D: Device> RefStore for Disk<D> {
    fn get(&self, name: &str) -> Result<Option<Hash>> {
        Ok(self.state().refs.get(name).copied())
    }

    fn shared(&self) -> bool {
        false
    }

    fn compare_and_set(
        &self,
        name: &str,
        expected: Option<Hash>,
        new: Option<Hash>,
    ) -> Result<bool> {
        if !validate_ref_name(name) {
            return Err(Error::BadBranch(name.to_string()));
        }
        let mut state = self.state();
        if state.refs.get(name).copied() != expected {
            return Ok(false);
        }
        self.flush(&mut state)?;
        let mut refs = state.refs.clone();
        match new {
            Some(hash) => refs.insert(name.to_string(), hash),
            None => refs.remove(name),
        };
        let seq = state.seq + 1;
        let table = encode_table(seq, state.end, &refs)
            .map_err(|_| self.format_error("too many refs for the disk's 64 KiB ref table"))?;
        let slot = if seq % 2 == 1 {
            TABLE_A
        } else {
            TABLE_A + TABLE_LEN
        };
        self.write_dev(slot, &table)?;
        self.sync_dev()?;
        state.refs = refs;
        state.seq = seq;
        Ok(true)
    }

    fn list(&self) -> Result<Vec<(String, Hash)>> {
        Ok(self.state().refs.clone().into_iter().collect())
    }

    fn history(&self, _name: &str) -> Result<Vec<Hash>> {
        Ok(Vec::new())
    }
}

impl<D: Device> Storage for Region<'_, D> {
    fn path(&self) -> &Path {
        self.name
    }

    fn size(&self) -> Result<u64> {
        Ok(self.len)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let n = buf.len().min(self.len.saturating_sub(offset) as usize);
        let mut dev = self.dev.lock().unwrap_or_else(PoisonError::into_inner);
        dev.seek(SeekFrom::Start(PACK + offset))
            .and_then(|_| dev.read_exact(&mut buf[..n]))
            .map_err(|e| Error::io("read", self.name, e))?;
        Ok(n)
    }

    fn write_at(&self, _offset: u64, _bytes: &[u8]) -> Result<()> {
        unreachable!("the disk backend appends through Disk::flush")
    }

    fn truncate(&self, _len: u64) -> Result<()> {
        unreachable!("a disk's pack region is never cut")
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

/// A ref table: sequence, pack end, the refs, blake3; `Err` if it exceeds [`TABLE_LEN`].
fn encode_table(seq: u64, pack_end: u64, refs: &BTreeMap<String, Hash>) -> Result<Vec<u8>, ()> {
    let mut out = TABLE_MAGIC.to_vec();
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&pack_end.to_le_bytes());
    out.extend_from_slice(&(refs.len() as u32).to_le_bytes());
    for (name, hash) in refs {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(hash.as_bytes());
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    if out.len() as u64 > TABLE_LEN {
        return Err(());
    }
    Ok(out)
}

/// A ref table's contents: sequence number, pack end, refs.
type Table = (u64, u64, BTreeMap<String, Hash>);

/// Parses a ref table slot: `None` unless it is a complete table with a valid checksum.
fn decode_table(bytes: &[u8]) -> Option<Table> {
    let mut input = Input { bytes, at: 0 };
    if input.take(8)? != TABLE_MAGIC {
        return None;
    }
    let (seq, pack_end) = (input.u64()?, input.u64()?);
    let count = u32::from_le_bytes(input.take(4)?.try_into().ok()?);
    let mut refs = BTreeMap::new();
    for _ in 0..count {
        let len = u16::from_le_bytes(input.take(2)?.try_into().ok()?);
        let name = String::from_utf8(input.take(usize::from(len))?.to_vec()).ok()?;
        refs.insert(name, Hash(input.take(32)?.try_into().ok()?));
    }
    let body = input.at;
    let sum = input.take(32)?;
    (blake3::hash(&bytes[..body]).as_bytes() == sum).then_some((seq, pack_end, refs))
}

/// Bytes read front to back.
struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let part = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(part)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::store::{MAIN, Store};

    /// Each write to a device: where, and what.
    type Writes = Vec<(u64, Vec<u8>)>;

    /// A device in memory whose bytes and writes the test can see.
    #[derive(Clone, Default)]
    struct Shared {
        bytes: Arc<Mutex<Cursor<Vec<u8>>>>,
        writes: Arc<Mutex<Writes>>,
    }

    impl Shared {
        fn new() -> Shared {
            let shared = Shared::default();
            shared
                .bytes
                .lock()
                .unwrap()
                .get_mut()
                .resize(MIN_SIZE as usize, 0);
            shared
        }

        fn snapshot(&self) -> Vec<u8> {
            self.bytes.lock().unwrap().get_ref().clone()
        }
    }

    impl Read for Shared {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.bytes.lock().unwrap().read(buf)
        }
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut bytes = self.bytes.lock().unwrap();
            let at = bytes.position();
            self.writes.lock().unwrap().push((at, buf.to_vec()));
            bytes.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Seek for Shared {
        fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
            self.bytes.lock().unwrap().seek(to)
        }
    }

    impl Device for Shared {
        fn sync_device(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn reopen(bytes: Vec<u8>) -> Store {
        Store::on_disk(Disk::open(Cursor::new(bytes), Path::new("test")).unwrap()).unwrap()
    }

    fn put(store: &Store, path: &str, value: &[u8]) -> Hash {
        let mut tx = store.transaction(MAIN).unwrap();
        tx.put(path, value).unwrap();
        tx.commit("test", "put").unwrap().unwrap()
    }

    fn read(store: &Store, path: &str) -> Option<Vec<u8>> {
        let root = store.head_tree(MAIN).unwrap();
        store.get(&root, path).unwrap()
    }

    fn clean(store: &Store) -> bool {
        store.fsck(&mut |_| {}).unwrap().damage.is_empty()
    }

    #[test]
    fn a_store_reopens_with_its_commits_and_objects() {
        let dev = Shared::new();
        let store = Store::on_disk(Disk::format(dev.clone(), Path::new("test")).unwrap()).unwrap();
        put(&store, "/a/one", b"first");
        let head = put(&store, "/a/two", &[7; 5000]);
        let again = reopen(dev.snapshot());
        assert_eq!(again.head(MAIN).unwrap(), Some(head));
        assert_eq!(read(&again, "/a/one").as_deref(), Some(&b"first"[..]));
        assert_eq!(read(&again, "/a/two"), Some(vec![7; 5000]));
        assert!(clean(&again));
        put(&again, "/b", b"after reopening");
        assert!(clean(&again));
    }

    #[test]
    fn a_torn_last_write_loses_nothing_acknowledged() {
        let dev = Shared::new();
        let store = Store::on_disk(Disk::format(dev.clone(), Path::new("test")).unwrap()).unwrap();
        let acked = put(&store, "/kept", b"acknowledged");
        let before = dev.snapshot();
        let first = dev.writes.lock().unwrap().len();
        let last = put(&store, "/new", b"being written when the power went");
        let writes = dev.writes.lock().unwrap()[first..].to_vec();
        assert_eq!(writes.len(), 2, "one pack append, one ref table");
        for (i, (offset, bytes)) in writes.iter().enumerate() {
            for cut in 0..=bytes.len() {
                let mut torn = before.clone();
                for (at, done) in &writes[..i] {
                    torn[*at as usize..][..done.len()].copy_from_slice(done);
                }
                torn[*offset as usize..][..cut].copy_from_slice(&bytes[..cut]);
                let store = reopen(torn);
                let head = store.head(MAIN).unwrap().unwrap();
                assert!(head == acked || head == last, "write {i} cut at {cut}");
                assert_eq!(read(&store, "/kept").as_deref(), Some(&b"acknowledged"[..]));
                assert!(clean(&store), "write {i} cut at {cut}");
                put(&store, "/later", b"written after the crash");
                assert!(clean(&store), "write {i} cut at {cut}, then a commit");
            }
        }
    }

    #[test]
    fn a_damaged_superblock_or_a_small_device_is_refused() {
        let small = Disk::format(Cursor::new(vec![0; 4096]), Path::new("small"));
        assert!(matches!(small, Err(Error::Format { .. })));
        let dev = Shared::new();
        Disk::format(dev.clone(), Path::new("test")).unwrap();
        let mut bytes = dev.snapshot();
        bytes[20] ^= 1;
        let err = Disk::open(Cursor::new(bytes), Path::new("test"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("checksum"), "{err}");
        let blank = Disk::open(Cursor::new(vec![0; MIN_SIZE as usize]), Path::new("blank"));
        assert!(blank.err().unwrap().to_string().contains("kith disk write"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn what_was_committed_is_read_back_after_any_reopen(
            steps in proptest::collection::vec(("[a-c]{1,2}", proptest::collection::vec(any::<u8>(), 0..2000), any::<bool>()), 1..12)
        ) {
            let dev = Shared::new();
            let mut store = Store::on_disk(Disk::format(dev.clone(), Path::new("test")).unwrap()).unwrap();
            let mut model = BTreeMap::new();
            for (name, value, reopen_now) in steps {
                put(&store, &format!("/{name}"), &value);
                model.insert(name, value);
                if reopen_now {
                    let next = Disk::open(dev.clone(), Path::new("test")).unwrap();
                    store = Store::on_disk(next).unwrap();
                }
            }
            let again = reopen(dev.snapshot());
            for (name, value) in &model {
                prop_assert_eq!(read(&again, &format!("/{name}")), Some(value.clone()));
            }
            prop_assert!(clean(&again));
            prop_assert!(clean(&store));
        }
    }
}
