//! IMAP with real clients against `kith serve mail` on 127.0.0.1: Python's imaplib
//! through a full session (IDLE woken by a swaks delivery and by another connection's
//! STORE), mbsync syncing 10,000 messages into a Maildir with flags both ways, and
//! neomutt reading the INBOX over IMAPS.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Kith, Mail};

/// alice.home.arpa with the account `me` (password `pw`) and its INBOX, served.
fn server(mbox: Option<&Path>) -> (Kith, Mail) {
    let k = Kith {
        dir: tempfile::tempdir().unwrap(),
    };
    k.ok(&["init", "--zone", "alice.home.arpa", "--device", "board"]);
    let out = k.run_with(&["user", "add", "me"], b"pw\n");
    assert!(out.status.success(), "{out:?}");
    let empty = k.dir.path().join("empty.mbox");
    std::fs::write(&empty, b"").unwrap();
    let mbox = mbox.unwrap_or(&empty);
    k.ok(&["import", mbox.to_str().unwrap(), "/mail/me/INBOX"]);
    std::fs::write(
        k.dir.path().join("root.pem"),
        k.ok(&["identity", "root-cert"]),
    )
    .unwrap();
    let s = k.spawn_mail();
    (k, s)
}

fn swaks(port: &str, subject: &str, extra: &[&str]) {
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", port])
        .args(["--from", "ada@example.org", "--to", "me@alice.home.arpa"])
        .args(["--header", &format!("Subject: {subject}")])
        .args(extra)
        .output()
        .expect("swaks runs (scripts/setup --tests installs it)");
    assert!(out.status.success(), "{out:?}");
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    text
}

const COMMON: &str = r#"
import imaplib, socket, ssl, subprocess, sys, time, re
imap_port, smtp_port, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.create_default_context(cafile=root)

class Kith(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname="mail.alice.home.arpa")

def connect():
    return Kith("127.0.0.1", imap_port, ssl_context=context, timeout=20)

def ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data
"#;

const SESSION: &str = r#"
a = connect()
try:
    a.login("me", "wrong")
    raise SystemExit("a wrong password was accepted")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e
try:
    a.login("nobody", "pw")
    raise SystemExit("an unknown user was accepted")
except imaplib.IMAP4.error:
    pass
ok(a.login("me", "pw"))
assert b"IDLE" in ok(a.capability())[0]
count = int(ok(a.select("INBOX"))[0])
assert count == 2, count

