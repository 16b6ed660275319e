//! Several writers on one store: instances in threads, real second processes (this test
//! binary re-run with `KITH_PACK_CHILD` set), a writer killed with SIGKILL mid-stream, and
//! garbage collection under a reader that still has the old pack open.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kith_store::backend::pack;
use kith_store::{Hash, ObjectStore, RefStore};

use crate::common::{Rng, hashed, pack_file, records};

const CHILD: &str = "KITH_PACK_CHILD";

fn write_range(objects: &dyn ObjectStore, range: std::ops::Range<u64>, sync_every: u64) {
    for i in range {
        let (h, bytes) = hashed(i);
        objects.write(&h, &bytes).unwrap();
        if i % sync_every == 0 {
            objects.sync().unwrap();
        }
    }
    objects.sync().unwrap();
}

fn assert_range(objects: &dyn ObjectStore, range: std::ops::Range<u64>) {
    for i in range {
        let (h, bytes) = hashed(i);
        assert_eq!(objects.read(&h).unwrap(), Some(bytes), "object {i}");
    }
}

/// The pack parses from end to end: no torn or interleaved records.
fn assert_pack_clean(dir: &Path) {
    let pack = std::fs::read(pack_file(dir)).unwrap();
    let end = records(&pack).last().map_or(16, |r| r.1);
    assert_eq!(end, pack.len() as u64, "records run to the end of the pack");
}

#[test]
fn two_instances_in_threads_share_one_pack() {
    let dir = tempfile::tempdir().unwrap();
    pack::create(dir.path()).unwrap();
    let a = pack::open(dir.path()).unwrap().0;
    let b = pack::open(dir.path()).unwrap().0;
    std::thread::scope(|s| {
        s.spawn(|| write_range(&*a, 0..300, 7));
        s.spawn(|| write_range(&*b, 200..500, 11));
    });
    assert_range(&*a, 0..500);
    assert_range(&*b, 0..500);
    drop((a, b));
    assert_range(&*pack::open(dir.path()).unwrap().0, 0..500);
    assert_pack_clean(dir.path());
}

#[test]
fn an_index_rewritten_by_another_instance_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _) = pack::create(dir.path()).unwrap();
    let (reader, _) = pack::open(dir.path()).unwrap();
    let tiny = |i: u64| kith_store::encode_blob(&i.to_le_bytes());
    for i in 0..70_000u64 {
        let bytes = tiny(i);
        writer.write(&Hash::of(&bytes), &bytes).unwrap();
    }
    writer.sync().unwrap();
    let index = dir.path().join("pack-1.idx");
    assert!(
        index.exists(),
        "the writer rewrote the index past the tail limit"
    );
    for i in (0..70_000u64).step_by(97) {
        let bytes = tiny(i);
        assert_eq!(reader.read(&Hash::of(&bytes)).unwrap(), Some(bytes));
    }
}

