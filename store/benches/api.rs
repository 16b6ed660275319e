//! Store API throughput, driven by `benches/store-vs-git.sh`: N single-file commits on a
//! disk store, each durable, then the same as checkpoints of one transaction (one durable
//! point, as `git fast-import`), then reading every file of the head back. Prints one JSON
//! line.
//!
//! `cargo bench -p kith-store --bench api -- DIR N`

use std::time::Instant;

use kith_store::Store;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(dir), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: api DIR COMMITS (run by benches/store-vs-git.sh)");
        return;
    };
    let store = Store::create(std::path::Path::new(dir)).expect("a new store folder");
    let start = Instant::now();
    for i in 0..n {
        let mut tx = store.transaction("main").unwrap();
        tx.put(
            &format!("/notes/{i:05}.txt"),
            format!("note {i}\n").as_bytes(),
        )
        .unwrap();
        tx.commit("bench", &format!("note {i}")).unwrap();
    }
    let commit_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut tx = store.transaction("bulk").unwrap();
    for i in 0..n {
        tx.put(
            &format!("/notes/{i:05}.txt"),
            format!("note {i}\n").as_bytes(),
        )
        .unwrap();
        tx.checkpoint("bench", &format!("note {i}")).unwrap();
    }
    tx.commit("bench", "bulk").unwrap();
    let bulk_secs = start.elapsed().as_secs_f64();
    assert_eq!(store.log(store.head("bulk").unwrap().unwrap()).count(), n);
    let start = Instant::now();
    let root = store.head_tree("main").unwrap();
    let mut bytes = 0;
    store
        .walk_files(&root, &mut |_, h| {
            bytes += store.blob(h)?.len();
            Ok(())
        })
        .unwrap();
    let read_secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"commits\":{n},\"commit_secs\":{commit_secs:.4},\"bulk_secs\":{bulk_secs:.4},\"read_secs\":{read_secs:.4},\"bytes_read\":{bytes}}}"
    );
}
