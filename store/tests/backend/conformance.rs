//! One suite, every backend (as irmin-test does): each test takes a [`Backend`] and
//! runs against the memory backend and the pack backend alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kith_store::backend::memory::{MemoryObjects, MemoryRefs};
use kith_store::backend::pack as pack_backend;
use kith_store::{Hash, ObjectStore, RefStore};
use proptest::prelude::*;

use crate::common::{hashed, object};

/// A backend under test: its two halves, and a way to close and open it again.
pub trait Backend {
    fn objects(&self) -> &Arc<dyn ObjectStore>;
    fn refs(&self) -> &Arc<dyn RefStore>;
    /// Closes and reopens the store (for memory: nothing).
    fn reopen(&mut self);
}

pub struct Memory(Arc<dyn ObjectStore>, Arc<dyn RefStore>);

impl Memory {
    pub fn new() -> Memory {
        Memory(Arc::new(MemoryObjects::new()), Arc::new(MemoryRefs::new()))
    }
}

impl Backend for Memory {
    fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.0
    }
    fn refs(&self) -> &Arc<dyn RefStore> {
        &self.1
    }
    fn reopen(&mut self) {}
}

pub struct Pack {
    pub dir: tempfile::TempDir,
    halves: Option<(Arc<dyn ObjectStore>, Arc<dyn RefStore>)>,
}

impl Pack {
    pub fn new() -> Pack {
        let dir = tempfile::tempdir().unwrap();
        let (objects, refs) = pack_backend::create(dir.path()).unwrap();
        Pack {
            dir,
            halves: Some((objects, refs)),
        }
    }
}

impl Backend for Pack {
    fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.halves.as_ref().unwrap().0
    }
    fn refs(&self) -> &Arc<dyn RefStore> {
        &self.halves.as_ref().unwrap().1
    }
    fn reopen(&mut self) {
        self.halves = None;
        let (objects, refs) = pack_backend::open(self.dir.path()).unwrap();
        self.halves = Some((objects, refs));
    }
}

/// Runs each named test against both backends.
macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $test() { super::$test(&mut super::Memory::new()) })*
        }
        mod pack {
            $(#[test] fn $test() { super::$test(&mut super::Pack::new()) })*
        }
    };
}

suite!(
    writes_read_back_before_and_after_sync,
    writing_twice_stores_once,
    for_each_hash_visits_each_object_once,
    retain_keeps_exactly_what_it_is_told,
    compare_and_set_creates_moves_and_deletes,
    compare_and_set_loses_to_a_stale_expectation,
    list_is_sorted_and_nested,
    history_is_newest_first,
    maintenance_lock_is_shared_or_exclusive,
    large_objects_round_trip,
);

fn write_all(b: &dyn Backend, range: std::ops::Range<u64>) {
    for i in range {
        let (h, bytes) = hashed(i);
        b.objects().write(&h, &bytes).unwrap();
    }
}

fn assert_all(b: &dyn Backend, range: std::ops::Range<u64>) {
    for i in range {
        let (h, bytes) = hashed(i);
        assert_eq!(
            b.objects().read(&h).unwrap().as_deref(),
            Some(&bytes[..]),
            "object {i}"
        );
        assert!(b.objects().contains(&h).unwrap());
    }
}

fn writes_read_back_before_and_after_sync(b: &mut dyn Backend) {
    write_all(b, 0..50);
    assert_all(b, 0..50);
    b.objects().sync().unwrap();
    assert_all(b, 0..50);
    b.reopen();
    assert_all(b, 0..50);
    let absent = Hash::of(b"\x01not stored");
    assert_eq!(b.objects().read(&absent).unwrap(), None);
    assert!(!b.objects().contains(&absent).unwrap());
}

