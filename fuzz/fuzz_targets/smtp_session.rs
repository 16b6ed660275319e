//! Inbound SMTP facing a hostile client: arbitrary bytes, split at an arbitrary point,
//! go into a session. Nothing may panic, every reply is a well-formed SMTP reply line,
//! and no recipient outside the served domain is ever accepted for delivery.
#![no_main]

use kith_mail::smtp::{Action, Config, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = Config {
        host: "mail.alice.home.arpa".into(),
        domains: vec!["alice.home.arpa".into()],
        max_size: 4096,
        offer_tls: true,
    };
    let mut session = Session::new(config, false);
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let is_user = |u: &str| u == "me";
    for chunk in [&data[..split], &data[split..]] {
        let mut actions = session.feed(chunk, &is_user);
        while let Some(action) = actions.pop() {
            match action {
                Action::Send(bytes) => {
                    assert!(bytes.ends_with(b"\r\n"));
                    assert!(bytes[..3].iter().all(u8::is_ascii_digit));
                }
                Action::Deliver(envelope) => {
                    assert!(envelope.to.iter().all(|u| u == "me"));
                    session.delivered(Ok("x".into()));
                    actions.extend(session.feed(&[], &is_user));
                }
                Action::StartTls | Action::Close => {}
            }
        }
    }
});
