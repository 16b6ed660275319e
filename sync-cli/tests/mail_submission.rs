//! Submission and the outbound queue with real clients, between two Kith sites on
//! 127.0.0.1: alice.home.arpa's user signs in on the submission ports (Python's smtplib,
//! STARTTLS on one, implicit TLS on the other, verified against the root), sends to a
//! user of bob.home.arpa, whose own DNS server names its mail server (MX) and whose SMTP
//! service takes the message; the copy bob receives carries a DKIM signature that
//! verifies (dkimpy) against the key alice's DNS server publishes, and bob's server
//! records SPF, DKIM and DMARC passing; a recipient bob's server refuses comes back to
//! alice as a delivery status notification. Alice's service killed again and again while
//! its queue sends loses no message and delivers none twice. Mail forged in alice's
//! name gets what her DMARC policy asks at bob's server: quarantined in Junk, or refused.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Kith, PYTHON, python_ok};

/// A site: its store and the services it runs.
struct Site {
    k: Kith,
    children: Vec<Child>,
}

impl Drop for Site {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Site {
    /// A zone with user `me` (password `pw`) and mailboxes for `users`.
    fn new(zone: &str, users: &[&str]) -> Site {
        let k = Kith {
            dir: tempfile::tempdir().unwrap(),
        };
        k.ok(&["init", "--zone", zone, "--device", "board"]);
        let out = k.run_with(&["user", "add", "me"], b"pw\n");
        assert!(out.status.success(), "{out:?}");
        let empty = k.dir.path().join("empty.mbox");
        std::fs::write(&empty, b"").unwrap();
        for user in users {
            k.ok(&[
                "import",
                empty.to_str().unwrap(),
                &format!("/mail/{user}/INBOX"),
            ]);
        }
        Site {
            k,
            children: Vec::new(),
        }
    }

    /// Starts `kith serve ARGS...`; returns the port of each endpoint it announces.
    fn serve(&mut self, args: &[&str]) -> Vec<u16> {
        let (child, ports) = self.start(args);
        self.children.push(child);
        ports
    }