# ENVELOPE, BODYSTRUCTURE and sections of the multipart message.
data = ok(a.fetch("2", "(UID RFC822.SIZE ENVELOPE BODYSTRUCTURE FLAGS)"))
line = data[0] if isinstance(data[0], bytes) else data[0][0]
assert b'"multi"' in line and b'"ada" NIL "ada" "example.org"' not in line, line
assert b'("ada" NIL "ada" "example.org")' in line or b'(NIL NIL "ada" "example.org")' in line, line
assert (b'"MIXED"' in line or b'"ALTERNATIVE"' in line) and b'"TEXT" "PLAIN"' in line, line
data = ok(a.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[1] BODY.PEEK[TEXT]<0.10> BODY.PEEK[2.MIME])"))
parts = {re.search(rb"BODY\[[^\]]*\](<\d+>)?", d[0]).group(0): d[1] for d in data if isinstance(d, tuple)}
assert parts[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: multi\r\n\r\n", parts
assert parts[b"BODY[1]"].startswith(b"first part"), parts
assert len(parts[b"BODY[TEXT]<0>"]) == 10, parts
assert b"Content-Type: text/x-note" in parts[b"BODY[2.MIME]"], parts
flags = ok(a.fetch("2", "FLAGS"))[0]
assert b"\\Seen" not in flags, flags
ok(a.fetch("2", "BODY[]"))
assert b"\\Seen" in ok(a.fetch("2", "FLAGS"))[0]

# STORE and SEARCH.
ok(a.store("1", "+FLAGS", "(\\Flagged $Work)"))
assert ok(a.search(None, "FLAGGED"))[0] == b"1"
assert ok(a.search(None, "KEYWORD", "$Work"))[0] == b"1"
assert ok(a.search(None, "SUBJECT", "multi"))[0] == b"2"
assert ok(a.search(None, "FROM", "ada@example.org"))[0] == b"1 2"
assert ok(a.search(None, "BODY", '"second part"'))[0] == b"2"
assert ok(a.search(None, "OR", "FLAGGED", "SEEN"))[0] == b"1 2"
assert ok(a.search(None, "NOT", "SEEN"))[0] == b"1"
assert ok(a.search(None, "SINCE", "1-Jan-2000"))[0] == b"1 2"
assert ok(a.uid("SEARCH", "UID", "2:*"))[0] == b"2"
typ, data = a._simple_command("UID", "SEARCH", "RETURN", "(MIN COUNT)", "ALL")
assert typ == "OK" and b"MIN 1 COUNT 2" in a.untagged_responses.pop("ESEARCH")[0]
ok(a.store("1", "-FLAGS", "($Work)"))
assert b"$Work" not in ok(a.fetch("1", "FLAGS"))[0]

# APPEND, COPY, MOVE, EXPUNGE.
typ, data = a.append("INBOX", "(\\Seen)", None, b"Subject: appended\r\n\r\nhi\r\n")
assert typ == "OK" and b"APPENDUID" in data[0], data
ok(a.create("Archive"))
ok(a.subscribe("Archive"))
assert any(b'"Archive"' in l or b" Archive" in l for l in ok(a.list()))
typ, data = a.copy("1", "Archive")
assert typ == "OK" and b"COPYUID" in data[0], data
typ, data = a.uid("MOVE", "3", "Archive")
assert typ == "OK", data
assert int(ok(a.select("INBOX"))[0]) == 2
status = ok(a.status("Archive", "(MESSAGES UIDNEXT UNSEEN)"))[0]
assert b"MESSAGES 2" in status and b"UNSEEN 1" in status, status
ok(a.store("1", "+FLAGS", "\\Deleted"))
typ, data = a.expunge()
assert typ == "OK" and data == [b"1"], data
assert int(ok(a.select("INBOX"))[0]) == 1

# A non-ASCII name in modified UTF-7, and the INTERNALDATE an APPEND gives.
ok(a.create("Entw&APw-rfe"))
assert any(b'"Entw&APw-rfe"' in l or b" Entw&APw-rfe" in l for l in ok(a.list('""', "Entw*")))
ok(a.append("Entw&APw-rfe", None, '"07-Jul-1996 02:44:25 -0700"', b"Subject: dated\r\n\r\nhi\r\n"))
ok(a.select("Entw&APw-rfe"))
date = ok(a.fetch("1", "INTERNALDATE"))[0]
assert b'INTERNALDATE "07-Jul-1996 02:44:25 -0700"' in date, date
ok(a.select("INBOX"))

# IDLE: woken by a delivery over SMTP, then by another connection's STORE.
b = connect()
ok(b.login("me", "pw"))
ok(b.select("INBOX"))
a.send(b"i1 IDLE\r\n")
assert a.readline().startswith(b"+"), "no IDLE continuation"
subprocess.run(["swaks", "--server", "127.0.0.1", "--port", smtp_port, "--from", "x@example.org",
                "--to", "me@alice.home.arpa", "--header", "Subject: while idling"],
               check=True, capture_output=True)
start = time.time()
line = a.readline()
assert line == b"* 2 EXISTS\r\n", line
ok(b.store("1", "+FLAGS", "\\Answered"))
line = a.readline()
assert line.startswith(b"* 1 FETCH") and b"\\Answered" in line, line
assert time.time() - start < 10
a.send(b"DONE\r\n")
assert a.readline().startswith(b"i1 OK"), "IDLE did not end"
b.logout()
a.logout()
print("ok")
"#;

#[test]
fn imaplib_session_with_idle() {
    let (k, s) = server(None);
    swaks(&s.smtp, "plain", &["--body", "just text"]);
    let multipart = [
        "--attach-type",
        "text/plain",
        "--attach-body",
        "first part",
        "--attach-type",
        "text/x-note",
        "--attach-body",
        "second part",
    ];
    swaks(&s.smtp, "multi", &multipart);
    let root = k.dir.path().join("root.pem");
    let out = python(
        &format!("{COMMON}{SESSION}"),
        &[&s.imap, &s.smtp, root.to_str().unwrap()],
    );
    assert!(out.trim_end().ends_with("ok"), "{out}");
    assert!(k.ok(&["status"]).contains("imaps://127.0.0.1:"));
    let report = k.json(&["fsck"]);
    assert_eq!(report["damage"], serde_json::json!([]));
}

/// An mbox of `n` small distinct messages.
fn write_mbox(path: &Path, n: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        write!(
            out,
            "From sender@example.org Mon Jan  1 00:00:00 2024\n\
             From: Sender {i} <sender{i}@example.org>\nTo: me@alice.home.arpa\n\
             Subject: message {i}\nMessage-ID: <{i}@example.org>\n\
             Date: Mon, 1 Jan 2024 00:00:00 +0000\n\nBody of message {i}.\n\n"
        )
        .unwrap();
    }
}

