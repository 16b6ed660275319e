//! Model-based tests of the `Store` API: random sequences of operations against the memory
//! and disk backends must agree with a plain map of path to bytes per branch.

use std::collections::BTreeMap;

use kith_store::{EntryKind, Store};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Put(String, Vec<u8>),
    Rm(String),
    Commit,
    Branch(u8),
    Switch(u8),
    Reopen,
}

/// Paths in 3 folders of up to 48 files (so folders grow past a leaf and shrink back),
/// plus a nested folder.
fn path() -> impl Strategy<Value = String> {
    (
        0..3u8,
        prop_oneof![
            (0..48u8).prop_map(|f| format!("f{f}.vcf")),
            (0..3u8).prop_map(|f| format!("sub/g{f}"))
        ],
    )
        .prop_map(|(d, f)| format!("/d{d}/{f}"))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (path(), proptest::collection::vec(any::<u8>(), 0..24)).prop_map(|(p, b)| Op::Put(p, b)),
        3 => path().prop_map(Op::Rm),
        2 => Just(Op::Commit),
        1 => (0..3u8).prop_map(Op::Branch),
        1 => (0..3u8).prop_map(Op::Switch),
        1 => Just(Op::Reopen),
    ]
}

type Files = BTreeMap<String, Vec<u8>>;

/// Runs `ops` against a store and the model; `reopen` gives a fresh handle on the same data.
fn check(
    ops: Vec<Op>,
    mut store: Store,
    reopen: &dyn Fn() -> Option<Store>,
) -> Result<(), TestCaseError> {
    let mut committed: BTreeMap<String, Files> = BTreeMap::new();
    let mut branch = "main".to_string();
    let mut pending: Files = Files::new();
    let mut staged: Vec<Op> = Vec::new();
    for op in ops {
        match op {
            Op::Put(p, b) => {
                pending.insert(p.clone(), b.clone());
                staged.push(Op::Put(p, b));
            }
            Op::Rm(p) => {
                pending.remove(&p);
                staged.push(Op::Rm(p));
            }
            Op::Commit => {
                let mut tx = store.transaction(&branch).unwrap();
                for s in staged.drain(..) {
                    match s {
                        Op::Put(p, b) => drop(tx.put(&p, &b).unwrap()),
                        Op::Rm(p) => tx.remove(&p).unwrap(),
                        _ => unreachable!(),
                    }
                }
                tx.commit("model", "step").unwrap();
                committed.insert(branch.clone(), pending.clone());
            }
            Op::Branch(n) => {
                let name = format!("b{n}");
                if let (Some(head), None) =
                    (store.head(&branch).unwrap(), store.head(&name).unwrap())
                {
                    store.create_branch(&name, head).unwrap();
                    committed.insert(name, committed[&branch].clone());
                }
            }
            Op::Switch(n) => {
                let name = if n == 0 {
                    "main".to_string()
                } else {
                    format!("b{n}")
                };
                if committed.contains_key(&name) {
                    branch = name;
                    pending = committed[&branch].clone();
                    staged.clear();
                }
            }
            Op::Reopen => {
                if let Some(s) = reopen() {
                    store = s;
                }
            }
        }
        for (name, files) in &committed {
            prop_assert_eq!(&read_all(&store, name), files, "branch {}", name);
        }
    }
    Ok(())
}

/// Every file on a branch, by walking the tree.
fn read_all(store: &Store, branch: &str) -> Files {
    let root = store.head_tree(branch).unwrap();
    let mut out = Files::new();
    store
        .walk_files(&root, &mut |p, h| {
            out.insert(format!("/{p}"), store.blob(h).unwrap());
            Ok(())
        })
        .unwrap();
    for (p, b) in &out {
        assert_eq!(store.get(&root, p).unwrap().as_ref(), Some(b));
        assert_eq!(
            store.find(&root, p).unwrap().map(|f| f.0),
            Some(EntryKind::File)
        );
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn memory_backend_agrees_with_model(ops in proptest::collection::vec(op(), 1..120)) {
        check(ops, Store::memory(), &|| None)?;
    }

    #[test]
    fn disk_backend_agrees_with_model(ops in proptest::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let store = Store::create(&path).unwrap();
        check(ops, store, &|| Some(Store::open(&path).unwrap()))?;
    }
}
