//! Damage to a pack: cut at any offset, bits flipped anywhere, torn appends, damaged
//! index, ref and CURRENT files. Whatever happens, a read returns the exact bytes, `None`
//! or `Error::Corrupt` for that hash, never other bytes; and damage in one record leaves
//! the others readable.

use std::collections::HashSet;
use std::path::Path;

use kith_store::backend::pack;
use kith_store::{Error, Hash, ObjectStore, RefStore};

use crate::common::{Rng, copy_store, hashed, index_file, pack_file, records};

/// A store holding objects `0..n` (synced in batches, closed cleanly so it has an index),
/// with each record's (offset, end, hash, canonical bytes).
struct Pristine {
    dir: tempfile::TempDir,
    records: Vec<(u64, u64, Hash, Vec<u8>)>,
}

fn pristine(n: u64) -> Pristine {
    let dir = tempfile::tempdir().unwrap();
    let (objects, _refs) = pack::create(dir.path()).unwrap();
    for i in 0..n {
        let (h, bytes) = hashed(i);
        objects.write(&h, &bytes).unwrap();
        if i % 10 == 9 {
            objects.sync().unwrap();
        }
    }
    objects.sync().unwrap();
    drop(objects);
    let pack = std::fs::read(pack_file(dir.path())).unwrap();
    let records: Vec<_> = records(&pack)
        .into_iter()
        .map(|(start, end, h)| {
            let bytes = (0..n).map(hashed).find(|(x, _)| *x == h).unwrap().1;
            (start, end, h, bytes)
        })
        .collect();
    assert_eq!(records.len() as u64, n);
    assert!(index_file(dir.path()).exists());
    Pristine { dir, records }
}

fn copy(p: &Pristine, keep_index: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_store(p.dir.path(), dir.path());
    if !keep_index {
        std::fs::remove_file(index_file(dir.path())).unwrap();
    }
    dir
}

/// Reads `h` and checks the answer is honest: the exact bytes, `None`, or `Corrupt`
/// naming `h`. Returns whether it was the exact bytes.
fn read_honestly(objects: &dyn ObjectStore, h: &Hash, want: &[u8], context: &str) -> bool {
    match objects.read(h) {
        Ok(Some(bytes)) => {
            assert_eq!(bytes, want, "{context}: wrong bytes returned");
            true
        }
        Ok(None) => false,
        Err(Error::Corrupt { hash, .. }) => {
            assert_eq!(hash, *h, "{context}: Corrupt names another hash");
            false
        }
        Err(e) => panic!("{context}: unexpected error {e}"),
    }
}

#[test]
fn a_pack_cut_anywhere_keeps_every_whole_record() {
    let p = pristine(60);
    let len = p.records.last().unwrap().1;
    let mut rng = Rng::new(1);
    for seed in 0..160u64 {
        let dir = copy(&p, seed % 2 == 0);
        let cut = 16 + rng.below(len - 16 + 1);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(pack_file(dir.path()))
            .unwrap();
        file.set_len(cut).unwrap();
        drop(file);
        let (objects, _refs) = pack::open(dir.path()).unwrap();
        let context = format!("seed {seed}, cut at {cut}");
        for (start, end, h, bytes) in &p.records {
            if *end <= cut {
                assert_eq!(
                    objects.read(h).unwrap().as_deref(),
                    Some(&bytes[..]),
                    "{context}: record at {start}"
                );
            } else {
                assert_eq!(
                    objects.read(h).unwrap(),
                    None,
                    "{context}: record at {start}"
                );
                assert!(!objects.contains(h).unwrap());
            }
        }
        let whole = p
            .records
            .iter()
            .map(|r| r.1)
            .filter(|&e| e <= cut)
            .max()
            .unwrap_or(16);
        assert_eq!(
            std::fs::metadata(pack_file(dir.path())).unwrap().len(),
            whole,
            "{context}: torn tail trimmed"
        );
        let (h, bytes) = hashed(1000);
        objects.write(&h, &bytes).unwrap();
        objects.sync().unwrap();
        drop(objects);
        let (objects, _refs) = pack::open(dir.path()).unwrap();
        assert_eq!(
            objects.read(&h).unwrap(),
            Some(bytes),
            "{context}: written after the trim"
        );
    }
}

