//! The directory trie: canonical shape whatever the order of changes, and a bounded cost
//! for one change to a very large directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kith_store::backend::memory::{MemoryObjects, MemoryRefs};
use kith_store::backend::{LockGuard, ObjectStore, RetainReport};
use kith_store::{Hash, Result, Store};
use proptest::prelude::*;

/// An object store that counts the bytes of the new objects written to it.
#[derive(Default)]
struct Counting {
    inner: MemoryObjects,
    new_bytes: AtomicU64,
    new_objects: AtomicU64,
}

impl ObjectStore for Counting {
    fn read(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        self.inner.read(hash)
    }
    fn contains(&self, hash: &Hash) -> Result<bool> {
        self.inner.contains(hash)
    }
    fn write(&self, hash: &Hash, canonical: &[u8]) -> Result<()> {
        if !self.inner.contains(hash)? {
            self.new_bytes
                .fetch_add(canonical.len() as u64, Ordering::Relaxed);
            self.new_objects.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.write(hash, canonical)
    }
    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }
    fn for_each_hash(&self, f: &mut dyn FnMut(&Hash) -> Result<()>) -> Result<()> {
        self.inner.for_each_hash(f)
    }
    fn retain(&self, keep: &dyn Fn(&Hash) -> bool) -> Result<RetainReport> {
        self.inner.retain(keep)
    }
    fn lock(&self, exclusive: bool) -> Result<LockGuard> {
        self.inner.lock(exclusive)
    }
}

fn root_after(ops: &[(String, Option<u8>)], batch: usize) -> Hash {
    let store = Store::memory();
    for chunk in ops.chunks(batch.max(1)) {
        let mut tx = store.transaction("main").unwrap();
        for (p, v) in chunk {
            match v {
                Some(b) => drop(tx.put(p, &[*b]).unwrap()),
                None => tx.remove(p).unwrap(),
            }
        }
        tx.commit("t", "t").unwrap();
    }
    store.head_tree("main").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The same final contents give the same root hash whatever the order and batching of
    /// the inserts and deletes that led there.
    #[test]
    fn root_hash_is_independent_of_history(
        files in proptest::collection::btree_map("[a-z]{1,3}/[a-z0-9]{1,4}", any::<u8>(), 1..200),
        noise in proptest::collection::vec("[a-z]{1,3}/[a-z0-9]{1,4}", 0..60),
        seed in any::<u64>(),
        batch in 1usize..50,
    ) {
        let direct: Vec<(String, Option<u8>)> = files.iter().map(|(p, b)| (p.clone(), Some(*b))).collect();
        let mut shuffled = direct.clone();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        // Noise: paths written then removed, before the real contents are set.
        let mut noisy: Vec<(String, Option<u8>)> = noise.iter().filter(|p| !files.contains_key(*p)).map(|p| (p.clone(), Some(0))).collect();
        noisy.extend(noise.iter().filter(|p| !files.contains_key(*p)).map(|p| (p.clone(), None)));
        noisy.extend(shuffled.iter().cloned());
        let a = root_after(&direct, usize::MAX);
        prop_assert_eq!(a, root_after(&shuffled, batch));
        prop_assert_eq!(a, root_after(&noisy, batch));
    }
}

#[test]
fn one_insert_into_100k_directory_writes_a_few_small_objects() {
    let counting = Arc::new(Counting::default());
    let store = Store::new(counting.clone(), Arc::new(MemoryRefs::new()));
    let entries = (0..100_000)
        .map(|i| kith_store::Entry {
            name: format!("{i:08}.eml"),
            kind: kith_store::EntryKind::File,
            hash: store.write_blob(format!("message {i}").as_bytes()).unwrap(),
        })
        .collect();
    let dir = store.write_dir(entries).unwrap();
    let mut tx = store.transaction("main").unwrap();
    tx.set("/mail/inbox", Some((kith_store::EntryKind::Dir, dir)))
        .unwrap();
    tx.commit("t", "100k").unwrap();

    counting.new_bytes.store(0, Ordering::Relaxed);
    counting.new_objects.store(0, Ordering::Relaxed);
    let mut tx = store.transaction("main").unwrap();
    tx.put("/mail/inbox/new-message.eml", b"hello").unwrap();
    tx.commit("t", "one more").unwrap();
    let bytes = counting.new_bytes.load(Ordering::Relaxed);
    let objects = counting.new_objects.load(Ordering::Relaxed);
    println!("one insert into a 100,000-entry directory: {objects} new objects, {bytes} bytes");
    assert!(bytes <= 16 * 1024, "{bytes} bytes written");
    assert!(objects <= 10, "{objects} objects written");

    let root = store.head_tree("main").unwrap();
    assert_eq!(
        store
            .get(&root, "/mail/inbox/new-message.eml")
            .unwrap()
            .unwrap(),
        b"hello"
    );
    assert_eq!(
        store
            .get(&root, "/mail/inbox/00012345.eml")
            .unwrap()
            .unwrap(),
        b"message 12345"
    );
    assert_eq!(store.list(&root, "/mail/inbox").unwrap().len(), 100_001);
}