fn writing_twice_stores_once(b: &mut dyn Backend) {
    write_all(b, 0..10);
    write_all(b, 0..10);
    b.objects().sync().unwrap();
    write_all(b, 5..15);
    b.objects().sync().unwrap();
    b.reopen();
    write_all(b, 0..15);
    b.objects().sync().unwrap();
    let mut count = 0;
    b.objects()
        .for_each_hash(&mut |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(count, 15);
}

fn for_each_hash_visits_each_object_once(b: &mut dyn Backend) {
    write_all(b, 0..30);
    b.objects().sync().unwrap();
    b.reopen();
    write_all(b, 30..40);
    let mut seen = Vec::new();
    b.objects()
        .for_each_hash(&mut |h| {
            seen.push(*h);
            Ok(())
        })
        .unwrap();
    seen.sort();
    let mut want: Vec<Hash> = (0..40).map(|i| hashed(i).0).collect();
    want.sort();
    assert_eq!(seen, want);
}

fn retain_keeps_exactly_what_it_is_told(b: &mut dyn Backend) {
    write_all(b, 0..40);
    b.objects().sync().unwrap();
    let keep: Vec<Hash> = (0..40)
        .filter(|i| i % 3 == 0)
        .map(|i| hashed(i).0)
        .collect();
    let report = {
        let _gc = b.objects().lock(true).unwrap();
        b.objects().retain(&|h| keep.contains(h)).unwrap()
    };
    assert_eq!((report.kept, report.dropped), (14, 26));
    assert!(report.bytes_after < report.bytes_before);
    for round in 0..2 {
        for i in 0..40 {
            let (h, bytes) = hashed(i);
            let want = (i % 3 == 0).then_some(bytes);
            assert_eq!(
                b.objects().read(&h).unwrap(),
                want,
                "object {i}, round {round}"
            );
        }
        b.reopen();
    }
    write_all(b, 40..45);
    b.objects().sync().unwrap();
    b.reopen();
    assert_all(b, 40..45);
}

fn compare_and_set_creates_moves_and_deletes(b: &mut dyn Backend) {
    let (x, y) = (hashed(1).0, hashed(2).0);
    let refs = b.refs();
    assert_eq!(refs.get("main").unwrap(), None);
    assert!(refs.compare_and_set("main", None, Some(x)).unwrap());
    assert_eq!(refs.get("main").unwrap(), Some(x));
    assert!(refs.compare_and_set("main", Some(x), Some(y)).unwrap());
    assert_eq!(refs.get("main").unwrap(), Some(y));
    b.reopen();
    let refs = b.refs();
    assert_eq!(refs.get("main").unwrap(), Some(y));
    assert!(refs.compare_and_set("main", Some(y), None).unwrap());
    assert_eq!(refs.get("main").unwrap(), None);
    assert!(refs.list().unwrap().is_empty());
    assert!(refs.compare_and_set("main", None, Some(x)).unwrap());
}

fn compare_and_set_loses_to_a_stale_expectation(b: &mut dyn Backend) {
    let (x, y, z) = (hashed(1).0, hashed(2).0, hashed(3).0);
    let refs = b.refs();
    assert!(!refs.compare_and_set("dev", Some(x), Some(y)).unwrap());
    assert!(refs.compare_and_set("dev", None, Some(x)).unwrap());
    assert!(!refs.compare_and_set("dev", None, Some(y)).unwrap());
    assert!(refs.compare_and_set("dev", Some(x), Some(y)).unwrap());
    assert!(!refs.compare_and_set("dev", Some(x), Some(z)).unwrap());
    assert!(!refs.compare_and_set("dev", Some(x), None).unwrap());
    assert_eq!(refs.get("dev").unwrap(), Some(y));
}

fn list_is_sorted_and_nested(b: &mut dyn Backend) {
    let refs = b.refs();
    let names = ["main", "a/b", "a/c.d", "z", "a-b", "phone/main"];
    for (i, name) in names.iter().enumerate() {
        assert!(
            refs.compare_and_set(name, None, Some(hashed(i as u64).0))
                .unwrap()
        );
    }
    assert!(refs.compare_and_set("z", Some(hashed(3).0), None).unwrap());
    b.reopen();
    let listed: Vec<String> = b
        .refs()
        .list()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(listed, ["a-b", "a/b", "a/c.d", "main", "phone/main"]);
    assert_eq!(b.refs().get("a/c.d").unwrap(), Some(hashed(2).0));
}

fn history_is_newest_first(b: &mut dyn Backend) {
    let hs: Vec<Hash> = (0..4).map(|i| hashed(i).0).collect();
    let refs = b.refs();
    assert!(refs.history("main").unwrap().is_empty());
    assert!(refs.compare_and_set("main", None, Some(hs[0])).unwrap());
    assert!(refs.history("main").unwrap().is_empty());
    for w in hs.windows(2) {
        assert!(
            refs.compare_and_set("main", Some(w[0]), Some(w[1]))
                .unwrap()
        );
    }
    assert!(refs.compare_and_set("main", Some(hs[3]), None).unwrap());
    b.reopen();
    assert_eq!(
        b.refs().history("main").unwrap(),
        vec![hs[3], hs[2], hs[1], hs[0]]
    );
}

fn maintenance_lock_is_shared_or_exclusive(b: &mut dyn Backend) {
    let objects = Arc::clone(b.objects());
    let first = objects.lock(false).unwrap();
    let second = objects.lock(false).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _gc = objects.lock(true).unwrap();
        tx.send(()).unwrap();
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        rx.try_recv().is_err(),
        "exclusive lock taken while shared ones are held"
    );
    drop(first);
    drop(second);
    rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    waiter.join().unwrap();
}

