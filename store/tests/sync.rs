//! The sync protocol between replicas over an in-memory link, as smoltcp tests its stack:
//! real framing, cuts at seeded random moments, a peer that lies, and three replicas
//! editing and syncing in random directions until they converge.

use kith_store::sync::{
    Endpoint, FetchClient, FrameDecoder, FrameError, Message, PushClient, RefUpdate, Sent, Server,
    SyncError,
};
use kith_store::{EntryKind, Hash, MergeOutcome, Mergers, Node, Object, Scope, Store};

/// How a run over the link ended.
#[derive(Debug)]
enum Ended {
    Done,
    Cut,
    Failed(SyncError),
}

/// Pumps messages between a client and a server through the frame codec, optionally
/// cutting the link after `cut` messages or corrupting one answer with `tamper`. Returns
/// the bytes that crossed the link.
fn link(
    client: &mut dyn Endpoint,
    server: &mut dyn Endpoint,
    cut: Option<usize>,
    tamper: &mut dyn FnMut(&mut Message),
) -> (Ended, u64) {
    let mut to_server: Vec<Message> = client.start().unwrap();
    let mut to_client: Vec<Message> = server.start().unwrap();
    let mut sent = 0usize;
    let mut bytes = 0u64;
    let mut carry = |m: Message| -> Message {
        let framed = m.encode();
        bytes += framed.len() as u64;
        let mut d = FrameDecoder::new();
        d.push(&framed);
        let m = d.next_message().unwrap();
        assert_eq!(d.next_message(), Err(FrameError::Incomplete));
        m
    };
    loop {
        if client.is_done() && to_server.is_empty() && to_client.is_empty() {
            return (Ended::Done, bytes);
        }
        if to_server.is_empty() && to_client.is_empty() {
            return (
                Ended::Failed(SyncError::Protocol("both sides wait".into())),
                bytes,
            );
        }
        for m in std::mem::take(&mut to_server) {
            sent += 1;
            if cut.is_some_and(|c| sent > c) {
                return (Ended::Cut, bytes);
            }
            match server.handle(carry(m)) {
                Ok(out) => to_client.extend(out),
                Err(e) => return (Ended::Failed(e), bytes),
            }
        }
        for mut m in std::mem::take(&mut to_client) {
            sent += 1;
            if cut.is_some_and(|c| sent > c) {
                return (Ended::Cut, bytes);
            }
            tamper(&mut m);
            match client.handle(carry(m)) {
                Ok(out) => to_server.extend(out),
                Err(e) => return (Ended::Failed(e), bytes),
            }
        }
    }
}

/// Fetches `from` into `into` and sets `into`'s `remote/main` to the peer's main.
fn fetch(into: &Store, from: &Store, cut: Option<usize>) -> (Ended, u64, u64) {
    let mut client = FetchClient::new(into.clone());
    let mut server = Server::new(from.clone());
    let (ended, bytes) = link(&mut client, &mut server, cut, &mut |_| {});
    let objects = client.report().map_or(0, |r| r.objects);
    if matches!(ended, Ended::Done) {
        for (name, head) in client.refs() {
            let tracking = format!("remote/{name}");
            let old = into.head(&tracking).unwrap();
            into.set_branch(&tracking, old, Some(*head)).unwrap();
        }
    }
    (ended, bytes, objects)
}

fn push(from: &Store, to: &Store, branch: &str) -> Option<String> {
    let local = from.head(branch).unwrap().unwrap();
    let name = branch.to_string();
    let mut client = PushClient::new(from.clone(), move |refs| {
        let old = refs.iter().find(|(n, _)| *n == name).map(|(_, h)| *h);
        vec![RefUpdate {
            name: name.clone(),
            old,
            new: local,
        }]
    });
    let mut server = Server::new(to.clone());
    let (ended, _) = link(&mut client, &mut server, None, &mut |_| {});
    assert!(matches!(ended, Ended::Done), "{ended:?}");
    client.results().unwrap()[0].1.clone()
}

fn commit(store: &Store, files: &[(&str, &str)]) -> Hash {
    let mut tx = store.transaction("main").unwrap();
    for (p, b) in files {
        tx.put(p, b.as_bytes()).unwrap();
    }
    tx.commit("t", "t").unwrap().unwrap()
}