    /// Starts `kith serve ARGS...` for the caller to stop; returns it and its ports.
    fn start(&self, args: &[&str]) -> (Child, Vec<u16>) {
        let (child, endpoints) = self.k.spawn_endpoints(args);
        assert!(!endpoints.is_empty(), "kith {args:?} announced nothing");
        let ports = endpoints
            .iter()
            .map(|e| e.rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        (child, ports)
    }

    /// The messages in `user`'s INBOX.
    fn inbox(&self, user: &str) -> Vec<String> {
        self.messages(user, "INBOX")
    }

    /// The messages in `user`'s mailbox `folder`.
    fn messages(&self, user: &str, folder: &str) -> Vec<String> {
        let dir = format!("/mail/{user}/{folder}/.cur");
        let listing = self.k.run_with(&["ls", &dir], b"");
        String::from_utf8_lossy(&listing.stdout)
            .lines()
            .filter(|l| l.ends_with(".eml"))
            .map(|name| self.k.ok(&["get", &format!("{dir}/{name}")]))
            .collect()
    }

    /// Waits until `user`'s INBOX holds `n` messages.
    fn wait_for(&self, user: &str, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let inbox = self.inbox(user);
            if inbox.len() >= n || start.elapsed() > Duration::from_secs(60) {
                return inbox;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

const CLIENT: &str = r#"
import base64, smtplib, socket, ssl, sys
sub, subs, root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=root)
NAME = "mail.alice.home.arpa"   # the name the certificate must carry

s = smtplib.SMTP("127.0.0.1", sub, timeout=20)
s.ehlo("laptop.alice.home.arpa")
assert not s.has_extn("auth"), "AUTH offered before TLS"
code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0me\0pw").decode())
assert code == 538, f"AUTH before STARTTLS answered {code}"
code, _ = s.docmd("MAIL", "FROM:<me@alice.home.arpa>")
assert code == 530, f"MAIL without sign-in answered {code}"
s._host = NAME
s.starttls(context=ctx)
s.ehlo("laptop.alice.home.arpa")
assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
code, _ = s.docmd("MAIL", "FROM:<me@alice.home.arpa>")
assert code == 530, f"MAIL without sign-in over TLS answered {code}"
try:
    s.login("me", "wrong")
    sys.exit("a wrong password was accepted")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
s.login("me", "pw")
try:
    s.sendmail("boss@alice.home.arpa", ["me@alice.home.arpa"], "Subject: forged\r\n\r\nx\r\n")
    sys.exit("a sender address not the user's was accepted")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 553, e
msg = ("From: Me <me@alice.home.arpa>\r\nTo: you@bob.home.arpa, nobody@bob.home.arpa\r\n"
       "Cc: me@alice.home.arpa\r\nSubject: hello bob\r\nMessage-ID: <out-1@alice.home.arpa>\r\n"
       "Date: Mon, 23 Nov 2026 12:00:00 +0000\r\n\r\nHello from alice.\r\n.dot line\r\n")
refused = s.sendmail("me+out@alice.home.arpa",
                     ["you@bob.home.arpa", "nobody@bob.home.arpa", "me@alice.home.arpa"], msg)
assert refused == {}, refused
s.quit()

class Implicit(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(sock, server_hostname=NAME)

s = Implicit("127.0.0.1", subs, context=ctx, timeout=20)
s.ehlo("laptop.alice.home.arpa")
s.user, s.password = "me", "pw"
code, _ = s.auth("LOGIN", s.auth_login)
assert code == 235, code
s.sendmail("me@alice.home.arpa", ["me@alice.home.arpa"], "Subject: over 465\r\n\r\nimplicit\r\n")
s.quit()
print("ok")
"#;

const VERIFY: &str = r#"
import dkim, sys
message, record = open(sys.argv[1], "rb").read(), sys.argv[2].encode()
def dns(name, timeout=5):
    assert name == b"kith._domainkey.alice.home.arpa.", name
    return record
sys.exit(0 if dkim.verify(message, dnsfunc=dns) else "the DKIM signature does not verify")
"#;

/// `kith serve mail` on free ports, resolving through the DNS server on `resolver`,
/// delivering outbound mail to port `outbound`.
fn mail_args(resolver: u16, outbound: Option<u16>) -> Vec<String> {
    let any = "127.0.0.1:0";
    let mut args: Vec<String> = [
        "serve",
        "mail",
        "--smtp",
        any,
        "--submission",
        any,
        "--submissions",
        any,
        "--resolver",
    ]
    .map(String::from)
    .into();
    args.push(format!("127.0.0.1:{resolver}"));
    if let Some(port) = outbound {
        args.extend(["--outbound-port".into(), port.to_string()]);
    }
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Alice and Bob, each with DNS; Bob's mail running. Returns them with the DNS ports and
/// Bob's SMTP port.
fn two_sites() -> (Site, u16, Site, u16, u16) {
    let any = "127.0.0.1:0";
    let mut alice = Site::new("alice.home.arpa", &["me"]);
    let alice_dns = alice.serve(&["serve", "dns", "--listen", any])[0];
    let mut bob = Site::new("bob.home.arpa", &["me", "you"]);
    let bob_dns = bob.serve(&["serve", "dns", "--listen", any])[0];
    let bob_smtp = bob.serve(&strs(&mail_args(alice_dns, None)))[0];
    (alice, alice_dns, bob, bob_dns, bob_smtp)
}

#[test]
fn submitted_mail_reaches_another_domain_signed_and_refusals_bounce() {
    let (mut alice, alice_dns, bob, bob_dns, bob_smtp) = two_sites();
    let ports = alice.serve(&strs(&mail_args(bob_dns, Some(bob_smtp))));
    let root = alice.k.dir.path().join("root.pem");
    std::fs::write(&root, alice.k.ok(&["identity", "root-cert"])).unwrap();

    let (sub, subs) = (ports[1].to_string(), ports[2].to_string());
    python_ok(CLIENT, &[&sub, &subs, root.to_str().unwrap()]);

    let received = bob.wait_for("you", 1);
    assert_eq!(received.len(), 1, "bob's user never got the message");
    let copy = &received[0];
    assert!(
        copy.contains("Hello from alice.\r\n.dot line\r\n"),
        "{copy}"
    );
    assert!(copy.contains("DKIM-Signature: "), "{copy}");
    assert!(
        copy.contains("with ESMTPSA") && copy.contains("with ESMTPS;"),
        "submitted signed in over TLS, relayed over STARTTLS: {copy}"
    );
    for check in ["dkim=pass", "spf=pass", "dmarc=pass"] {
        assert!(
            copy.contains(check),
            "bob's server found no {check}: {copy}"
        );
    }

    let dig = Command::new("kdig")
        .args(["@127.0.0.1", "-p", &alice_dns.to_string(), "+short", "TXT"])
        .arg("kith._domainkey.alice.home.arpa")
        .output()
        .expect("kdig runs (scripts/setup --tests installs knot-dnsutils)");
    let record: String = String::from_utf8_lossy(&dig.stdout)
        .split('"')
        .skip(1)
        .step_by(2)
        .collect();
    assert!(record.starts_with("v=DKIM1; k=ed25519"), "{record:?}");
    let file = bob.k.dir.path().join("received.eml");
    std::fs::write(&file, copy).unwrap();
    let verify = Command::new(PYTHON)
        .args(["-c", VERIFY])
        .arg(&file)
        .arg(&record)
        .output()
        .expect("python3 runs");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // Alice: her copy (Cc), the message over 465, and the bounce for nobody@.
    let inbox = alice.wait_for("me", 3);
    assert_eq!(inbox.len(), 3, "{inbox:#?}");
    assert!(inbox.iter().any(|m| m.contains("Subject: hello bob")));
    assert!(inbox.iter().any(|m| m.contains("Subject: over 465")));
    let bounce = inbox
        .iter()
        .find(|m| m.contains("Undelivered Mail Returned to Sender"))
        .expect("a bounce for the refused recipient");
    assert!(
        bounce.contains("nobody@bob.home.arpa") && bounce.contains("550"),
        "{bounce}"
    );
    assert!(bounce.contains("report-type=delivery-status"), "{bounce}");
    assert_eq!(bob.inbox("me").len(), 0);

    let start = Instant::now();
    while !alice
        .k
        .run_with(&["ls", "/mail/.queue"], b"")
        .stdout
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the queue never emptied"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const SUBMIT_MANY: &str = r#"
import smtplib, socket, ssl, sys
subs, root, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=root)
class Implicit(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(sock, server_hostname="mail.alice.home.arpa")
s = Implicit("127.0.0.1", subs, context=ctx, timeout=20)
s.login("me", "pw")
for i in range(n):
    s.sendmail("me@alice.home.arpa", ["you@bob.home.arpa"],
               f"From: me@alice.home.arpa\r\nTo: you@bob.home.arpa\r\nMessage-ID: <q{i}@alice.home.arpa>\r\nSubject: {i}\r\n\r\nbody {i}\r\n")
    print(f"ACK q{i}", flush=True)
s.quit()
"#;

/// The Message-ID local parts in `messages`, with how often each occurs.
fn message_ids(messages: &[String]) -> std::collections::BTreeMap<String, usize> {
    let mut ids = std::collections::BTreeMap::new();
    for m in messages {
        if let Some(id) = m
            .split("Message-ID: <")
            .nth(1)
            .and_then(|r| r.split('@').next())
        {
            *ids.entry(id.to_string()).or_default() += 1;
        }
    }
    ids
}

#[test]
fn a_queue_killed_while_sending_loses_nothing_and_delivers_nothing_twice() {
    let (alice, _, bob, bob_dns, bob_smtp) = two_sites();
    let args = mail_args(bob_dns, Some(bob_smtp));
    let root = alice.k.dir.path().join("root.pem");
    std::fs::write(&root, alice.k.ok(&["identity", "root-cert"])).unwrap();

    // All 40 are acknowledged (in the store) before the first kill; the queue is then
    // still sending them.
    let (mut server, ports) = alice.start(&strs(&args));
    let out = Command::new(PYTHON)
        .args(["-c", SUBMIT_MANY, &ports[2].to_string()])
        .arg(&root)
        .arg("40")
        .output()
        .expect("python3 runs");
    let acked: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("ACK ").map(str::to_string))
        .collect();
    assert_eq!(acked.len(), 40, "{}", String::from_utf8_lossy(&out.stderr));
    let kills = 8;
    for round in 0..kills {
        std::thread::sleep(Duration::from_millis(20 + round * 37 % 120));
        let _ = server.kill();
        let _ = server.wait();
        let report = alice.k.json(&["fsck"]);
        assert_eq!(report["damage"], serde_json::json!([]), "round {round}");
        server = alice.start(&strs(&args)).0;
    }
    let start = Instant::now();
    let mut received = message_ids(&bob.inbox("you"));
    while received.len() < acked.len() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        received = message_ids(&bob.inbox("you"));
    }
    let _ = server.kill();
    let _ = server.wait();
    for id in &acked {
        assert!(received.contains_key(id), "acknowledged {id} never arrived");
    }
    let duplicates: usize = received.values().map(|n| n - 1).sum();
    eprintln!(
        "40 acknowledged, {} arrived, {duplicates} twice",
        received.len()
    );
    assert_eq!(
        duplicates, 0,
        "messages delivered twice after {kills} kills"
    );
}

const FORGER: &str = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("forger.example")
def forged(author):
    return (f"From: CEO <{author}>\r\nTo: you@bob.home.arpa\r\nSubject: wire the money\r\n"
            f"Message-ID: <forged-{author}>\r\n\r\nUrgent.\r\n")
assert s.sendmail("x@elsewhere.example", ["you@bob.home.arpa"], forged("ceo@alice.home.arpa")) == {}
try:
    s.sendmail("x@elsewhere.example", ["you@bob.home.arpa"], forged("ceo@strict.alice.home.arpa"))
    sys.exit("mail failing DMARC under p=reject was accepted")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 550 and b"DMARC" in e.smtp_error, e
s.quit()
print("ok")
"#;

#[test]
fn mail_failing_dmarc_gets_what_the_senders_policy_asks() {
    let any = "127.0.0.1:0";
    let mut alice = Site::new("alice.home.arpa", &[]);
    let strict = "_dmarc.strict.alice.home.arpa. 3600 IN TXT \"v=DMARC1; p=reject\"\n";
    let out = (alice.k).run_with(
        &["put", "/identity/zone/_dmarc.strict", "-"],
        strict.as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
    let alice_dns = alice.serve(&["serve", "dns", "--listen", any])[0];
    let mut bob = Site::new("bob.home.arpa", &["you"]);
    let bob_smtp = bob.serve(&strs(&mail_args(alice_dns, None)))[0];

    python_ok(FORGER, &[&bob_smtp.to_string()]);

    let junk = bob.messages("you", "Junk");
    assert_eq!(junk.len(), 1, "p=quarantine files the forgery in Junk");
    assert!(
        junk[0].contains("From: CEO <ceo@alice.home.arpa>"),
        "{}",
        junk[0]
    );
    assert!(junk[0].contains("dmarc=fail"), "{}", junk[0]);
    assert!(
        bob.inbox("you").is_empty(),
        "nothing forged reaches the INBOX"
    );
}