/// The server's certificate chain, as mbsync must be told to trust it.
fn server_certs(port: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-showcerts",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|c| c.split("-----END CERTIFICATE-----").next())
        .map(|body| format!("-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE-----\n"))
        .collect()
}

fn mbsync(config: &Path) -> String {
    let out = Command::new("mbsync")
        .args(["-c", config.to_str().unwrap(), "-a"])
        .output()
        .expect("mbsync runs (scripts/setup --tests installs isync)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mbsync failed: {text}");
    text
}

/// The Maildir's messages: (file name, flags after `:2,`).
fn maildir(dir: &Path) -> Vec<(String, String)> {
    ["cur", "new"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(dir.join(sub)).unwrap())
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let flags = name.rsplit_once(":2,").map(|(_, f)| f.to_string());
            (name, flags.unwrap_or_default())
        })
        .collect()
}

const N: usize = 10_000;

#[test]
fn mbsync_syncs_ten_thousand_messages_and_flags_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let mbox = tmp.path().join("big.mbox");
    write_mbox(&mbox, N);
    let (k, s) = server(Some(&mbox));
    let certs = tmp.path().join("certs.pem");
    std::fs::write(&certs, server_certs(&s.imap)).unwrap();
    let local = tmp.path().join("mail");
    std::fs::create_dir_all(&local).unwrap();
    let config = tmp.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "FSync no\n\nIMAPAccount kith\nHost 127.0.0.1\nPort {port}\nUser me\nPass pw\n\
             SSLType IMAPS\nCertificateFile {certs}\nPipelineDepth 50\n\n\
             IMAPStore remote\nAccount kith\n\n\
             MaildirStore local\nPath {local}/\nInbox {local}/INBOX\n\n\
             Channel inbox\nFar :remote:\nNear :local:\nPatterns INBOX\n\
             Create Near\nSync All\nSyncState *\nExpunge None\n",
            port = s.imap,
            certs = certs.display(),
            local = local.display()
        ),
    )
    .unwrap();
    mbsync(&config);
    let inbox = local.join("INBOX");
    let messages = maildir(&inbox);
    assert_eq!(messages.len(), N);
    let mut ids: Vec<String> = ["cur", "new"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(inbox.join(sub)).unwrap())
        .map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            text.lines()
                .find(|l| l.starts_with("Message-ID:"))
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N, "no duplicates");

    // Seen locally goes to the server; flagged on the server comes to the Maildir.
    let (path, name) = ["cur", "new"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(inbox.join(sub)).unwrap())
        .map(|e| e.unwrap())
        .map(|e| (e.path(), e.file_name().to_string_lossy().into_owned()))
        .find(|(p, _)| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("Subject: message 7\n")
        })
        .unwrap();
    let base = name.split(":2,").next().unwrap().to_string();
    std::fs::rename(&path, inbox.join("cur").join(format!("{base}:2,S"))).unwrap();
    let root = k.dir.path().join("root.pem");
    python(
        &format!("{COMMON}{FLAG_ON_SERVER}"),
        &[&s.imap, &s.smtp, root.to_str().unwrap()],
    );
    mbsync(&config);
    let seen = python(
        &format!("{COMMON}{SEEN_ON_SERVER}"),
        &[&s.imap, &s.smtp, root.to_str().unwrap()],
    );
    assert!(seen.contains("seen: 7"), "{seen}");
    let after = maildir(&inbox);
    assert_eq!(after.len(), N, "still no duplicates");
    let flagged: Vec<_> = after.iter().filter(|(_, f)| f.contains('F')).collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    let text = ["cur", "new"]
        .iter()
        .map(|sub| inbox.join(sub).join(&flagged[0].0))
        .find(|p| p.exists())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap();
    assert!(text.contains("Subject: message 42\n"), "{text}");
}

