//! SMTP facing a hostile client: arbitrary bytes, split at an arbitrary point, go into a
//! session on the inbound or the submission port (the first byte chooses). Nothing may
//! panic, every reply is a well-formed SMTP reply line, no recipient outside the served
//! domain is ever accepted on the inbound port, and on the submission port no message is
//! accepted from a client that has not signed in, or from an address not its own.
#![no_main]

use kith_mail::smtp::{Action, Config, Directory, Mode, Recipient, Session};
use libfuzzer_sys::fuzz_target;

/// One user, `me`, whose password is `pw`.
struct OneUser;

impl Directory for OneUser {
    fn is_user(&self, user: &str) -> bool {
        user == "me"
    }

    fn authenticate(&self, user: &str, password: &str) -> bool {
        user == "me" && password == "pw"
    }
}

fuzz_target!(|data: &[u8]| {
    let mode = match data.first() {
        Some(b) if b & 1 == 1 => Mode::Submission,
        _ => Mode::Inbound,
    };
    let config = Config {
        host: "mail.alice.home.arpa".into(),
        domains: vec!["alice.home.arpa".into()],
        max_size: 4096,
        offer_tls: true,
        mode,
    };
    // The fuzzer cannot do a TLS handshake; a session that starts "in TLS" lets it reach
    // sign-in on the submission port.
    let mut session = Session::new(config, mode == Mode::Submission);
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    for chunk in [&data[..split], &data[split..]] {
        let mut actions = session.feed(chunk, &OneUser);
        while let Some(action) = actions.pop() {
            match action {
                Action::Send(bytes) => {
                    assert!(bytes.ends_with(b"\r\n"));
                    assert!(bytes[..3].iter().all(u8::is_ascii_digit));
                }
                Action::Deliver(envelope) => {
                    match mode {
                        Mode::Inbound => assert!(
                            envelope.to.iter().all(|r| *r == Recipient::Local("me".into()))
                        ),
                        Mode::Submission => {
                            assert_eq!(envelope.user.as_deref(), Some("me"));
                            let local = envelope.from.split('@').next().unwrap_or_default();
                            assert_eq!(local.split('+').next().map(str::to_lowercase).as_deref(), Some("me"));
                        }
                    }
                    session.delivered(Ok("x".into()));
                    actions.extend(session.feed(&[], &OneUser));
                }
                Action::StartTls | Action::Close => {}
            }
        }
    }
});
