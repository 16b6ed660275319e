//! Runs one side of a session over a byte stream: frames out, frames in, one
//! [`Endpoint`] in between.
//!
//! The stream is anything that reads and writes: a TLS stream over TCP in the `kith`
//! CLI and services (mutual TLS from kith-identity's `link`), a pipe or a socket pair in
//! tests. The loop is blocking, one thread per session, like the store calls it makes;
//! a server gives each connection its own thread. Errors on this side are told to the
//! peer in a [`Message::Error`] before the stream is dropped.

use std::io::{ErrorKind, Read, Write};

use super::SyncError;
use super::message::{FrameDecoder, FrameError, Message};
use super::session::Endpoint;

/// Bytes and messages moved so far in one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes written to the stream.
    pub sent: u64,
    /// Bytes read from the stream.
    pub received: u64,
    /// Messages handled.
    pub messages: u64,
}

/// Why a session over a stream ended early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Reading or writing the stream failed (including TLS errors and timeouts).
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not frames of this protocol.
    #[error("the peer sent bytes that are not Kith sync frames: {0}")]
    Corrupt(String),
    /// The stream ended; `mid_message` if it ended inside a frame.
    #[error("the peer closed the connection before the session was over")]
    Closed {
        /// Whether part of a frame had arrived.
        mid_message: bool,
    },
    /// The session failed (this side's store, or the peer's messages).
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Runs `endpoint` over `stream` until it is done; `observe` sees the traffic and the
/// endpoint after each message (a progress bar reads a fetch's counts there). A serving endpoint is never done: it ends with
/// [`TransportError::Closed`] (`mid_message: false`) when the client hangs up cleanly.
pub fn run<E: Endpoint + ?Sized, S: Read + Write>(
    endpoint: &mut E,
    stream: &mut S,
    observe: &mut dyn FnMut(&Traffic, &E),
) -> Result<Traffic, TransportError> {
    let mut traffic = Traffic::default();
    let start = endpoint.start();
    let first = answer_or_tell(stream, start)?;
    send(stream, &first, &mut traffic)?;
    let mut decoder = FrameDecoder::new();
    let mut buffer = vec![0u8; 64 << 10];
    while !endpoint.is_done() {
        let message = match decoder.next_message() {
            Ok(message) => message,
            Err(FrameError::Incomplete) => {
                let n = read(stream, &mut buffer)?;
                if n == 0 {
                    let mid_message = decoder.has_partial();
                    return Err(TransportError::Closed { mid_message });
                }
                decoder.push(&buffer[..n]);
                traffic.received += n as u64;
                continue;
            }
            Err(FrameError::Corrupt(detail)) => {
                let _ = send(
                    stream,
                    &[Message::Error(format!("bad frame: {detail}"))],
                    &mut traffic,
                );
                return Err(TransportError::Corrupt(detail));
            }
        };
        traffic.messages += 1;
        let handled = endpoint.handle(message);
        let replies = answer_or_tell(stream, handled)?;
        send(stream, &replies, &mut traffic)?;
        observe(&traffic, endpoint);
    }
    Ok(traffic)
}

/// Passes replies on; on an error, tells the peer (best effort) and returns it.
fn answer_or_tell<S: Write>(
    stream: &mut S,
    result: Result<Vec<Message>, SyncError>,
) -> Result<Vec<Message>, TransportError> {
    match result {
        Ok(replies) => Ok(replies),
        Err(e) => {
            if !matches!(e, SyncError::Peer(_)) {
                let _ = send(
                    stream,
                    &[Message::Error(e.to_string())],
                    &mut Traffic::default(),
                );
            }
            Err(e.into())
        }
    }
}

/// Writes messages as one burst and flushes.
fn send<S: Write>(
    stream: &mut S,
    messages: &[Message],
    traffic: &mut Traffic,
) -> std::io::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let bytes: Vec<u8> = messages.iter().flat_map(Message::encode).collect();
    stream.write_all(&bytes)?;
    stream.flush()?;
    traffic.sent += bytes.len() as u64;
    Ok(())
}

/// Reads, retrying interruptions; a TLS peer that hangs up without close_notify reads as
/// the end of the stream.
fn read<S: Read>(stream: &mut S, buffer: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buffer) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
            other => return other,
        }
    }
}
