//! Inbound SMTP with real clients: swaks and Python's smtplib deliver to `kith serve
//! mail` on 127.0.0.1; relaying and unknown users are refused; STARTTLS is verified
//! against the user's root; every acknowledged message is in the store with its UID.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use common::{Kith, Mail, python_ok};

/// alice.home.arpa with a mailbox for `me`, served on a free port.
fn server() -> (Kith, Mail) {
    let k = Kith {
        dir: tempfile::tempdir().unwrap(),
    };
    k.ok(&["init", "--zone", "alice.home.arpa", "--device", "board"]);
    let empty = k.dir.path().join("empty.mbox");
    std::fs::write(&empty, b"").unwrap();
    k.ok(&["import", empty.to_str().unwrap(), "/mail/me/INBOX"]);
    let s = k.spawn_mail();
    (k, s)
}

fn swaks(port: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            port,
            "--from",
            "friend@example.org",
        ])
        .args(args)
        .output()
        .expect("swaks runs (scripts/setup --tests installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn inbox(k: &Kith) -> Vec<String> {
    k.ok(&["ls", "/mail/me/INBOX/.cur"])
        .lines()
        .filter(|l| l.ends_with(".eml"))
        .map(str::to_string)
        .collect()
}

#[test]
fn swaks_delivers_and_relaying_is_refused() {
    let (k, s) = server();
    let (ok, text) = swaks(
        &s.smtp,
        &[
            "--to",
            "me@alice.home.arpa",
            "--header",
            "Subject: hello",
            "--body",
            "first",
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("250 2.0.0 Ok: delivered"), "{text}");
    assert_eq!(inbox(&k), ["1.eml"]);
    let stored = k.ok(&["get", "/mail/me/INBOX/.cur/1.eml"]);
    assert!(stored.starts_with("Received: from "), "{stored}");
    assert!(
        stored.contains("Subject: hello") && stored.contains("first"),
        "{stored}"
    );

    let (ok, text) = swaks(&s.smtp, &["--to", "someone@example.com"]);
    assert!(
        !ok && text.contains("554 5.7.1 Relay access denied"),
        "{text}"
    );
    let (ok, text) = swaks(&s.smtp, &["--to", "nobody@alice.home.arpa"]);
    assert!(!ok && text.contains("550 5.1.1"), "{text}");

    // Pipelined, over STARTTLS, to an address with a +tag.
    let (ok, text) = swaks(
        &s.smtp,
        &["--to", "me+lists@alice.home.arpa", "--pipeline", "-tls"],
    );
    assert!(ok, "{text}");
    assert_eq!(inbox(&k), ["1.eml", "2.eml"]);
    assert!(
        k.ok(&["get", "/mail/me/INBOX/.cur/2.eml"])
            .contains("with ESMTPS")
    );
    let report = k.json(&["fsck"]);
    assert_eq!(report["damage"], serde_json::json!([]));
}

const SMTPLIB: &str = r#"
import smtplib, ssl, sys
port, root = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=root)
with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
    smtp.ehlo("laptop.example.org")
    assert smtp.has_extn("starttls") and smtp.has_extn("pipelining") and smtp.has_extn("8bitmime")
    smtp._host = "mail.alice.home.arpa"   # the name the certificate must carry
    smtp.starttls(context=context)
    smtp.ehlo("laptop.example.org")
    assert not smtp.has_extn("starttls")
    for i in range(20):
        msg = f"From: f@example.org\r\nTo: me@alice.home.arpa\r\nSubject: n{i}\r\n\r\n.leading dot\r\nline {i}\r\n"
        smtp.sendmail("f@example.org", ["me@alice.home.arpa"], msg)
    try:
        smtp.sendmail("f@example.org", ["x@example.net"], "Subject: relay\r\n\r\nno\r\n")
        sys.exit("relayed!")
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients["x@example.net"][0] == 554
print("ok")
"#;

#[test]
fn smtplib_verifies_starttls_against_the_root_and_delivers_every_message() {
    let (k, s) = server();
    let root = k.dir.path().join("root.pem");
    std::fs::write(&root, k.ok(&["identity", "root-cert"])).unwrap();
    python_ok(SMTPLIB, &[&s.smtp, root.to_str().unwrap()]);
    assert_eq!(inbox(&k).len(), 20);
    let seventh = k.ok(&["get", "/mail/me/INBOX/.cur/7.eml"]);
    assert!(
        seventh.contains("Subject: n6\r\n\r\n.leading dot\r\nline 6\r\n"),
        "{seventh:?}"
    );
}

const SENDER: &str = r#"
import smtplib, sys
port, start = int(sys.argv[1]), int(sys.argv[2])
try:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        for i in range(start, start + 10000):
            msg = f"From: f@example.org\r\nTo: me@alice.home.arpa\r\nMessage-ID: <k{i}@example.org>\r\nSubject: {i}\r\n\r\n" + "x" * 2000 + "\r\n"
            smtp.sendmail("f@example.org", ["me@alice.home.arpa"], msg)
            print(f"ACK k{i}", flush=True)
