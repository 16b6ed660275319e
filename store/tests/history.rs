//! History, diff, merge bases and the watch, through the public API.

use std::time::Duration;

use kith_store::{Hash, Store};

fn commit(store: &Store, branch: &str, path: &str, body: &str) -> Hash {
    let mut tx = store.transaction(branch).unwrap();
    tx.put(path, body.as_bytes()).unwrap();
    tx.commit("test", &format!("{path}={body}"))
        .unwrap()
        .unwrap()
}

#[test]
fn log_lists_newest_first_and_filters_by_path() {
    let store = Store::memory();
    let a = commit(&store, "main", "/x", "1");
    let b = commit(&store, "main", "/y", "1");
    let c = commit(&store, "main", "/x", "2");
    let all: Vec<Hash> = store.log(c).map(|r| r.unwrap().0).collect();
    assert_eq!(all, vec![c, b, a]);
    let x: Vec<Hash> = store.log_path(c, "/x").map(|r| r.unwrap().0).collect();
    assert_eq!(x, vec![c, a]);
}

#[test]
fn diff_reports_added_modified_deleted_files_in_nested_and_large_folders() {
    let store = Store::memory();
    let mut tx = store.transaction("main").unwrap();
    for i in 0..500 {
        tx.put(&format!("/big/{i}"), b"v1").unwrap();
    }
    tx.put("/a/b/c", b"1").unwrap();
    let first = tx.commit("t", "one").unwrap().unwrap();
    let mut tx = store.transaction("main").unwrap();
    tx.put("/big/7", b"v2").unwrap();
    tx.remove("/big/8").unwrap();
    tx.put("/big/new", b"v1").unwrap();
    tx.remove("/a").unwrap();
    let second = tx.commit("t", "two").unwrap().unwrap();
    let old = store.commit(&first).unwrap().tree;
    let new = store.commit(&second).unwrap().tree;
    let paths: Vec<(String, bool, bool)> = store
        .diff(&old, &new)
        .unwrap()
        .into_iter()
        .map(|c| (c.path, c.old.is_some(), c.new.is_some()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("a/b/c".into(), true, false),
            ("big/7".into(), true, true),
            ("big/8".into(), true, false),
            ("big/new".into(), false, true),
        ]
    );
    assert!(store.diff(&new, &new).unwrap().is_empty());
}

#[test]
fn merge_bases_of_a_criss_cross_history_are_both_bases() {
    let store = Store::memory();
    let root = commit(&store, "main", "/f", "0");
    store.create_branch("other", root).unwrap();
    let a1 = commit(&store, "main", "/a", "1");
    let b1 = commit(&store, "other", "/b", "1");
    // Criss-cross: each side merges the other's first commit.
    let merge = |branch: &str, ours: Hash, theirs: Hash, msg: &str| {
        let tree = store.commit(&ours).unwrap().tree;
        let c = kith_store::Commit {
            tree,
            parents: vec![ours, theirs],
            author: "t".into(),
            time: kith_store::now_millis(),
            message: msg.into(),
        };
        let h = store.write_commit(&c).unwrap();
        store.set_branch(branch, Some(ours), Some(h)).unwrap();
        h
    };
    let a2 = merge("main", a1, b1, "main merges other");
    let b2 = merge("other", b1, a1, "other merges main");
    let mut expected = vec![a1, b1];
    expected.sort();
    assert_eq!(store.merge_bases(a2, b2).unwrap(), expected);
    assert_eq!(store.merge_bases(a1, b1).unwrap(), vec![root]);
    assert_eq!(store.merge_bases(a2, a1).unwrap(), vec![a1]);
    assert!(store.is_ancestor(root, b2).unwrap());
    assert!(!store.is_ancestor(a2, b2).unwrap());
}

#[test]
fn watch_sees_every_branch_move() {
    let store = Store::memory();
    let events = store.watch();
    let c1 = commit(&store, "main", "/x", "1");
    let e = events.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((e.name.as_str(), e.old, e.new), ("main", None, Some(c1)));
    let c2 = commit(&store, "main", "/x", "2");
    let e = events.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((e.old, e.new), (Some(c1), Some(c2)));
}

#[test]
fn a_stale_transaction_loses_the_race_and_changes_nothing() {
    let store = Store::memory();
    commit(&store, "main", "/x", "1");
    let mut slow = store.transaction("main").unwrap();
    slow.put("/x", b"slow").unwrap();
    let fast = commit(&store, "main", "/x", "fast");
    let err = slow.commit("t", "late").unwrap_err();
    assert!(
        matches!(err, kith_store::Error::BranchMoved { .. }),
        "{err}"
    );
    assert_eq!(store.head("main").unwrap(), Some(fast));
}

#[test]
fn bytes_come_back_exactly_and_bad_paths_are_refused() {
    let store = Store::memory();
    let weird: Vec<u8> = (0..=255).chain([b'\r', b'\n', 0, 0xff]).collect();
    let mut tx = store.transaction("main").unwrap();
    tx.put("/contacts/me/default/x.vcf", &weird).unwrap();
    tx.commit("t", "t").unwrap();
    let root = store.head_tree("main").unwrap();
    assert_eq!(
        store
            .get(&root, "contacts/me/default/x.vcf/")
            .unwrap()
            .unwrap(),
        weird
    );
    let mut tx = store.transaction("main").unwrap();
    assert!(tx.put("/a/../b", b"").is_err());
    assert!(tx.put("/", b"").is_err());
    assert!(matches!(
        store.get(&root, "/contacts"),
        Err(kith_store::Error::WrongKind { .. })
    ));
}

#[test]
fn watch_sees_commits_made_through_another_handle_on_the_same_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let service = Store::create(&path).unwrap();
    let events = service.watch();
    let cli = Store::open(&path).unwrap();
    let c1 = commit(&cli, "main", "/contacts/a.vcf", "1");
    let e = events.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((e.name.as_str(), e.new), ("main", Some(c1)));
    let root = service.commit(&c1).unwrap().tree;
    assert_eq!(
        service.get(&root, "/contacts/a.vcf").unwrap().unwrap(),
        b"1",
        "the other handle reads the new objects"
    );
}

#[test]
fn checkpoints_make_one_commit_each_and_move_the_branch_once() {
    let store = Store::memory();
    let base = commit(&store, "main", "/a", "0");
    let events = store.watch();
    let mut tx = store.transaction("main").unwrap();
    for i in 1..=3 {
        tx.put("/a", i.to_string().as_bytes()).unwrap();
        tx.checkpoint("t", &format!("step {i}")).unwrap();
    }
    assert_eq!(
        store.head("main").unwrap(),
        Some(base),
        "nothing moves before the commit"
    );
    let head = tx
        .commit("t", "unused: nothing changed after the last checkpoint")
        .unwrap()
        .unwrap();
    let messages: Vec<String> = store.log(head).map(|c| c.unwrap().1.message).collect();
    assert_eq!(messages, ["step 3", "step 2", "step 1", "/a=0"]);
    let e = events.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((e.old, e.new), (Some(base), Some(head)));
    assert!(
        events.recv_timeout(Duration::from_millis(300)).is_err(),
        "one move only"
    );
}
