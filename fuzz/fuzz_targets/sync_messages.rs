//! The sync protocol facing a hostile peer: arbitrary bytes go through the frame decoder,
//! and every message that decodes is fed to a serving side and to a fetching side over
//! small stores. Nothing may panic; bad input ends the session with an error.
#![no_main]

use kith_store::Store;
use kith_store::sync::{Endpoint, FetchClient, FrameDecoder, FrameError, Server};
use libfuzzer_sys::fuzz_target;

fn store() -> Store {
    let store = Store::memory();
    let mut tx = store.transaction("main").unwrap();
    for i in 0..40 {
        tx.put(&format!("/contacts/{i}.vcf"), format!("BEGIN:VCARD\r\nUID:{i}\r\nEND:VCARD\r\n").as_bytes()).unwrap();
    }
    tx.commit("fuzz", "seed").unwrap();
    store
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = FrameDecoder::new();
    decoder.push(data);
    let mut server = Server::new(store());
    let mut client = FetchClient::new(Store::memory());
    let _ = client.start();
    let (mut server_alive, mut client_alive) = (true, true);
    loop {
        match decoder.next_message() {
            Ok(message) => {
                if server_alive {
                    server_alive = server.handle(message.clone()).is_ok();
                }
                if client_alive {
                    client_alive = client.handle(message).is_ok();
                }
            }
            Err(FrameError::Incomplete) | Err(FrameError::Corrupt(_)) => break,
        }
    }
});
