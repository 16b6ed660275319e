//! Three-way merge of trees and commits: properties over random trees, every tree case,
//! conflicts kept as data, and a criss-cross history compared with `git merge`.

use std::collections::BTreeMap;
use std::process::Command;

use kith_store::{Hash, MergeOutcome, Mergers, Store};
use proptest::prelude::*;

type Files = BTreeMap<String, Vec<u8>>;

/// Writes `files` as the whole tree of a new commit on `branch`, with `parents`.
fn commit_files(store: &Store, files: &Files, parents: Vec<Hash>) -> Hash {
    let mut tx = store.transaction("scratch").unwrap();
    for (p, b) in files {
        tx.put(p, b).unwrap();
    }
    let tree = tx.tree().unwrap();
    let c = kith_store::Commit {
        tree,
        parents,
        author: "t".into(),
        time: kith_store::now_millis(),
        message: "t".into(),
    };
    store.write_commit(&c).unwrap()
}

fn files_of(store: &Store, tree: &Hash) -> Files {
    let mut out = Files::new();
    store
        .walk_files(tree, &mut |p, h| {
            out.insert(p.to_string(), store.blob(h).unwrap());
            Ok(())
        })
        .unwrap();
    out
}

/// Merges `ours` and `theirs` as edits of `base`; returns the merged files without the
/// conflict records, and the conflicted paths.
fn merge3(base: &Files, ours: &Files, theirs: &Files) -> (Files, Vec<String>) {
    let store = Store::memory();
    let b = commit_files(&store, base, vec![]);
    let o = commit_files(&store, ours, vec![b]);
    let t = commit_files(&store, theirs, vec![b]);
    let merged = store.merge_commits(o, t, &Mergers::new()).unwrap();
    let mut files = files_of(&store, &merged.tree);
    files.retain(|p, _| !p.starts_with(".kith/"));
    let recorded: Vec<String> = store
        .conflicts(&merged.tree)
        .unwrap()
        .into_iter()
        .map(|c| c.path)
        .collect();
    let conflicts: Vec<String> = merged.conflicts.into_iter().map(|c| c.path).collect();
    assert_eq!(recorded, {
        let mut c = conflicts.clone();
        c.sort();
        c
    });
    (files, conflicts)
}

fn arb_files() -> impl Strategy<Value = Files> {
    proptest::collection::btree_map(
        prop_oneof!["d[0-2]/f[0-9]{1,2}", "d[0-2]/s/g[0-3]", "top[0-3]"],
        proptest::collection::vec(0..4u8, 0..3),
        0..60,
    )
}

/// Applies random edits (change, delete, add) to a file set.
fn arb_edit(base: Files) -> impl Strategy<Value = Files> {
    let keys: Vec<String> = base.keys().cloned().collect();
    (
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                0..3u8,
                proptest::collection::vec(0..4u8, 0..3),
            ),
            0..10,
        ),
        proptest::collection::btree_map(
            "d[0-2]/f[0-9]{1,2}|new[0-5]",
            proptest::collection::vec(4..8u8, 1..3),
            0..5,
        ),
    )
        .prop_map(move |(edits, adds)| {
            let mut f = base.clone();
            for (idx, op, bytes) in edits {
                if keys.is_empty() {
                    break;
                }
                let k = &keys[idx.index(keys.len())];
                match op {
                    0 => {
                        f.remove(k);
                    }
                    _ => {
                        f.insert(k.clone(), bytes);
                    }
                }
            }
            for (k, v) in adds {
                f.insert(k, v);
            }
            f
        })
}

