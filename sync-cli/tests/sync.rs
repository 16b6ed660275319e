//! Sync between real `kith` processes over mutual TLS on 127.0.0.1: replicas converging
//! under random edits and syncs, processes killed and connections cut mid-transfer,
//! peers that must be refused, partial replicas, and the vdir round trip through khard
//! and khal.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Kith;
use kith_store::{Hash, Node, Object, Store};

/// A replica in a temporary folder.
fn replica() -> Kith {
    Kith {
        dir: tempfile::tempdir().unwrap(),
    }
}

/// The replica that creates alice's identity (device `board`).
fn board() -> Kith {
    let k = replica();
    k.ok(&["init", "--zone", "alice.home.arpa", "--device", "board"]);
    k
}

/// Enrols `device` on `k`; returns the bundle's path.
fn enrol(k: &Kith, device: &str) -> PathBuf {
    let path = k.dir.path().join(format!("{device}.json"));
    k.ok(&["device", "add", device, "-o", path.to_str().unwrap()]);
    path
}

/// Clones `url` with `bundle` into a new replica.
fn clone(bundle: &Path, url: &str, extra: &[&str]) -> Kith {
    let k = replica();
    let mut args = vec!["clone", "--bundle", bundle.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(url);
    let out = k.ok(&args);
    assert!(out.contains("cloned"), "{out}");
    k
}

/// A `kith serve sync` process; killed when dropped.
struct SyncServer {
    child: Child,
    url: String,
}

impl SyncServer {
    fn start(k: &Kith) -> SyncServer {
        SyncServer::on(k, "127.0.0.1:0")
    }

    fn on(k: &Kith, listen: &str) -> SyncServer {
        let (child, url) = k.spawn_service(&["serve", "sync", "--listen", listen]);
        assert!(url.starts_with("kith://"), "serve sync printed {url:?}");
        SyncServer { child, url }
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for SyncServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The head commit of `main`.
fn head(k: &Kith) -> String {
    k.json(&["status"])["branches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "main")
        .map(|b| b["commit"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Asserts `kith fsck` finds no damage.
fn assert_clean(k: &Kith) {
    let report = k.json(&["fsck"]);
    assert_eq!(report["damage"], serde_json::json!([]), "fsck: {report}");
}

/// A small deterministic random source; the seed is printed so a failure can be rerun
/// with KITH_TEST_SEED.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("KITH_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: KITH_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn vcard(uid: &str, extra: &[String]) -> Vec<u8> {
    let mut text = format!("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{uid}\r\nFN:{uid}\r\n");
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("END:VCARD\r\n");
    text.into_bytes()
}

/// Puts `bytes` at `path` on replica `k`.
fn put(k: &Kith, path: &str, bytes: &[u8]) {
    let out = k.run_with(&["put", path, "-"], bytes);
    assert!(
        out.status.success(),
        "put {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get(k: &Kith, path: &str) -> Option<Vec<u8>> {
    let out = k.run_with(&["get", path], b"");
    out.status.success().then_some(out.stdout)
}

/// Every replica knows the others' sync services as remotes named after their index.
fn link_all(replicas: &[Kith], servers: &[SyncServer]) {
    for (i, k) in replicas.iter().enumerate() {
        for (j, s) in servers.iter().enumerate() {
            if i != j {
                k.ok(&["remote", "add", &format!("r{j}"), &s.url]);
            }
        }
    }
}

#[test]
fn three_replicas_converge_under_random_edits_and_syncs() {
    let mut rng = Rng::new("converge");
    let a = board();
    put(&a, "/contacts/me/shared-0.vcf", &vcard("shared-0", &[]));
    put(&a, "/contacts/me/shared-1.vcf", &vcard("shared-1", &[]));
    let server_a = SyncServer::start(&a);
    let b = clone(&enrol(&a, "laptop"), &server_a.url, &[]);
    let c = clone(&enrol(&a, "phone"), &server_a.url, &[]);
    let replicas = [a, b, c];
    let servers: Vec<SyncServer> = std::iter::once(server_a)
        .chain(replicas[1..].iter().map(SyncServer::start))
        .collect();
    link_all(&replicas, &servers);

    // What must hold in the end: files added and not deleted, files deleted, and the
    // property lines each replica added to the shared cards.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let mut shared_lines: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    let mut mine: Vec<Vec<Vec<String>>> = vec![vec![Vec::new(), Vec::new()]; 3];
    for step in 0..36 {
        let r = rng.below(3) as usize;
        let k = &replicas[r];
        match rng.below(4) {
            0 | 1 => {
                let path = format!("/contacts/me/r{r}-{step}.vcf");
                let bytes = vcard(&format!("r{r}-{step}"), &[format!("NOTE:step {step}")]);
                put(k, &path, &bytes);
                files.insert(path, bytes);
            }
            2 => {
                let own: Vec<String> = files
                    .keys()
                    .filter(|p| p.starts_with(&format!("/contacts/me/r{r}-")))
                    .cloned()
                    .collect();
                if let Some(path) = own.get(rng.below(own.len().max(1) as u64) as usize)
                    && get(k, path).is_some()
                {
                    k.ok(&["rm", path]);
                    files.remove(path);
                    deleted.insert(path.clone());
                }
            }
            _ => {
                let card = rng.below(2) as usize;
                let line = format!("X-EDIT-R{r}-S{step}:{step}");
                let path = format!("/contacts/me/shared-{card}.vcf");
                let current = get(k, &path).unwrap();
                let text = String::from_utf8(current).unwrap();
                let edited = text.replace("END:VCARD", &format!("{line}\r\nEND:VCARD"));
                put(k, &path, edited.as_bytes());
                shared_lines[card].push(line.clone());
                mine[r][card].push(line);
            }
        }
        let (x, y) = (rng.below(3) as usize, rng.below(3) as usize);
        if x != y {
            let out = replicas[x].run_with(&["sync", &format!("r{y}")], b"");
            assert!(
                out.status.success(),
                "step {step}: r{x} sync r{y}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // Converge: every replica syncs with the first, twice round.
    for _ in 0..2 {
        for k in &replicas[1..] {
            k.ok(&["sync", "r0"]);
        }
    }
    let heads: Vec<String> = replicas.iter().map(head).collect();
    assert!(
        heads.iter().all(|h| *h == heads[0]),
        "heads differ: {heads:?}"
    );
    for k in &replicas {
        assert_clean(k);
        for (path, bytes) in &files {
            assert_eq!(get(k, path).as_deref(), Some(&bytes[..]), "{path} lost");
        }
        for path in &deleted {
            assert_eq!(get(k, path), None, "{path} came back");
        }
        for (card, lines) in shared_lines.iter().enumerate() {
            let text =
                String::from_utf8(get(k, &format!("/contacts/me/shared-{card}.vcf")).unwrap())
                    .unwrap();
            let conflicts = k.ok(&["conflicts"]);
            for line in lines {
                assert!(
                    text.contains(line.as_str()) || conflicts.contains(&format!("shared-{card}")),
                    "edit {line} lost from shared-{card}: {text}"
                );
            }
        }
    }
}

/// A TCP relay that forwards one connection and cuts it after `budget` bytes from the
/// server.
fn cutting_relay(server_port: u16, budget: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = std::thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        let server = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
        let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let up = std::thread::spawn(move || {
            let _ = std::io::copy(&mut c2, &mut s2);
            let _ = s2.shutdown(std::net::Shutdown::Both);
        });
        let (mut from, mut to) = (server, client);
        let mut left = budget;
        let mut buffer = [0u8; 8192];
        while left > 0 {
            let n = match from.read(&mut buffer[..left.min(8192)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to.write_all(&buffer[..n]).is_err() {
                break;
            }
            left -= n;
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
        let _ = up.join();
    });
    (port, relay)
}

/// Writes `n` vCards of about 4 KB named after `tag` into a new folder.
fn cards(dir: &Path, tag: &str, n: usize) -> PathBuf {
    let folder = dir.join(tag);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..n {
        let notes: Vec<String> = (0..40)
            .map(|j| format!("NOTE:{tag} {i} {j} {}", "x".repeat(80)))
            .collect();
        std::fs::write(
            folder.join(format!("{tag}-{i}.vcf")),
            vcard(&format!("{tag}-{i}"), &notes),
        )
        .unwrap();
    }
    folder
}

#[test]
fn killed_processes_and_cut_connections_never_damage_a_replica() {
    let mut rng = Rng::new("faults");
    let a = board();
    let mut server = SyncServer::start(&a);
    let bundle = enrol(&a, "laptop");
    let b = clone(&bundle, &server.url, &[]);
    let work = tempfile::tempdir().unwrap();
    let mut interrupted = 0;
    let mut window = 300;
    for round in 0..50 {
        // New data on both sides, so the sync moves data both ways.
        let on_a = cards(work.path(), &format!("a{round}"), 60);
        a.ok(&[
            "import",
            on_a.to_str().unwrap(),
            &format!("/contacts/a{round}"),
        ]);
        let on_b = cards(work.path(), &format!("b{round}"), 30);
        b.ok(&[
            "import",
            on_b.to_str().unwrap(),
            &format!("/contacts/b{round}"),
        ]);
        match rng.below(3) {
            0 => {
                // Kill the syncing client.
                let mut child = sync_for(&b, rng.below(window));
                let _ = child.kill();
                child.wait().unwrap();
            }
            1 => {
                // Kill the server mid-session, then start it again on the same port.
                let mut child = sync_for(&b, rng.below(window));
                let port = server.port();
                drop(server);
                child.wait().unwrap();
                server = restart(&a, port);
            }
            _ => {
                // Cut the connection after a random number of bytes.
                let (port, relay) = cutting_relay(server.port(), rng.below(250_000) as usize);
                let url = format!("kith://127.0.0.1:{port}");
                b.run_with(&["remote", "add", "cut", &url], b"");
                b.run_with(&["sync", "cut"], b"");
                b.ok(&["remote", "remove", "cut"]);
                relay.join().unwrap();
            }
        }
        assert_clean(&a);
        assert_clean(&b);
        if head(&a) != head(&b) {
            interrupted += 1;
        }
        let clean = Instant::now();
        let out = b.run_with(&["sync"], b"");
        // Faults land within the time a whole sync takes, whatever this machine's speed.
        window = (clean.elapsed().as_millis() as u64).max(20);
        assert!(
            out.status.success(),
            "round {round}: the sync after a fault failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            head(&a),
            head(&b),
            "round {round}: replicas differ after a clean sync"
        );
    }
    assert_clean(&a);
    assert_clean(&b);
    assert_eq!(b.ok(&["ls", "/contacts/a49"]).lines().count(), 60);
    eprintln!("faults: {interrupted} of 50 syncs were interrupted before they finished");
    assert!(
        interrupted >= 15,
        "too few faults landed mid-sync: {interrupted}"
    );
}

/// A `kith sync` on `k`, left running for `millis`.
fn sync_for(k: &Kith, millis: u64) -> Child {
    let child = k
        .cmd(&["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(millis));
    child
}

/// Starts the sync service again on `port` (retrying while the old socket lingers).
fn restart(k: &Kith, port: u16) -> SyncServer {
    let listen = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (mut child, url) = k.spawn_service(&["serve", "sync", "--listen", &listen]);
        if url.starts_with("kith://") {
            return SyncServer { child, url };
        }
        let _ = child.wait();
        assert!(
            Instant::now() < deadline,
            "could not serve on {listen} again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes a bundle like `kith device add`'s, but with a certificate of our choosing.
fn forged_bundle(real: &Path, cert: &str, key: &str, dir: &Path) -> PathBuf {
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(real).unwrap()).unwrap();
    bundle["certificate"] = cert.into();
    bundle["key"] = key.into();
    let path = dir.join("forged.json");
    std::fs::write(&path, serde_json::to_vec(&bundle).unwrap()).unwrap();
    path
}

/// A self-signed Ed25519 certificate for `name` (PEM certificate, PKCS#8 PEM key).
fn self_signed(dir: &Path, name: &str) -> (String, String) {
    let (cert, key) = (dir.join("self.pem"), dir.join("self.key"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "ed25519", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={name}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (scripts/setup --tests installs it)");
    assert!(status.success());
    (
        std::fs::read_to_string(cert).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

fn clone_fails(bundle: &Path, url: &str) -> String {
    let k = replica();
    let err = k.fails(&["clone", "--bundle", bundle.to_str().unwrap(), url]);
    let store = Store::open(&k.store()).unwrap();
    assert_eq!(
        store.branches().unwrap(),
        vec![],
        "a refused clone kept branches"
    );
    err
}

#[test]
fn peers_without_a_valid_certificate_from_the_users_root_are_refused() {
    let a = board();
    put(&a, "/contacts/me/x.vcf", &vcard("x", &[]));
    let server = SyncServer::start(&a);
    let good = enrol(&a, "laptop");
    let work = tempfile::tempdir().unwrap();

    // A self-signed certificate with the right name.
    let (cert, key) = self_signed(work.path(), "laptop.alice.home.arpa");
    let err = clone_fails(&forged_bundle(&good, &cert, &key, work.path()), &server.url);
    assert!(err.contains("certificate"), "{err}");

    // A certificate from another user's root.
    let mallory = replica();
    mallory.ok(&["init", "--zone", "mallory.home.arpa", "--device", "evil"]);
    let foreign = enrol(&mallory, "laptop");
    let foreign: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&foreign).unwrap()).unwrap();
    let forged = forged_bundle(
        &good,
        foreign["certificate"].as_str().unwrap(),
        foreign["key"].as_str().unwrap(),
        work.path(),
    );
    let err = clone_fails(&forged, &server.url);
    assert!(err.contains("certificate"), "{err}");

    // A revoked device: it syncs until revoked, then is refused.
    let lost = clone(&enrol(&a, "lost"), &server.url, &[]);
    lost.ok(&["sync"]);
    a.ok(&["device", "revoke", "lost"]);
    let err = lost.fails(&["sync"]);
    assert!(err.contains("certificate"), "{err}");

    // A server presenting another user's certificate is refused by the client.
    let evil_server = SyncServer::start(&mallory);
    let err = clone_fails(&good, &evil_server.url);
    assert!(
        err.contains("certificate") || err.contains("Unknown"),
        "{err}"
    );

    // The legitimate device still works.
    let laptop = clone(&good, &server.url, &[]);
    assert_eq!(get(&laptop, "/contacts/me/x.vcf").unwrap(), vcard("x", &[]));
}

/// A sync server, in this process, that flips a byte of every blob it sends.
fn forging_server(k: &Kith) -> (u16, std::thread::JoinHandle<()>) {
    use kith_identity::Site;
    use kith_identity::link::{self, Credentials};
    use kith_store::sync::{self, Endpoint, Message, Sent, Server, SyncError};

    struct Forger(Server);
    impl Endpoint for Forger {
        fn start(&mut self) -> Result<Vec<Message>, SyncError> {
            self.0.start()
        }
        fn handle(&mut self, m: Message) -> Result<Vec<Message>, SyncError> {
            let mut out = self.0.handle(m)?;
            for reply in &mut out {
                if let Message::Objects(objects) = reply {
                    for sent in objects.iter_mut() {
                        if let Sent::Full(bytes) = sent
                            && bytes[0] == kith_store::ObjectKind::Blob as u8
                        {
                            *bytes.last_mut().unwrap() ^= 1;
                        }
                    }
                }
            }
            Ok(out)
        }
        fn is_done(&self) -> bool {
            self.0.is_done()
        }
    }

    let store = Store::open(&k.store()).unwrap();
    let site = Site::new(store.clone(), "main", &k.store());
    let credentials = Credentials::of_service(&site, "sync", "board").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let config = credentials.server_config().unwrap();
        let mut stream = link::accept(tcp, config, Duration::from_secs(10)).unwrap();
        let mut forger = Forger(Server::new(store));
        let _ = sync::run(&mut forger, &mut stream, &mut |_, _| {});
    });
    (port, thread)
}

#[test]
fn a_peer_sending_forged_objects_is_cut_off_and_nothing_of_them_is_kept() {
    let a = board();
    let server = SyncServer::start(&a);
    let b = clone(&enrol(&a, "laptop"), &server.url, &[]);
    let card = vcard(
        "forged",
        &["NOTE:this card's blob is tampered with on the way".into()],
    );
    put(&a, "/contacts/me/forged.vcf", &card);
    let before = head(&b);
    drop(server);
    let (port, thread) = forging_server(&a);
    b.ok(&[
        "remote",
        "add",
        "forger",
        &format!("kith://127.0.0.1:{port}"),
    ]);
    let err = b.fails(&["fetch", "forger"]);
    thread.join().unwrap();
    assert!(err.contains("bad object"), "{err}");
    assert_eq!(head(&b), before);
    assert_clean(&b);
    let store = Store::open(&b.store()).unwrap();
    let mut tampered = kith_store::encode_blob(&card);
    *tampered.last_mut().unwrap() ^= 1;
    let mut kept = Vec::new();
    store
        .object_store()
        .for_each_hash(&mut |h| {
            if store.object_store().read(h)?.as_deref() == Some(&tampered[..]) {
                kept.push(*h);
            }
            Ok(())
        })
        .unwrap();
    assert!(kept.is_empty(), "the forged bytes were kept");
    assert!(
        !store
            .object_store()
            .contains(&Hash::of(&kith_store::encode_blob(&card)))
            .unwrap()
    );
}

/// Every object under `path` at the head of `store` (blobs and every node of each
/// directory's trie).
fn objects_under(store: &Store, path: &str) -> HashSet<Hash> {
    let root = store.head_tree("main").unwrap();
    let mut out = HashSet::new();
    let Some((_, hash)) = store.find(&root, path).unwrap() else {
        return out;
    };
    let mut stack = vec![hash];
    while let Some(hash) = stack.pop() {
        if !out.insert(hash) {
            continue;
        }
        let bytes = store.object_store().read(&hash).unwrap().unwrap();
        match Object::decode(&bytes).unwrap() {
            Object::Node(Node::Leaf(entries)) => stack.extend(entries.iter().map(|e| e.hash)),
            Object::Node(Node::Inode { children, .. }) => {
                stack.extend(children.iter().map(|(_, h)| *h))
            }
            _ => {}
        }
    }
    out
}

#[test]
fn a_partial_replica_holds_only_its_prefixes_commits_and_syncs() {
    let a = board();
    let work = tempfile::tempdir().unwrap();
    let contacts = cards(work.path(), "contacts", 50);
    let calendar = cards(work.path(), "calendar", 50);
    let mail = cards(work.path(), "mail", 50);
    a.ok(&["import", contacts.to_str().unwrap(), "/contacts/me/default"]);
    a.ok(&["import", calendar.to_str().unwrap(), "/calendar/me/default"]);
    a.ok(&["import", mail.to_str().unwrap(), "/mail/me/INBOX"]);
    let server = SyncServer::start(&a);
    let b = clone(
        &enrol(&a, "contacts-svc"),
        &server.url,
        &["--prefix", "/contacts/"],
    );
    assert_eq!(b.ok(&["ls", "/contacts/me/default"]).lines().count(), 50);

    let outside = {
        let store = Store::open(&a.store()).unwrap();
        let mut set = objects_under(&store, "/calendar");
        set.extend(objects_under(&store, "/mail"));
        set
    };
    let held = |k: &Kith| {
        let store = Store::open(&k.store()).unwrap();
        let mut all = HashSet::new();
        store
            .object_store()
            .for_each_hash(&mut |h| {
                all.insert(*h);
                Ok(())
            })
            .unwrap();
        all
    };
    assert!(
        held(&b).is_disjoint(&outside),
        "the partial replica holds objects outside /contacts/"
    );

    // It commits using its siblings' hashes alone, and syncs both ways.
    put(&b, "/contacts/me/default/new.vcf", &vcard("new", &[]));
    let refused = b.fails(&["put", "/calendar/me/default/x.ics", "/dev/null"]);
    assert!(refused.contains("outside"), "{refused}");
    b.ok(&["sync"]);
    assert_eq!(
        get(&a, "/contacts/me/default/new.vcf").unwrap(),
        vcard("new", &[])
    );
    assert_eq!(a.ok(&["ls", "/calendar/me/default"]).lines().count(), 50);
    put(&a, "/contacts/me/default/from-a.vcf", &vcard("from-a", &[]));
    put(&a, "/calendar/me/default/later.vcf", &vcard("later", &[]));
    b.ok(&["sync"]);
    assert_eq!(
        get(&b, "/contacts/me/default/from-a.vcf").unwrap(),
        vcard("from-a", &[])
    );
    assert_eq!(head(&a), head(&b));
    assert_clean(&b);
    b.ok(&["gc"]);
    assert_clean(&b);
    let outside = {
        let store = Store::open(&a.store()).unwrap();
        let mut set = objects_under(&store, "/calendar");
        set.extend(objects_under(&store, "/mail"));
        set
    };
    assert!(
        held(&b).is_disjoint(&outside),
        "sync brought objects outside /contacts/"
    );
    assert!(
        b.ok(&["status"])
            .contains("partial replica holding /contacts, /identity")
    );

    // Conflicts: B sees and settles those of what it holds, and none of the rest.
    let card = "/contacts/me/default/contacts-0.vcf";
    put(&a, card, &vcard("contacts-0", &["FN:one way".into()]));
    put(&b, card, &vcard("contacts-0", &["FN:another".into()]));
    a.ok(&["branch", "side"]);
    put(&a, "/calendar/me/default/calendar-0.vcf", b"ours");
    a.ok(&[
        "--branch",
        "side",
        "put",
        "/calendar/me/default/calendar-0.vcf",
        "/dev/null",
    ]);
    a.run_with(&["merge", "side"], b"");
    assert!(a.ok(&["conflicts"]).contains("calendar-0"));
    let out = b.run_with(&["sync"], b"");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = b.ok(&["conflicts"]);
    assert!(
        listed.contains("contacts-0") && !listed.contains("calendar"),
        "{listed}"
    );
    b.ok(&["resolve", card]);
    b.ok(&["sync"]);
    assert!(!a.ok(&["conflicts"]).contains("contacts-0"));
    assert_clean(&b);
    let calendar = objects_under(&Store::open(&a.store()).unwrap(), "/calendar");
    assert!(held(&b).is_disjoint(&calendar));
}

/// Runs a real tool with a private HOME; returns its stdout.
fn tool(program: &str, args: &[&str], stdin: &[u8], home: &Path) -> String {
    let mut child = Command::new(program)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs (scripts/setup --tests installs it): {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn khard_config(home: &Path, vdir: &Path) -> PathBuf {
    let path = home.join("khard.conf");
    let text = format!(
        "[addressbooks]\n[[me]]\npath = {}\n[general]\neditor = /bin/false\nmerge_editor = /bin/false\n",
        vdir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn khal_config(home: &Path, vdir: &Path) -> PathBuf {
    let path = home.join("khal.conf");
    let text = format!(
        "[calendars]\n[[me]]\npath = {}\ntype = calendar\n[locale]\ntimeformat = %H:%M\n\
         dateformat = %Y-%m-%d\nlongdateformat = %Y-%m-%d\ndatetimeformat = %Y-%m-%d %H:%M\n\
         longdatetimeformat = %Y-%m-%d %H:%M\nlocal_timezone = UTC\ndefault_timezone = UTC\n\
         [default]\ndefault_calendar = me\n[sqlite]\npath = {}\n",
        vdir.display(),
        home.join("khal.db").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

const STANDUP: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kith//test//EN\r\nBEGIN:VEVENT\r\n\
UID:standup\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261123T090000Z\r\nDTEND:20261123T091500Z\r\n\
RRULE:FREQ=DAILY;COUNT=5\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[test]
fn khard_and_khal_edit_exported_vdirs_and_the_edits_sync() {
    let a = board();
    let alice = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:alice\r\nFN:Alice Liddell\r\nN:Liddell;Alice;;;\r\nEMAIL:alice@example.org\r\nEND:VCARD\r\n";
    put(&a, "/contacts/me/default/alice.vcf", alice.as_bytes());
    put(&a, "/calendar/me/default/standup.ics", STANDUP.as_bytes());
    let server = SyncServer::start(&a);
    let b = clone(&enrol(&a, "laptop"), &server.url, &[]);

    // On the laptop: export vdirs, read and edit them with khard and khal, import.
    let home = tempfile::tempdir().unwrap();
    let (cards, events) = (home.path().join("contacts"), home.path().join("calendar"));
    b.ok(&["export", "/contacts/me/default", cards.to_str().unwrap()]);
    b.ok(&["export", "/calendar/me/default", events.to_str().unwrap()]);
    let khard = khard_config(home.path(), &cards);
    let khard = khard.to_str().unwrap();
    assert!(tool("khard", &["-c", khard, "list"], b"", home.path()).contains("Alice Liddell"));
    let edit = home.path().join("alice.yaml");
    std::fs::write(
        &edit,
        "First name : Alice\nLast name : Liddell\nEmail :\n    home : alice@wonder.land\n",
    )
    .unwrap();
    tool(
        "khard",
        &[
            "-c",
            khard,
            "edit",
            "-u",
            "alice",
            "-i",
            edit.to_str().unwrap(),
        ],
        b"y\n",
        home.path(),
    );
    tool(
        "khard",
        &["-c", khard, "new", "-a", "me", "-i", "-"],
        b"First name : Bob\nLast name : Builder\n",
        home.path(),
    );
    let khal = khal_config(home.path(), &events);
    let khal = khal.to_str().unwrap();
    let week = tool(
        "khal",
        &["-c", khal, "list", "2026-11-23", "7d"],
        b"",
        home.path(),
    );
    assert_eq!(week.matches("Standup").count(), 5, "{week}");
    tool(
        "khal",
        &[
            "-c",
            khal,
            "new",
            "-a",
            "me",
            "2026-11-25",
            "14:00",
            "15:00",
            "Dentist",
        ],
        b"",
        home.path(),
    );
    b.ok(&["import", cards.to_str().unwrap(), "/contacts/me/default"]);
    b.ok(&["import", events.to_str().unwrap(), "/calendar/me/default"]);

    // Meanwhile on the board: another change to the same card.
    let with_phone = alice.replace("END:VCARD", "TEL:+44 1234\r\nEND:VCARD");
    put(&a, "/contacts/me/default/alice.vcf", with_phone.as_bytes());

    b.ok(&["sync"]);

    // On the board: both edits of Alice, Bob, and the dentist, seen by the same tools.
    let card = String::from_utf8(get(&a, "/contacts/me/default/alice.vcf").unwrap()).unwrap();
    assert!(
        card.contains("alice@wonder.land") && card.contains("+44 1234"),
        "{card}"
    );
    assert_eq!(a.ok(&["conflicts"]), "");
    let home_a = tempfile::tempdir().unwrap();
    let (cards_a, events_a) = (
        home_a.path().join("contacts"),
        home_a.path().join("calendar"),
    );
    a.ok(&["export", "/contacts/me/default", cards_a.to_str().unwrap()]);
    a.ok(&["export", "/calendar/me/default", events_a.to_str().unwrap()]);
    let khard_a = khard_config(home_a.path(), &cards_a);
    let listed = tool(
        "khard",
        &["-c", khard_a.to_str().unwrap(), "list"],
        b"",
        home_a.path(),
    );
    assert!(
        listed.contains("Bob Builder") && listed.contains("alice@wonder.land"),
        "{listed}"
    );
    let khal_a = khal_config(home_a.path(), &events_a);
    let week = tool(
        "khal",
        &["-c", khal_a.to_str().unwrap(), "list", "2026-11-23", "7d"],
        b"",
        home_a.path(),
    );
    assert!(week.contains("14:00-15:00 Dentist"), "{week}");
    assert_eq!(week.matches("Standup").count(), 5, "{week}");
}