/// Every node in the store has all its children: an interrupted fetch never leaves a
/// partial subtree behind.
fn assert_closed(store: &Store) {
    store
        .object_store()
        .for_each_hash(&mut |h| {
            let bytes = store.object_store().read(h)?.unwrap();
            let children: Vec<Hash> = match Object::decode(&bytes).unwrap() {
                Object::Node(Node::Leaf(es)) => es.iter().map(|e| e.hash).collect(),
                Object::Node(Node::Inode { children, .. }) => {
                    children.iter().map(|c| c.1).collect()
                }
                Object::Commit(c) => vec![c.tree],
                Object::Blob(_) => vec![],
            };
            for c in children {
                assert!(
                    store.object_store().contains(&c)?,
                    "{h} is in the store without its child {c}"
                );
            }
            Ok(())
        })
        .unwrap();
}

fn contacts(n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("/contacts/me/default/{i:05}.vcf"), format!("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{i}\r\nFN:Person {i}\r\nNOTE:{}\r\nEND:VCARD\r\n", "x".repeat(i % 200)))).collect()
}

#[test]
fn clone_then_sync_one_change_sends_only_that_path() {
    let home = Store::memory();
    let items = contacts(3000);
    let refs: Vec<(&str, &str)> = items
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    commit(&home, &refs);
    let laptop = Store::memory();
    let (ended, clone_bytes, objects) = fetch(&laptop, &home, None);
    assert!(matches!(ended, Ended::Done));
    assert!(objects > 3000, "{objects}");
    let head = home.head("main").unwrap().unwrap();
    assert_eq!(laptop.head("remote/main").unwrap(), Some(head));
    assert_eq!(
        laptop.commit(&head).unwrap().tree,
        home.head_tree("main").unwrap()
    );
    assert!(laptop.fsck(&mut |_| {}).unwrap().damage.is_empty());

    commit(
        &home,
        &[(
            "/contacts/me/default/00042.vcf",
            "BEGIN:VCARD\r\nFN:Changed\r\nEND:VCARD\r\n",
        )],
    );
    let (ended, bytes, objects) = fetch(&laptop, &home, None);
    assert!(matches!(ended, Ended::Done));
    println!(
        "clone of 3000 contacts: {clone_bytes} bytes; one change: {bytes} bytes, {objects} objects"
    );
    assert!(bytes < 4096, "syncing one change moved {bytes} bytes");
    assert!(objects <= 10, "{objects} objects");
    let (_, bytes, objects) = fetch(&laptop, &home, None);
    assert_eq!(objects, 0, "nothing new, nothing sent");
    assert!(bytes < 512, "{bytes}");

    // A small edit travels as changes of what the laptop has: the card and each node on
    // its path as a few bytes.
    let card = &items[1234];
    let edited = card
        .1
        .replace("END:VCARD", "TEL:+44 1632 960000\r\nEND:VCARD");
    commit(&home, &[(card.0.as_str(), edited.as_str())]);
    let (ended, bytes, _) = fetch(&laptop, &home, None);
    assert!(matches!(ended, Ended::Done));
    println!("one edited line: {bytes} bytes");
    assert!(bytes < 1500, "an edit of one line moved {bytes} bytes");
    let tree = laptop.head_tree("remote/main").unwrap();
    assert_eq!(
        laptop.get(&tree, &card.0).unwrap().unwrap(),
        edited.as_bytes()
    );
}

#[test]
fn a_fetch_cut_at_random_moments_resumes_and_never_leaves_partial_trees() {
    let home = Store::memory();
    let items = contacts(2000);
    let refs: Vec<(&str, &str)> = items
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    commit(&home, &refs);
    let laptop = Store::memory();
    let mut seed = 0x2545f4914f6cdd1du64;
    let mut attempts = 0;
    let mut first_objects = None;
    loop {
        attempts += 1;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let cut = if attempts < 6 {
            Some((seed % 6) as usize + 2)
        } else {
            None
        };
        let (ended, _, objects) = fetch(&laptop, &home, cut);
        assert_closed(&laptop);
        first_objects.get_or_insert(objects);
        if matches!(ended, Ended::Done) {
            break;
        }
        assert!(matches!(ended, Ended::Cut), "{ended:?}");
    }
    assert_eq!(
        laptop.head("remote/main").unwrap(),
        home.head("main").unwrap()
    );
    assert!(laptop.fsck(&mut |_| {}).unwrap().damage.is_empty());
}

