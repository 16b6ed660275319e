//! A transaction's reads (`find`, `get`, `list`) give what the store's reads give on the
//! tree the transaction would write, for random changes over a random base: files put
//! and removed, folders removed and set to other folders, at every depth.

use kith_store::{EntryKind, Store, Transaction};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Change {
    Put(String, Vec<u8>),
    Remove(String),
    /// Points a folder at the current tree of another.
    SetDir(String, String),
}

fn file() -> impl Strategy<Value = String> {
    (0..3u8, 0..40u8, 0..4u8).prop_map(|(d, f, deep)| match deep {
        0 => format!("/d{d}/sub/f{f}"),
        _ => format!("/d{d}/f{f}"),
    })
}

fn dir() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..3u8).prop_map(|d| format!("/d{d}")),
        (0..3u8).prop_map(|d| format!("/d{d}/sub")),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => (file(), proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(p, b)| Change::Put(p, b)),
        3 => file().prop_map(Change::Remove),
        1 => dir().prop_map(Change::Remove),
        1 => (dir(), dir()).prop_map(|(to, from)| Change::SetDir(to, from)),
    ]
}

fn apply(store: &Store, tx: &mut Transaction, change: &Change) {
    match change {
        Change::Put(path, bytes) => drop(tx.put(path, bytes).unwrap()),
        Change::Remove(path) => tx.remove(path).unwrap(),
        Change::SetDir(to, from) => {
            let found = store.find(&tx.tree().unwrap(), from).unwrap();
            if let Some((EntryKind::Dir, hash)) = found {
                tx.set(to, Some((EntryKind::Dir, hash))).unwrap();
            }
        }
    }
}

/// Every path the changes touch, their folders, and some that never exist.
fn queries() -> Vec<String> {
    let mut out = vec!["/".to_string(), "/nowhere".into(), "/d0/nowhere/x".into()];
    for d in 0..3 {
        out.push(format!("/d{d}"));
        out.push(format!("/d{d}/sub"));
        for f in 0..40 {
            out.push(format!("/d{d}/f{f}"));
            out.push(format!("/d{d}/sub/f{f}"));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn transaction_reads_agree_with_the_tree_it_writes(
        base in proptest::collection::vec(change(), 0..60),
        changes in proptest::collection::vec(change(), 1..30),
    ) {
        let store = Store::memory();
        let mut tx = store.transaction("main").unwrap();
        base.iter().for_each(|c| apply(&store, &mut tx, c));
        tx.commit("test", "base").unwrap();
        let mut tx = store.transaction("main").unwrap();
        for change in &changes {
            apply(&store, &mut tx, change);
            let tree = tx.tree().unwrap();
            for path in queries() {
                let found = store.find(&tree, &path).ok().flatten();
                prop_assert_eq!(tx.find(&path).ok().flatten(), found, "find {}", path);
                let listed = store.list(&tree, &path).map_err(|e| e.to_string());
                let tx_listed = tx.list(&path).map_err(|e| e.to_string());
                prop_assert_eq!(tx_listed, listed, "list {}", path);
                if let Some((EntryKind::File, _)) = found {
                    prop_assert_eq!(tx.get(&path).unwrap(), store.get(&tree, &path).unwrap());
                }
            }
        }
    }
}
