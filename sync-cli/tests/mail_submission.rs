//! Submission and the outbound queue with real clients, between two Kith sites on
//! 127.0.0.1: alice.home.arpa's user signs in on the submission ports (Python's smtplib,
//! STARTTLS on one, implicit TLS on the other, verified against the root), sends to a
//! user of bob.home.arpa, whose own DNS server names its mail server (MX) and whose SMTP
//! service takes the message; the copy bob receives carries a DKIM signature that
//! verifies (dkimpy) against the key alice's DNS server publishes, and bob's server
//! records SPF, DKIM and DMARC passing; a recipient bob's server refuses comes back to
//! alice as a delivery status notification.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::Kith;

const PYTHON: &str = "/usr/bin/python3";

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
        let (child, endpoints) = self.k.spawn_endpoints(args);
        self.children.push(child);
        assert!(!endpoints.is_empty(), "kith {args:?} announced nothing");
        endpoints
            .iter()
            .map(|e| e.rsplit(':').next().unwrap().parse().unwrap())
            .collect()
    }

    /// The messages in `user`'s INBOX.
    fn inbox(&self, user: &str) -> Vec<String> {
        let dir = format!("/mail/{user}/INBOX/.cur");
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

#[test]
fn submitted_mail_reaches_another_domain_signed_and_refusals_bounce() {
    let any = "127.0.0.1:0";
    let mut alice = Site::new("alice.home.arpa", &["me"]);
    let alice_dns = alice.serve(&["serve", "dns", "--listen", any])[0];
    let mut bob = Site::new("bob.home.arpa", &["me", "you"]);
    let bob_dns = bob.serve(&["serve", "dns", "--listen", any])[0];
    let mail = |resolver: u16| {
        let resolver = format!("127.0.0.1:{resolver}");
        [
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
        .into_iter()
        .chain([resolver])
        .collect::<Vec<_>>()
    };
    let args = mail(alice_dns);
    let bob_smtp = bob.serve(&args.iter().map(String::as_str).collect::<Vec<_>>())[0];
    let mut args = mail(bob_dns);
    args.extend(["--outbound-port".into(), bob_smtp.to_string()]);
    let ports = alice.serve(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let root = alice.k.dir.path().join("root.pem");
    std::fs::write(&root, alice.k.ok(&["identity", "root-cert"])).unwrap();

    let out = Command::new(PYTHON)
        .args(["-c", CLIENT])
        .args([ports[1].to_string(), ports[2].to_string()])
        .arg(&root)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

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