#[test]
fn a_peer_sending_bytes_that_do_not_match_their_hash_is_cut_off() {
    let home = Store::memory();
    commit(&home, &[("/a/b.vcf", "real contents")]);
    let laptop = Store::memory();
    let mut client = FetchClient::new(laptop.clone());
    let mut server = Server::new(home.clone());
    let mut forged = None;
    let (ended, _) = link(&mut client, &mut server, None, &mut |m| {
        if let Message::Objects(objs) = m {
            for o in objs.iter_mut().filter_map(|s| match s {
                Sent::Full(bytes) => Some(bytes),
                _ => None,
            }) {
                if o.first() == Some(&1) {
                    forged = Some(Hash::of(o));
                    o.extend_from_slice(b" and a forged tail");
                }
            }
        }
    });
    assert!(
        matches!(ended, Ended::Failed(SyncError::BadObject(_))),
        "{ended:?}"
    );
    let forged = forged.expect("a blob crossed the link");
    assert!(!laptop.object_store().contains(&forged).unwrap());
    assert!(laptop.branches().unwrap().is_empty());
}

#[test]
fn pushes_must_be_fast_forwards() {
    let home = Store::memory();
    commit(&home, &[("/x", "1")]);
    let laptop = Store::memory();
    fetch(&laptop, &home, None);
    let base = laptop.head("remote/main").unwrap().unwrap();
    laptop.set_branch("main", None, Some(base)).unwrap();
    let mine = commit(&laptop, &[("/y", "laptop")]);
    assert_eq!(push(&laptop, &home, "main"), None);
    assert_eq!(home.head("main").unwrap(), Some(mine));
    assert_eq!(
        home.get(&home.head_tree("main").unwrap(), "/y")
            .unwrap()
            .unwrap(),
        b"laptop"
    );

    // The home board moves on; a push from the old state is refused and changes nothing.
    commit(&home, &[("/z", "home")]);
    let stale = laptop.head("main").unwrap();
    laptop.set_branch("main", stale, Some(base)).unwrap();
    let diverged = commit(&laptop, &[("/w", "diverged")]);
    let refused = push(&laptop, &home, "main").expect("refused");
    assert!(
        refused.contains("fast-forward") || refused.contains("moved"),
        "{refused}"
    );
    assert_ne!(home.head("main").unwrap(), Some(diverged));
}

#[test]
fn local_branches_neither_leave_a_replica_nor_are_pushed_to() {
    let disk = Store::memory();
    commit(&disk, &[("/x", "1")]);
    let mut tx = disk.transaction("local/services").unwrap();
    tx.put("dav.key", b"secret").unwrap();
    tx.commit("t", "keys").unwrap();
    let laptop = Store::memory();
    let (ended, _, _) = fetch(&laptop, &disk, None);
    assert!(matches!(ended, Ended::Done), "{ended:?}");
    let names: Vec<String> = laptop
        .branches()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["remote/main"], "only main travels");

    let mine = commit(&laptop, &[("/y", "2")]);
    laptop
        .set_branch("local/services", None, Some(mine))
        .unwrap();
    let refused = push(&laptop, &disk, "local/services").expect("refused");
    assert!(refused.contains("no push may set"), "{refused}");
    let keys = disk.head("local/services").unwrap().unwrap();
    assert_ne!(keys, mine);
}

