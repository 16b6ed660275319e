//! Arbitrary bytes into the DNS server's request handling (kith-identity's
//! `Server::handle`), over both transports: it must never panic, and whatever it answers
//! must parse as a DNS message that fits the transport (silence is fine).

#![no_main]

use std::sync::OnceLock;

use hickory_proto::op::Message;
use kith_identity::dns::{MAX_UDP_PAYLOAD, Server, Transport};
use kith_identity::Site;
use libfuzzer_sys::fuzz_target;

/// A server over a memory store holding the default zone of alice.home.arpa.
fn server() -> &'static Server {
    static SERVER: OnceLock<(tempfile::TempDir, Server)> = OnceLock::new();
    let (_, server) = SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::new(kith_store::Store::memory(), "main", dir.path());
        let addrs = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        site.create("alice.home.arpa", "board", &addrs).unwrap();
        site.add_device("laptop", "board").unwrap();
        let server = Server::open(site).unwrap();
        (dir, server)
    });
    server
}

fuzz_target!(|data: &[u8]| {
    let server = server();
    for transport in [Transport::Udp, Transport::Tcp] {
        if let Some(response) = server.handle(data, transport) {
            let parsed = Message::from_vec(&response);
            assert!(parsed.is_ok(), "unparsable response {response:02x?}");
            if transport == Transport::Udp {
                assert!(response.len() <= usize::from(MAX_UDP_PAYLOAD));
            }
        }
    }
});
