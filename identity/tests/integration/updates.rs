//! RFC 2136 updates with knsupdate: a device changes its own names, nothing else.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::common::{Fixture, section};

/// Runs knsupdate with `key` (`alg:name:secret`) and the update `lines`; returns its
/// exit success and output.
fn knsupdate(f: &Fixture, key: &str, lines: &[&str]) -> (bool, String) {
    let mut script = format!(
        "server {} {}\nzone alice.home.arpa.\n",
        f.addr().ip(),
        f.addr().port()
    );
    for line in lines {
        script.push_str(line);
        script.push('\n');
    }
    script.push_str("send\nanswer\n");
    let mut cmd = Command::new("knsupdate");
    if !key.is_empty() {
        cmd.args(["-y", key]);
    }
    let mut child = cmd
        .args(["-t", "3", "-r", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("knsupdate runs (apt install knot-dnsutils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn laptop_a(f: &Fixture) -> Vec<String> {
    let out = f.kdig(&["laptop.alice.home.arpa", "A"]);
    section(&out, "ANSWER")
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn a_device_updates_its_own_address_as_one_commit() {
    let f = Fixture::new();
    assert!(laptop_a(&f).is_empty());
    let head_before = f.site.store.head("main").unwrap();
    let (ok, out) = knsupdate(
        &f,
        &f.laptop_key(),
        &["update add laptop.alice.home.arpa. 300 A 192.0.2.77"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("NOERROR"), "{out}");
    let answers = laptop_a(&f);
    assert_eq!(answers.len(), 1);
    assert!(answers[0].contains("192.0.2.77"), "{answers:?}");
    let head = f.site.store.head("main").unwrap().unwrap();
    let commit = f.site.store.commit(&head).unwrap();
    assert_eq!(commit.author, "laptop");
    assert_eq!(commit.parents, head_before.into_iter().collect::<Vec<_>>());
    assert!(
        commit.message.contains("dns update by laptop"),
        "{}",
        commit.message
    );
    let file = f
        .site
        .store
        .get(&commit.tree, "/identity/zone/laptop")
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(file).unwrap(),
        "laptop.alice.home.arpa. 300 IN A 192.0.2.77\n"
    );
    // Replace it: delete the RRset and add the new address in one update.
    let (ok, out) = knsupdate(
        &f,
        &f.laptop_key(),
        &[
            "update delete laptop.alice.home.arpa. A",
            "update add laptop.alice.home.arpa. 300 A 192.0.2.78",
            "update add _443._tcp.laptop.alice.home.arpa. 300 TLSA 3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ],
    );
    assert!(ok, "{out}");
    let answers = laptop_a(&f);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].contains("192.0.2.78"));
    let tlsa = f.kdig(&["_443._tcp.laptop.alice.home.arpa", "TLSA"]);
    assert_eq!(section(&tlsa, "ANSWER").len(), 1, "{tlsa}");
}

#[test]
fn another_devices_name_is_refused() {
    let f = Fixture::new();
    for line in [
        "update add board.alice.home.arpa. 300 A 192.0.2.66",
        "update add alice.home.arpa. 300 MX 5 evil.example.",
        "update delete _imaps._tcp.alice.home.arpa. SRV",
        "update add laptop.alice.home.arpa. 300 MX 5 laptop.alice.home.arpa.",
    ] {
        let (ok, out) = knsupdate(&f, &f.laptop_key(), &[line]);
        assert!(!ok, "{line}: {out}");
        assert!(out.contains("REFUSED"), "{line}: {out}");
    }
    let board = f.kdig(&["board.alice.home.arpa", "A"]);
    assert!(!board.contains("192.0.2.66"));
    let commit = f.site.store.head("main").unwrap().unwrap();
    assert_eq!(f.site.store.commit(&commit).unwrap().author, "board");
}

#[test]
fn unknown_keys_bad_macs_and_unsigned_updates_are_refused() {
    let f = Fixture::new();
    let add = ["update add laptop.alice.home.arpa. 300 A 192.0.2.99"];
    let secret = &f.laptop.tsig.secret;
    let unknown = format!("hmac-sha256:stranger.alice.home.arpa.:{secret}");
    let (ok, out) = knsupdate(&f, &unknown, &add);
    assert!(!ok && out.contains("status: BADKEY"), "unknown key: {out}");
    let bad_mac = format!(
        "hmac-sha256:{}:{}",
        f.laptop.tsig.name, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    );
    let (ok, out) = knsupdate(&f, &bad_mac, &add);
    assert!(!ok && out.contains("status: BADSIG"), "bad MAC: {out}");
    let (ok, out) = knsupdate(&f, "", &add);
    assert!(!ok && out.contains("REFUSED"), "unsigned: {out}");
    assert!(laptop_a(&f).is_empty());
}

#[test]
fn a_revoked_devices_key_is_refused() {
    let f = Fixture::new();
    let key = f.laptop_key();
    f.site.revoke_device("laptop", "board").unwrap();
    let add = ["update add laptop.alice.home.arpa. 300 A 192.0.2.5"];
    let (ok, out) = knsupdate(&f, &key, &add);
    assert!(!ok, "{out}");
    assert!(out.contains("NOTAUTH") || out.contains("BADKEY"), "{out}");
    assert!(f.eventually(|| knsupdate(&f, &key, &add).1.contains("status: BADKEY")));
    assert!(laptop_a(&f).is_empty());
}

#[test]
fn a_stale_signature_is_refused_with_badtime() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
    use hickory_proto::rr::{Name, RecordType, TSigner};
    use kith_identity::dns::{Server, Transport};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    let f = Fixture::new();
    let mut site = f.site.clone();
    site.provider.now = std::sync::Arc::new(|| SystemTime::now() + Duration::from_secs(3600));
    let server = Server::open(site).unwrap();
    let mut update = Message::new(7, MessageType::Query, OpCode::Update);
    update.add_query(Query::query(
        Name::from_ascii("alice.home.arpa.").unwrap(),
        RecordType::SOA,
    ));
    let signer = TSigner::new(
        f.laptop.tsig.secret_bytes().unwrap(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii(&f.laptop.tsig.name).unwrap(),
        300,
    )
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    update.finalize(&signer, now).unwrap();
    let reply = server
        .handle(&update.to_vec().unwrap(), Transport::Udp)
        .unwrap();
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(
        reply.signature().unwrap().data.error,
        Some(TsigError::BadTime)
    );
}