#[test]
fn flipped_bits_never_give_wrong_bytes_and_spare_other_records() {
    let p = pristine(60);
    let len = p.records.last().unwrap().1;
    let mut rng = Rng::new(2);
    for seed in 0..160u64 {
        let dir = copy(&p, seed % 2 == 0);
        let path = pack_file(dir.path());
        let mut pack = std::fs::read(&path).unwrap();
        let mut damaged = HashSet::new();
        for _ in 0..1 + rng.below(3) {
            let at = 16 + rng.below(len - 16);
            pack[at as usize] ^= 1 << rng.below(8);
            damaged.insert(
                p.records
                    .iter()
                    .position(|r| r.0 <= at && at < r.1)
                    .unwrap(),
            );
        }
        std::fs::write(&path, &pack).unwrap();
        let context = format!("seed {seed}, damaged records {damaged:?}");
        for round in 0..2 {
            let (objects, _refs) = pack::open(dir.path()).unwrap();
            for (i, (start, _, h, bytes)) in p.records.iter().enumerate() {
                let exact = read_honestly(
                    &*objects,
                    h,
                    bytes,
                    &format!("{context}, round {round}, record {i} at {start}"),
                );
                assert!(
                    exact || damaged.contains(&i),
                    "{context}: undamaged record {i} lost"
                );
            }
        }
    }
}

#[test]
fn a_damaged_object_written_again_is_repaired() {
    let p = pristine(60);
    for keep_index in [false, true] {
        let dir = copy(&p, keep_index);
        let path = pack_file(dir.path());
        let mut pack = std::fs::read(&path).unwrap();
        let (_, end, h, bytes) = &p.records[10];
        pack[(end - 1) as usize] ^= 0x10;
        std::fs::write(&path, &pack).unwrap();
        let (objects, _refs) = pack::open(dir.path()).unwrap();
        let got = objects.read(h);
        assert!(
            matches!(&got, Err(Error::Corrupt { hash, .. }) if hash == h),
            "{got:?}"
        );
        assert!(
            !objects.contains(h).unwrap(),
            "a damaged copy does not count as stored"
        );
        objects.write(h, bytes).unwrap();
        objects.sync().unwrap();
        assert_eq!(objects.read(h).unwrap().as_ref(), Some(bytes));
        // A second instance finds the good copy past the damaged one, with or without
        // the index rewritten meanwhile.
        let (other, _refs) = pack::open(dir.path()).unwrap();
        assert_eq!(
            other.read(h).unwrap().as_ref(),
            Some(bytes),
            "index kept: {keep_index}"
        );
        drop((objects, other));
        let (objects, _refs) = pack::open(dir.path()).unwrap();
        assert_eq!(objects.read(h).unwrap().as_ref(), Some(bytes));
        assert!(objects.contains(h).unwrap());
        for (_, _, h, bytes) in &p.records {
            assert_eq!(objects.read(h).unwrap().as_ref(), Some(bytes));
        }
    }
}

#[test]
fn a_damaged_index_is_rebuilt_from_the_pack() {
    let p = pristine(40);
    let mut rng = Rng::new(3);
    for seed in 0..40u64 {
        let dir = copy(&p, true);
        let path = index_file(dir.path());
        let mut index = std::fs::read(&path).unwrap();
        let at = rng.below(index.len() as u64) as usize;
        index[at] ^= 1 << rng.below(8);
        if seed % 5 == 0 {
            index.truncate(at);
        }
        std::fs::write(&path, &index).unwrap();
        let (objects, _refs) = pack::open(dir.path()).unwrap();
        for (_, _, h, bytes) in &p.records {
            assert_eq!(
                objects.read(h).unwrap().as_ref(),
                Some(bytes),
                "seed {seed}"
            );
        }
        assert_ne!(
            std::fs::read(&path).unwrap(),
            index,
            "seed {seed}: index rewritten"
        );
    }
}