const FLAG_ON_SERVER: &str = r#"
a = connect()
ok(a.login("me", "pw"))
ok(a.select("INBOX"))
found = ok(a.search(None, "HEADER", "Message-ID", "<42@example.org>"))[0].split()
assert len(found) == 1, found
ok(a.store(found[0], "+FLAGS", "\\Flagged"))
a.logout()
"#;

const SEEN_ON_SERVER: &str = r#"
a = connect()
ok(a.login("me", "pw"))
ok(a.select("INBOX"))
for n in ok(a.search(None, "SEEN"))[0].split():
    subject = ok(a.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))[0][1]
    print("seen:", subject.decode().strip().split()[-1])
a.logout()
"#;

#[test]
fn neomutt_reads_the_inbox_over_imaps() {
    let (k, s) = server(None);
    swaks(&s.smtp, "for neomutt", &["--body", "neomutt body here"]);
    let dir = k.dir.path();
    std::fs::write(dir.join("certs.pem"), server_certs(&s.imap)).unwrap();
    let out = dir.join("out.eml");
    std::fs::write(
        dir.join("muttrc"),
        format!(
            "set imap_user=me\nset imap_pass=pw\nset certificate_file={certs}\n\
             set ssl_verify_host=no\nset folder=imaps://127.0.0.1:{port}/\n\
             set spoolfile=+INBOX\nset wait_key=no\nset move=no\nset quit=yes\n\
             push \"<pipe-message>cat > {out}<enter><quit>\"\n",
            certs = dir.join("certs.pem").display(),
            port = s.imap,
            out = out.display()
        ),
    )
    .unwrap();
    // neomutt needs a terminal: script(1) gives it one.
    let status = Command::new("timeout")
        .args(["60", "script", "-qec"])
        .arg(format!("neomutt -n -F {}", dir.join("muttrc").display()))
        .arg("/dev/null")
        .env("TERM", "xterm")
        .stdout(Stdio::null())
        .status()
        .expect("neomutt runs (scripts/setup --tests installs it)");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("neomutt piped the message");
    assert!(
        text.contains("Subject: for neomutt") && text.contains("neomutt body here"),
        "{text}"
    );
}

/// Messages of several MIME shapes, one file each, for the comparison with Dovecot.
const SHAPES: [&str; 6] = [
    "From: Ada Lovelace <ada@example.org>\r\nTo: me@alice.home.arpa\r\nSubject: plain\r\n\
     Message-ID: <plain@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nhello\r\nworld\r\n",
    "From: ada@example.org\r\nTo: a@example.org, b@example.org\r\nCc: c@example.org\r\n\
     Subject: mixed\r\nMessage-ID: <mixed@example.org>\r\nMIME-Version: 1.0\r\n\
     Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\n\
     Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
     caf=C3=A9\r\n--XX\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\
     Content-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
     JVBERi0xLjQK\r\n--XX--\r\n",
    "From: ada@example.org\r\nSubject: alternative\r\nMessage-ID: <alt@example.org>\r\n\
     MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n--b1\r\n\
     Content-Type: text/plain; charset=us-ascii\r\n\r\nplain version\r\n--b1\r\n\
     Content-Type: text/html; charset=us-ascii\r\n\r\n<p>html version</p>\r\n--b1--\r\n",
    "From: ada@example.org\r\nSubject: forward\r\nMessage-ID: <fwd@example.org>\r\n\
     MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=f\r\n\r\n--f\r\n\
     Content-Type: text/plain\r\n\r\nsee below\r\n--f\r\nContent-Type: message/rfc822\r\n\r\n\
     From: bob@example.org\r\nSubject: inner\r\nMessage-ID: <inner@example.org>\r\n\r\ninner text\r\n\
     --f--\r\n",
    "From: =?utf-8?q?Ad=C3=A9?= <ada@example.org>\r\nTo: friends: a@example.org, b@example.org;\r\n\
     Subject: =?utf-8?b?w6ljaG8=?=\r\nMessage-ID: <encoded@example.org>\r\n\r\nbody\r\n",
    "Subject: bare\r\nMessage-ID: <bare@example.org>\r\n\r\nno from, no content type\r\n",
];

