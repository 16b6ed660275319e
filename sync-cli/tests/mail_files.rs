//! Mail as files: an mbox written by Python's `mailbox` imported, the mailbox exported as
//! a Maildir that Python and notmuch read, notmuch's tag changes (synchronised to Maildir
//! flags) and a deleted file imported back as flags and an expunge.

mod common;

use std::path::Path;
use std::process::Command;

use common::Kith;

fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (scripts/setup --tests installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn notmuch(config: &Path, args: &[&str]) -> String {
    let out = Command::new("notmuch")
        .args(args)
        .env("NOTMUCH_CONFIG", config)
        .output()
        .expect("notmuch runs (scripts/setup --tests installs it)");
    assert!(
        out.status.success(),
        "notmuch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const WRITE_MBOX: &str = r#"
import mailbox, sys, email.message
box = mailbox.mbox(sys.argv[1])
for i in range(40):
    m = email.message.EmailMessage()
    m["From"] = f"sender{i}@example.org"
    m["To"] = "me@alice.home.arpa"
    m["Subject"] = f"message {i}"
    m["Message-ID"] = f"<m{i}@example.org>"
    m.set_content(f"Hello {i}\nFrom the start of a line, which mbox quotes\n")
    box.add(m)
box.flush()
"#;

const READ_MAILDIR: &str = r#"
import mailbox, sys
box = mailbox.Maildir(sys.argv[1], create=False)
for key, m in sorted(box.items(), key=lambda kv: kv[1]["Message-ID"]):
    body = m.get_payload()
    assert "\nFrom the start of a line" in "\n" + body, body
    print(m["Message-ID"], m.get_flags())
"#;

#[test]
fn mbox_in_maildir_out_and_notmuch_tags_back_as_flags() {
    let k = Kith::init();
    let work = tempfile::tempdir().unwrap();
    let mbox = work.path().join("old.mbox");
    python(WRITE_MBOX, &[&mbox]);
    let out = k.ok(&["import", mbox.to_str().unwrap(), "/mail/me/INBOX"]);
    assert!(out.contains("40 messages added"), "{out}");

    let maildir = work.path().join("Mail");
    let out = k.ok(&["export", "/mail/me/INBOX", maildir.to_str().unwrap()]);
    assert!(out.contains("wrote 40 messages"), "{out}");
    let listed = python(READ_MAILDIR, &[&maildir]);
    assert_eq!(listed.lines().count(), 40, "{listed}");
    assert!(
        listed.lines().any(|l| l.trim_end() == "<m7@example.org>"),
        "{listed}"
    );

    // notmuch indexes the Maildir and its tag changes rename the files (flags).
    let config = work.path().join("notmuch.conf");
    std::fs::write(
        &config,
        format!(
            "[database]\npath={}\n[maildir]\nsynchronize_flags=true\n[new]\ntags=unread;inbox\n",
            maildir.display()
        ),
    )
    .unwrap();
    notmuch(&config, &["new"]);
    assert_eq!(notmuch(&config, &["count", "*"]).trim(), "40");
    notmuch(&config, &["tag", "+flagged", "--", "id:m3@example.org"]);
    notmuch(
        &config,
        &[
            "tag",
            "-unread",
            "--",
            "id:m4@example.org",
            "or",
            "id:m5@example.org",
        ],
    );
    let gone = notmuch(&config, &["search", "--output=files", "id:m9@example.org"]);
    std::fs::remove_file(gone.trim()).unwrap();

    let out = k.json(&["import", maildir.to_str().unwrap(), "/mail/me/INBOX"]);
    assert_eq!(
        out["messages"],
        serde_json::json!({ "added": 0, "flagged": 3, "expunged": 1 })
    );
    let again = work.path().join("again");
    k.ok(&["export", "/mail/me/INBOX", again.to_str().unwrap()]);
    let listed = python(READ_MAILDIR, &[&again]);
    assert_eq!(listed.lines().count(), 39);
    assert!(listed.contains("<m3@example.org> F"), "{listed}");
    assert!(
        listed.contains("<m4@example.org> S") && listed.contains("<m5@example.org> S"),
        "{listed}"
    );
    assert!(!listed.contains("<m9@example.org>"));
    // Importing the same Maildir again changes nothing.
    assert!(
        k.ok(&["import", again.to_str().unwrap(), "/mail/me/INBOX"])
            .contains("nothing changed")
    );
    assert!(
        k.fails(&["import", "/etc/hostname", "/mail/me/INBOX"])
            .contains("not an mbox")
    );
}