#[test]
fn a_torn_append_is_trimmed_but_damage_before_valid_records_is_kept() {
    let p = pristine(20);
    let dir = copy(&p, true);
    let path = pack_file(dir.path());
    let pack = std::fs::read(&path).unwrap();
    let (start, end, ..) = p.records[5];
    let record = &pack[start as usize..end as usize];
    let mut torn = pack.clone();
    torn.extend_from_slice(&record[..record.len() / 2]);
    std::fs::write(&path, &torn).unwrap();
    drop(pack::open(dir.path()).unwrap());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        pack,
        "half a record at the end is trimmed"
    );

    let mut middle = pack.clone();
    middle.extend_from_slice(&record[..record.len() / 2]);
    middle.extend_from_slice(&[0; 100]);
    let (x, x_bytes) = hashed(500);
    let mut valid = Vec::new();
    valid.extend_from_slice(&record[..4]);
    valid.extend_from_slice(&(x_bytes.len() as u32 + 1).to_le_bytes());
    valid.extend_from_slice(x.as_bytes());
    valid.push(0);
    valid.extend_from_slice(&x_bytes);
    middle.extend_from_slice(&valid);
    std::fs::write(&path, &middle).unwrap();
    let (objects, _refs) = pack::open(dir.path()).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        middle,
        "damage followed by a valid record is kept"
    );
    assert_eq!(objects.read(&x).unwrap(), Some(x_bytes));
    for (_, _, h, bytes) in &p.records {
        assert_eq!(objects.read(h).unwrap().as_ref(), Some(bytes));
    }
}

#[test]
fn files_that_are_not_ours_are_refused() {
    let p = pristine(5);
    let dir = copy(&p, true);
    let path = pack_file(dir.path());
    let mut pack = std::fs::read(&path).unwrap();
    pack[3] ^= 1;
    std::fs::write(&path, &pack).unwrap();
    assert!(matches!(
        pack::open(dir.path()).err(),
        Some(Error::Format { .. })
    ));
    std::fs::write(&path, b"KITH").unwrap();
    assert!(matches!(
        pack::open(dir.path()).err(),
        Some(Error::Format { .. })
    ));

    let dir = copy(&p, true);
    std::fs::write(dir.path().join("CURRENT"), b"\x00garbage").unwrap();
    assert!(matches!(
        pack::open(dir.path()).err(),
        Some(Error::Format { .. })
    ));
}

#[test]
fn a_garbage_ref_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_objects, refs) = pack::create(dir.path()).unwrap();
    assert!(
        refs.compare_and_set("team/main", None, Some(hashed(1).0))
            .unwrap()
    );
    std::fs::write(dir.path().join("refs/team/main"), b"not a hash\n").unwrap();
    let named =
        |e: Error| matches!(&e, Error::Format { path, .. } if path.ends_with("refs/team/main"));
    assert!(named(refs.get("team/main").unwrap_err()));
    assert!(named(refs.list().unwrap_err()));
    assert!(named(
        refs.compare_and_set("team/main", None, None).unwrap_err()
    ));
    assert!(matches!(refs.get("../escape"), Err(Error::BadBranch(_))));
}

#[test]
fn create_and_open_say_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        pack::open(dir.path()).err(),
        Some(Error::NoStore(_))
    ));
    assert!(matches!(
        pack::open(&dir.path().join("missing")).err(),
        Some(Error::NoStore(_))
    ));
    let nested = dir.path().join("a/b");
    pack::create(&nested).unwrap();
    assert!(matches!(
        pack::create(&nested).err(),
        Some(Error::StoreExists(_))
    ));
    pack::open(&nested).unwrap();
    assert_store_files(&nested);
}

fn assert_store_files(dir: &Path) {
    for name in ["CURRENT", "pack-1.pack", "refs", "logs"] {
        assert!(dir.join(name).exists(), "{name}");
    }
}
