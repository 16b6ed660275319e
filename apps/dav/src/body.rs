//! Response bodies: whole ones, and multistatus bodies streamed as they are produced.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::channel::Channel;
use http_body_util::{Either, Full};

/// A response body: all at once, or streamed from a producer.
pub type Body = Either<Full<Bytes>, Channel<Bytes, Infallible>>;

/// How many bytes a streamed body sends at once.
const CHUNK: usize = 64 * 1024;

/// A body holding `bytes`.
pub fn full(bytes: Bytes) -> Body {
    Either::Left(Full::new(bytes))
}

/// A body produced by `chunks` on a blocking thread, sent in pieces of about [`CHUNK`]
/// bytes so a large multistatus never sits whole in memory. Must be called within a
/// tokio runtime.
pub fn stream(chunks: Box<dyn Iterator<Item = String> + Send>) -> Body {
    let (mut tx, body) = Channel::new(4);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut buf = String::with_capacity(CHUNK + 4096);
        for chunk in chunks {
            buf.push_str(&chunk);
            if buf.len() >= CHUNK {
                let piece = Bytes::from(std::mem::replace(
                    &mut buf,
                    String::with_capacity(CHUNK + 4096),
                ));
                if handle.block_on(tx.send_data(piece)).is_err() {
                    return;
                }
            }
        }
        if !buf.is_empty() {
            let _ = handle.block_on(tx.send_data(Bytes::from(buf)));
        }
    });
    Either::Right(body)
}