const COMPARE: &str = r#"
import imaplib, json, re, socket, ssl, sys, time
port, root, dovecot, result = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

class Kith(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname="mail.alice.home.arpa")

ITEMS = ["ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]",
         "BODY.PEEK[1]", "BODY.PEEK[1.MIME]", "BODY.PEEK[2]", "BODY.PEEK[2.HEADER]",
         "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]", "BODY.PEEK[TEXT]<2.5>"]
IDS = ["plain", "mixed", "alt", "fwd", "encoded", "bare"]
SEARCHES = ["FROM ada", "SUBJECT mixed", "BODY version", "TEXT inner", "NOT FROM ada",
            "OR SUBJECT plain SUBJECT bare", "LARGER 300", "SENTSINCE 1-Jan-2024"]

def flat(data):
    out = b""
    for d in data:
        out += b"".join(d) if isinstance(d, tuple) else d
    return out

def answers(c):
    assert c.select("INBOX")[0] == "OK"
    uid = {}
    for i in IDS:
        typ, data = c.uid("SEARCH", "HEADER", "Message-ID", f"<{i}@example.org>")
        uid[i] = data[0].decode()
    out = {}
    for i in IDS:
        for item in ITEMS:
            typ, data = c.uid("FETCH", uid[i], f"({item})")
            text = flat(data) if typ == "OK" else b"NO"
            text = re.sub(rb"^\d+ \(|UID \d+ ?|\)$", b"", text)
            out[f"{i} {item}"] = text.decode("utf-8", "replace")
    by_uid = {v: k for k, v in uid.items()}
    for s in SEARCHES:
        typ, data = c.uid("SEARCH", *s.split(" "))
        out[f"SEARCH {s}"] = " ".join(sorted(by_uid[u] for u in data[0].decode().split()))
    name = "Entw&APw-rfe"
    c.create(name)
    c.append(name, None, '"07-Jul-1996 02:44:25 -0700"', b"Subject: dated\r\n\r\nhi\r\n")
    out["LIST Entw*"] = str([name.encode() in l for l in c.list('""', "Entw*")[1]])
    # Extended LIST (RFC 5258) and LIST-STATUS (RFC 5819): the names and the counts.
    c.subscribe(name)
    typ, _ = c._simple_command("LIST", "(SUBSCRIBED)", '""', '"*"')
    lines = c.untagged_responses.pop("LIST", [])
    out["LIST (SUBSCRIBED)"] = typ + str(sorted(l.decode().rsplit(" ", 1)[-1].strip('"') for l in lines))
    typ, _ = c._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS (MESSAGES UNSEEN))")
    c.untagged_responses.pop("LIST", [])
    out["LIST RETURN (STATUS)"] = typ + str([l.decode() for l in c.untagged_responses.pop("STATUS", [])])
    c.select(name)
    # Dovecot's Maildir keeps the instant, not the zone: compare instants.
    date = imaplib.Internaldate2tuple(flat(c.fetch("1", "(INTERNALDATE)")[1]))
    out["INTERNALDATE"] = str(int(time.mktime(date)))
    return out

