//! Figures for the pack (ignored by default; run in release):
//! `cargo test --release -p kith-store --test backend figures -- --ignored --nocapture`.

use std::time::Instant;

use kith_store::backend::pack;
use kith_store::{Hash, ObjectStore, encode_blob};

/// The peak resident set of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "slow; prints figures"]
fn figures_for_a_million_small_objects() {
    const N: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let (objects, _refs) = pack::create(dir.path()).unwrap();
    let object = |i: u64| {
        encode_blob(format!("BEGIN:VCARD\nUID:{i}\nFN:Person {i}\nEND:VCARD\n").as_bytes())
    };
    let start = Instant::now();
    let mut canonical = 0;
    for i in 0..N {
        let bytes = object(i);
        canonical += bytes.len() as u64;
        objects.write(&Hash::of(&bytes), &bytes).unwrap();
        if i % 50_000 == 49_999 {
            objects.sync().unwrap();
        }
    }
    objects.sync().unwrap();
    let written = start.elapsed();
    let rss_written = peak_rss_kib();
    drop(objects);
    let pack = std::fs::metadata(dir.path().join("pack-1.pack"))
        .unwrap()
        .len();
    let index = std::fs::metadata(dir.path().join("pack-1.idx"))
        .unwrap()
        .len();
    let start = Instant::now();
    let (objects, _refs) = pack::open(dir.path()).unwrap();
    let opened = start.elapsed();
    let start = Instant::now();
    for i in (0..N).step_by(10) {
        let bytes = object(i);
        assert_eq!(objects.read(&Hash::of(&bytes)).unwrap(), Some(bytes));
    }
    let read = start.elapsed();
    println!("{N} objects, {canonical} canonical bytes, written in {written:?}");
    let per = |bytes: u64| bytes as f64 / N as f64;
    println!(
        "pack {pack} bytes ({:.1} per object), index {index} bytes",
        per(pack)
    );
    println!("open {opened:?}; {} random reads in {read:?}", N / 10);
    println!(
        "peak RSS {rss_written} KiB after writing, {} KiB after reading",
        peak_rss_kib()
    );
}
