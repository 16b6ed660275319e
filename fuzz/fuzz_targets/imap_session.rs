//! IMAP facing a hostile client: arbitrary bytes, split at an arbitrary point, go into
//! a logged-in session over a small mailbox in a memory store. Nothing may panic, and
//! everything sent back is whole CRLF-terminated lines or continuation requests.
#![no_main]

use std::collections::BTreeSet;
use std::sync::Arc;

use kith_mail::imap::{Accounts, Config, Session};
use kith_mail::mailbox::Mailbox;
use kith_store::Store;
use libfuzzer_sys::fuzz_target;

struct Me;

impl Accounts for Me {
    fn verify(&self, user: &str, password: &str) -> bool {
        user == "me" && password == "pw"
    }
}

fn session() -> Session {
    let store = Store::memory();
    let inbox = Mailbox::of("me", "INBOX").unwrap();
    let mut tx = store.transaction("main").unwrap();
    inbox.create(&mut tx, 7).unwrap();
    let multipart = b"Subject: m\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--b--\r\n";
    inbox.add(&mut tx, multipart, &BTreeSet::new()).unwrap();
    inbox
        .add(&mut tx, b"From: a@b\r\n\r\nplain\r\n", &BTreeSet::new())
        .unwrap();
    tx.commit("fuzz", "setup").unwrap();
    let mut session = Session::new(Config {
        store,
        branch: "main".into(),
        author: "fuzz".into(),
        accounts: Arc::new(Me),
    });
    session
        .feed(b"0 LOGIN me pw\r\n", &mut Vec::new())
        .expect("a Vec takes any output");
    session
}

fuzz_target!(|data: &[u8]| {
    let mut session = session();
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    for chunk in [&data[..split], &data[split..]] {
        let mut out = Vec::new();
        session
            .feed(chunk, &mut out)
            .expect("a Vec takes any output");
        assert!(out.is_empty() || out.ends_with(b"\r\n") || out.ends_with(b"}\r\n"));
        session.changed(&mut out).expect("a Vec takes any output");
    }
});