kith = Kith("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=root), timeout=30)
kith.login("me", "pw")
ours, theirs = answers(kith), answers(imaplib.IMAP4_stream(dovecot))
open(result, "w").write(json.dumps({"kith": ours, "dovecot": theirs}))
"#;

/// Lower case, one space for any run of white space: wording aside, the same answer.
fn normal(text: &str) -> String {
    text.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn answers_like_dovecot_on_the_same_messages() {
    if !Path::new("/usr/lib/dovecot/imap").exists() {
        panic!("dovecot-imapd is missing: run scripts/setup --tests");
    }
    let tmp = tempfile::tempdir().unwrap();
    let maildir = tmp.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for (i, text) in SHAPES.iter().enumerate() {
        std::fs::write(maildir.join("cur").join(format!("{i}.shape:2,")), text).unwrap();
    }
    let (k, s) = server(None);
    k.ok(&["import", maildir.to_str().unwrap(), "/mail/me/INBOX"]);
    let dovecot = dovecot(tmp.path(), &maildir);
    let root = k.dir.path().join("root.pem");
    let result = tmp.path().join("answers.json");
    let out = python(
        COMPARE,
        &[
            &s.imap,
            root.to_str().unwrap(),
            &dovecot,
            result.to_str().unwrap(),
        ],
    );
    let answers = std::fs::read_to_string(&result).unwrap_or_else(|_| panic!("{out}"));
    let both: serde_json::Value = serde_json::from_str(&answers).unwrap();
    let (ours, theirs) = (&both["kith"], &both["dovecot"]);
    let mut differ = Vec::new();
    for (key, value) in theirs.as_object().unwrap() {
        let mine = ours[key].as_str().unwrap_or("");
        if normal(mine) != normal(value.as_str().unwrap()) {
            differ.push(format!("{key}:\n  kith:    {mine}\n  dovecot: {value}"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    let said = |key: &str| theirs[key].as_str().unwrap_or_default().to_string();
    assert!(
        said("LIST (SUBSCRIBED)").contains("Entw&APw-rfe"),
        "{theirs}"
    );
    assert!(
        said("LIST RETURN (STATUS)").contains("MESSAGES 6 UNSEEN"),
        "{theirs}"
    );
}

/// The command line of Dovecot's `imap` serving `maildir` preauthenticated over its
/// standard input and output, with its run files under `dir`.
fn dovecot(dir: &Path, maildir: &Path) -> String {
    if !Path::new("/usr/lib/dovecot/imap").exists() {
        panic!("dovecot-imapd is missing: run scripts/setup --tests");
    }
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let conf = dir.join("dovecot.conf");
    std::fs::write(
        &conf,
        format!(
            "mail_location = maildir:{m}\nssl = no\nlog_path = {t}/dovecot.log\nbase_dir = {r}\n",
            m = maildir.display(),
            t = dir.display(),
            r = run.display()
        ),
    )
    .unwrap();
    // Dovecot refuses to serve mail as root: as root, it runs as nobody.
    let root_user = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let (wrap, user) = if root_user {
        Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(dir)
            .status()
            .unwrap();
        (
            "setpriv --reuid=nobody --regid=nogroup --clear-groups ",
            "nobody".to_string(),
        )
    } else {
        ("", std::env::var("USER").unwrap_or_default())
    };
    format!(
        "{wrap}env USER={user} MAIL=maildir:{} HOME={} /usr/lib/dovecot/imap -c {}",
        maildir.display(),
        dir.display(),
        conf.display()
    )
}

const QRESYNC: &str = r#"
import json

def raw(c, tag, command):
    c.send(f"{tag} {command}\r\n".encode())
    lines = []
    while True:
        line = c.readline().decode()
        if line.startswith(tag + " "):
            assert line.split()[1] == "OK", (command, lines, line)
            return lines
        lines.append(line)

def uids(text):
    out = []
    for part in text.split(","):
        a, _, b = part.partition(":")
        out += range(int(a), int(b or a) + 1)
    return out

def code(lines, name):
    return next(int(m.group(1)) for m in (re.search(r"\[" + name + r" (\d+)\]", l) for l in lines) if m)

def scenario(open_):
    result = {}
    a = open_()
    lines = raw(a, "s1", "SELECT INBOX (CONDSTORE)")
    validity, modseq = code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")
    uid = {}
    for i in range(10):
        found = raw(a, f"f{i}", f"UID SEARCH HEADER Message-ID <{i}@example.org>")
        uid[i] = int(next(l for l in found if l.startswith("* SEARCH")).split()[2])
    name = {v: k for k, v in uid.items()}
    names = lambda us: sorted(name.get(u, -u) for u in us)
    raw(a, "s2", f"UID STORE {uid[2]},{uid[5]} +FLAGS.SILENT (\\Flagged)")
    b = open_()
    raw(b, "b1", "SELECT INBOX")
    raw(b, "b2", "CREATE Archive")
    raw(b, "b3", f"UID STORE {uid[3]},{uid[7]} +FLAGS.SILENT (\\Deleted)")
    raw(b, "b4", f"UID EXPUNGE {uid[3]},{uid[7]}")
    raw(b, "b5", f"UID MOVE {uid[9]} Archive")
    a.logout()

    c = open_()
    raw(c, "c1", "ENABLE QRESYNC")
    lines = raw(c, "c2", f"SELECT INBOX (QRESYNC ({validity} {modseq}))")
    vanished = [u for l in lines if l.startswith("* VANISHED (EARLIER)") for u in uids(l.split()[-1])]
    result["select vanished"] = names(vanished)
    result["select changed"] = names(int(re.search(r"UID (\d+)", l).group(1)) for l in lines if " FETCH " in l)

    c.send(b"i1 IDLE\r\n")
    assert c.readline().startswith(b"+"), "no IDLE continuation"
    raw(b, "b6", f"UID STORE {uid[4]} +FLAGS.SILENT (\\Deleted)")
    raw(b, "b7", f"UID EXPUNGE {uid[4]}")
    heard = []
    while not any(l.startswith("* VANISHED") for l in heard):
        heard.append(c.readline().decode())
    c.send(b"DONE\r\n")
    while not c.readline().startswith(b"i1 "):
        pass
    result["idle vanished"] = names(u for l in heard if l.startswith("* VANISHED") for u in uids(l.split()[-1]))
    result["idle expunge lines"] = sum(" EXPUNGE" in l for l in heard)

    lines = raw(c, "c3", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    vanished = [u for l in lines if l.startswith("* VANISHED (EARLIER)") for u in uids(l.split()[-1])]
    result["fetch vanished"] = names(vanished)
    result["fetch changed"] = names(int(re.search(r"UID (\d+)", l).group(1)) for l in lines if " FETCH " in l)
    b.logout()
    c.logout()
    return result

def kith():
    c = connect()
    ok(c.login("me", "pw"))
    return c

dovecot = sys.argv[4]
print(json.dumps({"kith": scenario(kith), "dovecot": scenario(lambda: imaplib.IMAP4_stream(dovecot))}))
"#;

#[test]
fn qresync_tells_vanished_and_changed_like_dovecot() {
    let tmp = tempfile::tempdir().unwrap();
    let maildir = tmp.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for i in 0..10 {
        let text = format!(
            "From: ada@example.org\r\nSubject: q{i}\r\nMessage-ID: <{i}@example.org>\r\n\r\nbody {i}\r\n"
        );
        std::fs::write(maildir.join("cur").join(format!("{i}.q:2,")), text).unwrap();
    }
    let (k, s) = server(None);
    k.ok(&["import", maildir.to_str().unwrap(), "/mail/me/INBOX"]);
    let dovecot = dovecot(tmp.path(), &maildir);
    let root = k.dir.path().join("root.pem");
    let out = python(
        &format!("{COMMON}{QRESYNC}"),
        &[&s.imap, &s.smtp, root.to_str().unwrap(), &dovecot],
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("{\"kith\""))
        .unwrap_or_default();
    let both: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("{out}"));
    let expected = serde_json::json!({
        "select vanished": [3, 7, 9],
        "select changed": [2, 5],
        "idle vanished": [4],
        "idle expunge lines": 0,
        "fetch vanished": [3, 4, 7, 9],
        "fetch changed": [2, 5],
    });
    assert_eq!(both["kith"], expected, "{out}");
    assert_eq!(
        both["dovecot"], expected,
        "Dovecot answers otherwise: {out}"
    );
}