except Exception:
    pass
"#;

#[test]
fn a_server_killed_during_delivery_loses_no_acknowledged_message() {
    let (k, first) = server();
    drop(first);
    let mut acked = std::collections::BTreeSet::new();
    for round in 0..25u64 {
        let mut s = k.spawn_mail();
        let start = (round * 100_000).to_string();
        let mut client = Command::new("python3")
            .args(["-c", SENDER, &s.smtp, &start])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        // Kill the server once deliveries are flowing, a little later each round.
        let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        acked.extend(first.strip_prefix("ACK ").map(str::to_string));
        std::thread::sleep(std::time::Duration::from_millis(round * 7 % 60));
        let _ = s.child.kill();
        let _ = s.child.wait();
        acked.extend(
            lines
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("ACK ").map(str::to_string)),
        );
        client.wait().unwrap();
        let report = k.json(&["fsck"]);
        assert_eq!(report["damage"], serde_json::json!([]), "round {round}");
    }
    assert!(
        acked.len() > 25,
        "too few deliveries before the kills: {}",
        acked.len()
    );
    let maildir = k.dir.path().join("out");
    k.ok(&["export", "/mail/me/INBOX", maildir.to_str().unwrap()]);
    let mut stored = std::collections::BTreeMap::<String, usize>::new();
    for entry in std::fs::read_dir(maildir.join("cur")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let id = text
            .split("Message-ID: <")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap();
        *stored.entry(id.to_string()).or_default() += 1;
    }
    for id in &acked {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "acknowledged {id} is not stored exactly once"
        );
    }
    eprintln!("{} acknowledged, {} stored", acked.len(), stored.len());
}

/// Two replicas count on one mailbox offline: the board receives two more messages over
/// SMTP (UIDs 2 and 3, `.uidnext` 4, `.modseq` up) while the laptop marks message 1 seen
/// as an IMAP `STORE` does (its flags, its `.modseq` and the mailbox's). The sync merges
/// the counters as the larger number instead of recording conflicts, and every message
/// keeps its own UID.
#[test]
fn mailbox_counters_changed_on_two_replicas_merge_as_the_larger() {
    let (board, s) = server();
    let send = |subject: &str| {
        let (ok, text) = swaks(
            &s.smtp,
            &["--to", "me@alice.home.arpa", "--header", subject],
        );
        assert!(ok, "{text}");
    };
    send("Subject: one");
    let bundle = board.dir.path().join("laptop.json");
    board.ok(&["device", "add", "laptop", "-o", bundle.to_str().unwrap()]);
    let (mut sync, url) = board.spawn_service(&["serve", "sync", "--listen", "127.0.0.1:0"]);
    let laptop = Kith {
        dir: tempfile::tempdir().unwrap(),
    };
    laptop.ok(&["clone", "--bundle", bundle.to_str().unwrap(), &url]);

    send("Subject: two");
    send("Subject: three");
    let inbox_file = |k: &Kith, name: &str| k.ok(&["get", &format!("/mail/me/INBOX/{name}")]);
    let modseq: u64 = inbox_file(&laptop, ".modseq").trim().parse().unwrap();
    let seen = laptop.dir.path().join("seen");
    std::fs::write(&seen, b"\\Seen\n").unwrap();
    let bumped = laptop.dir.path().join("modseq");
    std::fs::write(&bumped, format!("{}\n", modseq + 1)).unwrap();
    for (path, file) in [
        ("/mail/me/INBOX/.cur/1.flags", &seen),
        ("/mail/me/INBOX/.cur/1.modseq", &bumped),
        ("/mail/me/INBOX/.modseq", &bumped),
    ] {
        laptop.ok(&["put", path, file.to_str().unwrap()]);
    }

    laptop.ok(&["sync"]);
    assert_eq!(laptop.json(&["conflicts"]), serde_json::json!([]));
    assert_eq!(
        laptop
            .ok(&["ls", "/mail/me/INBOX/.cur"])
            .lines()
            .filter(|l| l.ends_with(".eml"))
            .collect::<Vec<_>>(),
        ["1.eml", "2.eml", "3.eml"]
    );
    assert_eq!(inbox_file(&laptop, ".uidnext"), "4\n");
    assert_eq!(inbox_file(&laptop, ".cur/1.flags"), "\\Seen\n");
    let board_modseq = inbox_file(&board, ".modseq");
    let merged: u64 = inbox_file(&laptop, ".modseq").trim().parse().unwrap();
    assert_eq!(
        merged,
        board_modseq.trim().parse::<u64>().unwrap().max(modseq + 1)
    );
    let _ = sync.kill();
    let _ = sync.wait();
}