fn large_objects_round_trip(b: &mut dyn Backend) {
    let mut rng = crate::common::Rng::new(7);
    let random: Vec<u8> = (0..3_000_000).map(|_| rng.next() as u8).collect();
    let repetitive = vec![b'x'; 5_000_000];
    for body in [random, repetitive] {
        let bytes = kith_store::encode_blob(&body);
        let h = Hash::of(&bytes);
        b.objects().write(&h, &bytes).unwrap();
        b.objects().sync().unwrap();
        b.reopen();
        assert_eq!(b.objects().read(&h).unwrap().as_deref(), Some(&bytes[..]));
    }
}

/// One step of the model test.
#[derive(Clone, Debug)]
enum Op {
    Write(u64),
    Sync,
    Reopen,
    Retain(u32),
    Cas {
        name: usize,
        expected: Option<u64>,
        new: Option<u64>,
    },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..24u64).prop_map(Op::Write),
        2 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        1 => any::<u32>().prop_map(Op::Retain),
        3 => (0..3usize, proptest::option::of(0..4u64), proptest::option::of(0..4u64))
            .prop_map(|(name, expected, new)| Op::Cas { name, expected, new }),
    ]
}

/// Applies random operations to a backend and to a plain model, checking they agree.
fn agrees_with_model(b: &mut dyn Backend, ops: &[Op]) -> Result<(), TestCaseError> {
    const NAMES: [&str; 3] = ["main", "dev/x", "dev/y"];
    let mut objects: HashMap<Hash, Vec<u8>> = HashMap::new();
    let mut gone: Vec<Hash> = Vec::new();
    let mut refs: BTreeMap<&str, Hash> = BTreeMap::new();
    let mut logs: HashMap<&str, Vec<Hash>> = HashMap::new();
    for op in ops {
        match op {
            Op::Write(i) => {
                let bytes = object(*i);
                let h = Hash::of(&bytes);
                b.objects().write(&h, &bytes).unwrap();
                gone.retain(|g| *g != h);
                objects.insert(h, bytes);
            }
            Op::Sync => b.objects().sync().unwrap(),
            Op::Reopen => b.reopen(),
            Op::Retain(mask) => {
                let keep = |h: &Hash| mask >> (h.0[0] % 32) & 1 == 1;
                let before = objects.len() as u64;
                let report = b.objects().retain(&keep).unwrap();
                gone.extend(objects.keys().filter(|h| !keep(h)));
                objects.retain(|h, _| keep(h));
                prop_assert_eq!(report.kept, objects.len() as u64);
                prop_assert_eq!(report.kept + report.dropped, before);
            }
            Op::Cas {
                name,
                expected,
                new,
            } => {
                let name = NAMES[*name];
                let expected = expected.map(|i| hashed(i).0);
                let new = new.map(|i| hashed(i).0);
                let current = refs.get(name).copied();
                let won = b.refs().compare_and_set(name, expected, new).unwrap();
                prop_assert_eq!(won, current == expected);
                if won {
                    if let Some(old) = current {
                        logs.entry(name).or_default().insert(0, old);
                    }
                    match new {
                        Some(h) => refs.insert(name, h),
                        None => refs.remove(name),
                    };
                }
            }
        }
        for (h, bytes) in &objects {
            prop_assert_eq!(b.objects().read(h).unwrap(), Some(bytes.clone()));
        }
        for h in &gone {
            prop_assert_eq!(b.objects().read(h).unwrap(), None);
        }
        let listed: Vec<(String, Hash)> = refs.iter().map(|(n, h)| (n.to_string(), *h)).collect();
        prop_assert_eq!(b.refs().list().unwrap(), listed);
        for name in NAMES {
            prop_assert_eq!(
                b.refs().history(name).unwrap(),
                logs.get(name).cloned().unwrap_or_default()
            );
        }
    }
    let mut count = 0;
    b.objects()
        .for_each_hash(&mut |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
    prop_assert_eq!(count, objects.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn memory_agrees_with_the_model(ops in proptest::collection::vec(arb_op(), 1..60)) {
        agrees_with_model(&mut Memory::new(), &ops)?;
    }

    #[test]
    fn pack_agrees_with_the_model(ops in proptest::collection::vec(arb_op(), 1..60)) {
        agrees_with_model(&mut Pack::new(), &ops)?;
    }
}