fn three() -> impl Strategy<Value = (Files, Files, Files)> {
    arb_files().prop_flat_map(|b| (Just(b.clone()), arb_edit(b.clone()), arb_edit(b)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn an_unchanged_side_gives_the_other_side((base, ours, _) in three()) {
        prop_assert_eq!(merge3(&base, &ours, &base), (ours.clone(), vec![]));
        prop_assert_eq!(merge3(&base, &base, &ours), (ours, vec![]));
    }

    #[test]
    fn merging_a_version_with_itself_gives_it((base, ours, _) in three()) {
        prop_assert_eq!(merge3(&base, &ours, &ours), (ours, vec![]));
    }

    #[test]
    fn merge_is_symmetric_up_to_which_side_a_conflict_keeps((base, ours, theirs) in three()) {
        let (ab, ca) = merge3(&base, &ours, &theirs);
        let (ba, cb) = merge3(&base, &theirs, &ours);
        let (mut ca_sorted, mut cb_sorted) = (ca.clone(), cb.clone());
        ca_sorted.sort();
        cb_sorted.sort();
        prop_assert_eq!(&ca_sorted, &cb_sorted);
        let strip = |f: &Files| -> Files { f.iter().filter(|(p, _)| !ca.contains(p)).map(|(p, b)| (p.clone(), b.clone())).collect() };
        prop_assert_eq!(strip(&ab), strip(&ba));
    }

    #[test]
    fn nothing_one_side_alone_changed_is_lost((base, ours, theirs) in three()) {
        let (merged, conflicts) = merge3(&base, &ours, &theirs);
        let paths: std::collections::BTreeSet<&String> = base.keys().chain(ours.keys()).chain(theirs.keys()).collect();
        for p in paths {
            if conflicts.contains(p) { continue; }
            let (b, o, t) = (base.get(p), ours.get(p), theirs.get(p));
            let want = if o == b { t } else { o };
            prop_assert_eq!(merged.get(p), want, "path {}", p);
        }
    }
}

fn files(items: &[(&str, &str)]) -> Files {
    items
        .iter()
        .map(|(p, b)| (p.to_string(), b.as_bytes().to_vec()))
        .collect()
}

#[test]
fn every_tree_case_is_decided() {
    let base = files(&[
        ("keep", "k"),
        ("mod-del", "1"),
        ("del-del", "1"),
        ("both-mod", "1"),
        ("to-dir", "file"),
    ]);
    let ours = files(&[
        ("keep", "k"),
        ("mod-del", "2"),
        ("both-mod", "ours"),
        ("add-add-same", "x"),
        ("add-add-diff", "o"),
        ("to-dir", "changed"),
    ]);
    let theirs = files(&[
        ("keep", "k"),
        ("both-mod", "theirs"),
        ("add-add-same", "x"),
        ("add-add-diff", "t"),
        ("to-dir/inside", "now a folder"),
    ]);
    let (merged, mut conflicts) = merge3(&base, &ours, &theirs);
    conflicts.sort();
    assert_eq!(conflicts, ["add-add-diff", "both-mod", "mod-del", "to-dir"]);
    assert_eq!(merged["keep"], b"k");
    assert!(!merged.contains_key("del-del"));
    assert_eq!(merged["add-add-same"], b"x");
    assert_eq!(
        merged["add-add-diff"], b"o",
        "the path keeps our side while the conflict is open"
    );
    assert_eq!(merged["both-mod"], b"ours");
    assert_eq!(
        merged["mod-del"], b"2",
        "the surviving version stays served"
    );
    assert_eq!(
        merged["to-dir/inside"], b"now a folder",
        "a folder wins over a file"
    );
}

#[test]
fn conflicts_are_committed_listed_and_resolved() {
    let store = Store::memory();
    let mut tx = store.transaction("main").unwrap();
    tx.put("/contacts/a.vcf", b"base").unwrap();
    let base = tx.commit("t", "base").unwrap().unwrap();
    store.create_branch("phone", base).unwrap();
    let mut tx = store.transaction("main").unwrap();
    tx.put("/contacts/a.vcf", b"laptop").unwrap();
    tx.put("/contacts/b.vcf", b"only laptop").unwrap();
    tx.commit("laptop", "edit").unwrap();
    let mut tx = store.transaction("phone").unwrap();
    tx.put("/contacts/a.vcf", b"phone").unwrap();
    let phone = tx.commit("phone", "edit").unwrap().unwrap();

    let outcome = store
        .merge_into("main", phone, &Mergers::new(), "laptop", "sync")
        .unwrap();
    let MergeOutcome::Merged { commit, conflicts } = outcome else {
        panic!("expected a merge commit")
    };
    assert_eq!(conflicts.len(), 1);
    let tree = store.commit(&commit).unwrap().tree;
    let listed = store.conflicts(&tree).unwrap();
    assert_eq!(listed[0].path, "contacts/a.vcf");
    assert_eq!(store.blob(&listed[0].ours.unwrap()).unwrap(), b"laptop");
    assert_eq!(store.blob(&listed[0].theirs.unwrap()).unwrap(), b"phone");
    assert_eq!(store.blob(&listed[0].base.unwrap()).unwrap(), b"base");
    assert_eq!(
        store.get(&tree, "/contacts/b.vcf").unwrap().unwrap(),
        b"only laptop"
    );

    let mut tx = store.transaction("main").unwrap();
    assert!(
        tx.resolve("/contacts/b.vcf", Some(b"x")).is_err(),
        "no conflict there"
    );
    tx.resolve("/contacts/a.vcf", Some(b"settled")).unwrap();
    tx.commit("laptop", "resolve").unwrap();
    let tree = store.head_tree("main").unwrap();
    assert!(store.conflicts(&tree).unwrap().is_empty());
    assert_eq!(
        store.get(&tree, "/contacts/a.vcf").unwrap().unwrap(),
        b"settled"
    );
    assert!(
        store
            .list(&tree, "/")
            .unwrap()
            .iter()
            .all(|e| e.name != ".kith"),
        "empty records disappear"
    );

    assert_eq!(
        store
            .merge_into("main", phone, &Mergers::new(), "l", "again")
            .unwrap(),
        MergeOutcome::UpToDate
    );
    store.create_branch("behind", base).unwrap();
    let head = store.head("main").unwrap().unwrap();
    assert_eq!(
        store
            .merge_into("behind", head, &Mergers::new(), "l", "ff")
            .unwrap(),
        MergeOutcome::FastForward(head)
    );
}

#[test]
fn two_branches_changing_1000_files_each_of_100k_merge_cleanly() {
    let store = Store::memory();
    let mut tx = store.transaction("main").unwrap();
    for i in 0..100_000 {
        tx.put(&format!("/mail/inbox/{i:06}"), format!("m{i}").as_bytes())
            .unwrap();
    }
    let base = tx.commit("t", "base").unwrap().unwrap();
    store.create_branch("other", base).unwrap();
    let mut tx = store.transaction("main").unwrap();
    for i in 0..1000 {
        tx.put(&format!("/mail/inbox/{:06}", i * 2), b"ours")
            .unwrap();
    }
    tx.commit("t", "ours").unwrap();
    let mut tx = store.transaction("other").unwrap();
    for i in 0..1000 {
        tx.put(&format!("/mail/inbox/{:06}", i * 2 + 1), b"theirs")
            .unwrap();
    }
    let theirs = tx.commit("t", "theirs").unwrap().unwrap();
    let MergeOutcome::Merged { conflicts, .. } = store
        .merge_into("main", theirs, &Mergers::new(), "t", "m")
        .unwrap()
    else {
        panic!()
    };
    assert!(conflicts.is_empty());
    let tree = store.head_tree("main").unwrap();
    assert_eq!(
        store.get(&tree, "/mail/inbox/000000").unwrap().unwrap(),
        b"ours"
    );
    assert_eq!(
        store.get(&tree, "/mail/inbox/000001").unwrap().unwrap(),
        b"theirs"
    );
    assert_eq!(
        store.get(&tree, "/mail/inbox/099999").unwrap().unwrap(),
        b"m99999"
    );
    assert_eq!(store.list(&tree, "/mail/inbox").unwrap().len(), 100_000);
}

/// The same criss-cross history built in Kith and in git: the files that conflict and the
/// merged contents of every other file agree.
#[test]
fn criss_cross_merge_agrees_with_git() {
    let git = tempfile::tempdir().unwrap();
    let g = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(git.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", git.path())
            .output()
            .expect("git must be installed (scripts/setup --tests installs it)");
        assert!(
            out.status.success() || args[0] == "merge",
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let write = |files: &Files| {
        for entry in std::fs::read_dir(git.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.file_name().unwrap() != ".git" {
                std::fs::remove_file(&p).unwrap();
            }
        }
        for (p, b) in files {
            std::fs::write(git.path().join(p), b).unwrap();
        }
        g(&["add", "-A"]);
        g(&["commit", "-qm", "c", "--allow-empty"]);
    };
    // Line-structured files, so git's line merge and Kith's whole-file merge can be compared
    // file by file: a file changed on one side only must merge the same way in both.
    let root = files(&[
        ("f", "1\n"),
        ("a", "1\n"),
        ("b", "1\n"),
        ("c", "1\n"),
        ("d", "1\n"),
        ("e", "1\n"),
    ]);
    let l1 = files(&[
        ("f", "L\n"),
        ("a", "L1\n"),
        ("b", "1\n"),
        ("c", "1\n"),
        ("d", "1\n"),
        ("e", "1\n"),
    ]);
    let r1 = files(&[
        ("f", "R\n"),
        ("a", "1\n"),
        ("b", "R1\n"),
        ("c", "1\n"),
        ("d", "1\n"),
        ("e", "1\n"),
    ]);
    // Criss-cross: L2 merges R1 into L1 (a=L1, b=R1, and L2 also edits c); R2 merges L1 into R1
    // resolving b differently (a=L1, b=R2) and editing e. Both sides keep their own f, which
    // conflicted already between the two merge bases.
    let l2 = files(&[
        ("f", "L\n"),
        ("a", "L1\n"),
        ("b", "R1\n"),
        ("c", "L2\n"),
        ("d", "1\n"),
        ("e", "1\n"),
    ]);
    let r2 = files(&[
        ("f", "R\n"),
        ("a", "L1\n"),
        ("b", "R2\n"),
        ("c", "1\n"),
        ("d", "1\n"),
        ("e", "R2\n"),
    ]);

    g(&["init", "-q", "-b", "main"]);
    write(&root);
    g(&["checkout", "-qb", "right"]);
    write(&r1);
    g(&["checkout", "-q", "main"]);
    write(&l1);
    g(&["merge", "-q", "--no-commit", "right"]);
    write(&l2);
    g(&["checkout", "-q", "right"]);
    g(&["merge", "-q", "--no-commit", "main~1"]);
    write(&r2);
    g(&["checkout", "-q", "main"]);
    let merged = g(&["merge", "-q", "--no-ff", "-m", "final", "right"]);
    let git_conflicts: Vec<String> =
        String::from_utf8(g(&["diff", "--name-only", "--diff-filter=U"]).stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
    let git_files: Files = root
        .keys()
        .filter_map(|p| {
            std::fs::read(git.path().join(p))
                .ok()
                .map(|b| (p.clone(), b))
        })
        .collect();
    let _ = merged;
    assert_eq!(
        git_conflicts,
        ["f"],
        "the history is built to conflict on f only"
    );

    let store = Store::memory();
    let c0 = commit_files(&store, &root, vec![]);
    let cl1 = commit_files(&store, &l1, vec![c0]);
    let cr1 = commit_files(&store, &r1, vec![c0]);
    let cl2 = commit_files(&store, &l2, vec![cl1, cr1]);
    let cr2 = commit_files(&store, &r2, vec![cr1, cl1]);
    let mut bases = store.merge_bases(cl2, cr2).unwrap();
    bases.sort();
    let mut expected = vec![cl1, cr1];
    expected.sort();
    assert_eq!(bases, expected, "a criss-cross has two merge bases");
    let result = store.merge_commits(cl2, cr2, &Mergers::new()).unwrap();
    let kith_conflicts: Vec<String> = result.conflicts.iter().map(|c| c.path.clone()).collect();
    assert_eq!(kith_conflicts, git_conflicts, "the same files conflict");
    let kith_files = files_of(&store, &result.tree);
    for (p, bytes) in &git_files {
        if !git_conflicts.contains(p) {
            assert_eq!(
                kith_files.get(p),
                Some(bytes),
                "{p} merged differently from git"
            );
        }
    }
}