#[test]
fn compare_and_set_races_have_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    pack::create(dir.path()).unwrap();
    const RACERS: usize = 6;
    let refs: Vec<Arc<pack::FileRefs>> = (0..RACERS)
        .map(|_| pack::open(dir.path()).unwrap().1)
        .collect();
    let mut expected = None;
    for round in 0..15u64 {
        let barrier = Barrier::new(RACERS);
        let wins: Vec<(bool, Hash)> = std::thread::scope(|s| {
            let handles: Vec<_> = refs
                .iter()
                .enumerate()
                .map(|(t, r)| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        let new = hashed(round * 100 + t as u64).0;
                        barrier.wait();
                        (
                            r.compare_and_set("race/main", expected, Some(new)).unwrap(),
                            new,
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<Hash> = wins.iter().filter(|w| w.0).map(|w| w.1).collect();
        assert_eq!(winners.len(), 1, "round {round}");
        assert_eq!(refs[0].get("race/main").unwrap(), Some(winners[0]));
        expected = Some(winners[0]);
    }
    assert_eq!(refs[1].history("race/main").unwrap().len(), 14);
}

/// Runs this test binary's `child` test in a new process with `spec` for it.
fn spawn_child(spec: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "concurrency::child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, spec)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Not a test of its own: the body of a child process, told what to do by `KITH_PACK_CHILD`
/// (`write DIR FROM TO` or `ack DIR FROM`). Without it, it does nothing.
#[test]
fn child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let words: Vec<&str> = spec.split(' ').collect();
    let dir = Path::new(words[1]);
    let (objects, refs) = pack::open(dir).unwrap();
    let from: u64 = words[2].parse().unwrap();
    match words[0] {
        "write" => {
            write_range(&*objects, from..words[3].parse().unwrap(), 5);
            let won = refs
                .compare_and_set("race", None, Some(hashed(from).0))
                .unwrap();
            println!("race {}", if won { "won" } else { "lost" });
        }
        "ack" => {
            let mut rng = Rng::new(from);
            for i in from.. {
                let (h, bytes) = hashed(i);
                objects.write(&h, &bytes).unwrap();
                if rng.below(3) == 0 {
                    objects.sync().unwrap();
                    let head = refs.get("main").unwrap();
                    assert!(refs.compare_and_set("main", head, Some(h)).unwrap());
                    println!("acked {i}");
                }
            }
        }
        other => panic!("unknown child spec {other}"),
    }
}

#[test]
fn processes_write_one_store_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (objects, refs) = pack::create(dir.path()).unwrap();
    let path = dir.path().display();
    let children = [
        spawn_child(&format!("write {path} 0 400")),
        spawn_child(&format!("write {path} 300 700")),
    ];
    write_range(&*objects, 600..900, 3);
    let mut wins = usize::from(
        refs.compare_and_set("race", None, Some(hashed(600).0))
            .unwrap(),
    );
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        // The test harness may print its own words in front of the child's on a line.
        wins += text.lines().filter(|l| l.ends_with("race won")).count();
        assert_eq!(text.lines().filter(|l| l.contains("race ")).count(), 1);
    }
    assert_eq!(wins, 1, "exactly one process moved the ref");
    assert_range(&*objects, 0..900);
    drop(objects);
    assert_range(&*pack::open(dir.path()).unwrap().0, 0..900);
    assert_pack_clean(dir.path());
}

#[test]
fn a_writer_killed_mid_stream_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    pack::create(dir.path()).unwrap();
    let mut rng = Rng::new(9);
    let mut from = 0;
    let mut total = 0;
    for round in 0..6 {
        let mut child = spawn_child(&format!("ack {} {from}", dir.path().display()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let run_for = Duration::from_millis(50 + rng.below(400));
        let start = Instant::now();
        let mut acked = Vec::new();
        while start.elapsed() < run_for {
            match lines.next() {
                Some(Ok(line)) if line.contains("acked ") => {
                    acked.push(line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
                }
                Some(_) => {}
                None => break,
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let (objects, refs) = pack::open(dir.path()).unwrap();
        for &i in &acked {
            let (h, bytes) = hashed(i);
            assert_eq!(
                objects.read(&h).unwrap(),
                Some(bytes),
                "round {round}: acknowledged object {i}"
            );
        }
        let head = refs.get("main").unwrap();
        if let Some(&last) = acked.last() {
            let head = head.expect("main was set");
            assert!(
                objects.read(&head).unwrap().is_some(),
                "round {round}: head {head} readable"
            );
            assert!(head == hashed(last).0 || !acked.contains(&(last + 1)));
        }
        from = acked.last().map_or(from, |l| l + 1_000);
        total += acked.len();
    }
    assert!(
        total > 50,
        "only {total} syncs acknowledged before the kills"
    );
}

#[test]
fn garbage_collection_under_a_reader_of_the_old_pack() {
    let dir = tempfile::tempdir().unwrap();
    let (reader, _) = pack::create(dir.path()).unwrap();
    write_range(&*reader, 0..50, 10);
    let (collector, _) = pack::open(dir.path()).unwrap();
    let keep: Vec<Hash> = (0..50)
        .filter(|i| i % 2 == 0)
        .map(|i| hashed(i).0)
        .collect();
    let report = {
        let _gc = collector.lock(true).unwrap();
        collector.retain(&|h| keep.contains(h)).unwrap()
    };
    assert_eq!((report.kept, report.dropped), (25, 25));
    assert!(
        !dir.path().join("pack-1.pack").exists(),
        "the old generation is deleted"
    );
    for i in (0..50).step_by(2) {
        assert_eq!(
            reader.read(&hashed(i).0).unwrap(),
            Some(hashed(i).1),
            "kept object {i} via the old pack"
        );
    }
    write_range(&*reader, 1000..1010, 3);
    assert_range(&*collector, 1000..1010);
    assert_eq!(
        reader.read(&hashed(1).0).unwrap(),
        None,
        "the reader moved to the new generation"
    );
    drop((reader, collector));
    let (objects, _) = pack::open(dir.path()).unwrap();
    assert_range(&*objects, 1000..1010);
    for i in 0..50 {
        assert_eq!(
            objects.read(&hashed(i).0).unwrap().is_some(),
            i % 2 == 0,
            "object {i}"
        );
    }
}