/// Three replicas edit at random and sync in random directions (fetch, merge, push);
/// after a final round they hold the same tree, with every edit or a recorded conflict.
#[test]
fn three_replicas_converge() {
    let replicas = [Store::memory(), Store::memory(), Store::memory()];
    commit(&replicas[0], &[("/seed", "0")]);
    for r in &replicas[1..] {
        fetch(r, &replicas[0], None);
        let h = r.head("remote/main").unwrap().unwrap();
        r.set_branch("main", None, Some(h)).unwrap();
    }
    let mut written: Vec<(String, String)> = Vec::new();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let sync = |a: &Store, b: &Store| {
        fetch(a, b, None);
        let theirs = a.head("remote/main").unwrap().unwrap();
        match a
            .merge_into("main", theirs, &Mergers::new(), "t", "sync")
            .unwrap()
        {
            MergeOutcome::UpToDate | MergeOutcome::FastForward(_) | MergeOutcome::Merged { .. } => {
            }
        }
        // b may have moved on meanwhile in a real network; here a push after merge is a fast-forward.
        assert_eq!(push(a, b, "main"), None);
    };
    for step in 0..60 {
        let r = (next() % 3) as usize;
        if next() % 2 == 0 {
            let path = format!("/f{}", next() % 40);
            let body = format!("r{r} step {step}");
            commit(&replicas[r], &[(path.as_str(), body.as_str())]);
            written.push((path, body));
        } else {
            let other = (r + 1 + (next() % 2) as usize) % 3;
            sync(&replicas[r], &replicas[other]);
        }
    }
    sync(&replicas[0], &replicas[1]);
    sync(&replicas[2], &replicas[1]);
    sync(&replicas[0], &replicas[1]);
    let trees: Vec<Hash> = replicas
        .iter()
        .map(|r| r.head_tree("main").unwrap())
        .collect();
    assert_eq!(trees[0], trees[1]);
    assert_eq!(trees[1], trees[2]);
    // Every path written is present, either with its last value or inside a conflict record.
    let tree = trees[0];
    for (path, _) in &written {
        assert_eq!(
            replicas[0].find(&tree, path).unwrap().map(|f| f.0),
            Some(EntryKind::File),
            "{path} lost"
        );
    }
    for r in &replicas {
        assert!(r.fsck(&mut |_| {}).unwrap().damage.is_empty());
    }
}

#[test]
fn large_objects_travel_in_answers_of_bounded_size() {
    let home = Store::memory();
    let big: Vec<(String, String)> = (0..24)
        .map(|i| {
            (
                format!("/mail/me/INBOX/{i}.eml"),
                format!("{i}").repeat(300_000),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = big.iter().map(|(p, b)| (p.as_str(), b.as_str())).collect();
    commit(&home, &files);
    let laptop = Store::memory();
    let mut client = FetchClient::new(laptop.clone());
    let mut server = Server::new(home.clone());
    let mut largest = 0;
    let (ended, _) = link(&mut client, &mut server, None, &mut |m| {
        if let Message::Objects(objects) = m {
            largest = largest.max(objects.iter().map(Sent::len).sum::<usize>());
        }
    });
    assert!(matches!(ended, Ended::Done), "{ended:?}");
    assert!(largest < 5 << 20, "an answer held {largest} bytes");
    let head = client.refs()[0].1;
    let tree = laptop.commit(&head).unwrap().tree;
    assert_eq!(
        laptop.get(&tree, "/mail/me/INBOX/7.eml").unwrap().unwrap(),
        big[7].1.as_bytes()
    );
}

#[test]
fn a_partial_replica_fetches_only_its_prefixes_and_commits_beside_the_rest() {
    let home = Store::memory();
    let mut files = contacts(100);
    files.extend((0..100).map(|i| {
        (
            format!("/calendar/me/default/{i}.ics"),
            format!("event {i}"),
        )
    }));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    commit(&home, &refs);
    let partial = Store::memory().with_scope(Scope::prefixes(["/contacts"]).unwrap());
    let (ended, _, _) = fetch(&partial, &home, None);
    assert!(matches!(ended, Ended::Done), "{ended:?}");
    let head = partial.head("remote/main").unwrap().unwrap();
    partial.set_branch("main", None, Some(head)).unwrap();
    let tree = partial.head_tree("main").unwrap();
    let calendar = home
        .find(&home.head_tree("main").unwrap(), "/calendar")
        .unwrap()
        .unwrap()
        .1;
    assert!(!partial.object_store().contains(&calendar).unwrap());
    assert_eq!(
        partial.list(&tree, "/contacts/me/default").unwrap().len(),
        100
    );
    let mut tx = partial.transaction("main").unwrap();
    tx.put("/contacts/me/default/new.vcf", b"new").unwrap();
    assert!(matches!(
        tx.put("/calendar/x.ics", b"x"),
        Err(kith_store::Error::OutOfScope { .. })
    ));
    tx.commit("partial", "add one").unwrap();
    assert_eq!(push(&partial, &home, "main"), None);
    let tree = home.head_tree("main").unwrap();
    assert_eq!(
        home.get(&tree, "/contacts/me/default/new.vcf")
            .unwrap()
            .unwrap(),
        b"new"
    );
    assert_eq!(home.list(&tree, "/calendar/me/default").unwrap().len(), 100);
    assert!(partial.fsck(&mut |_| {}).unwrap().damage.is_empty());
}
