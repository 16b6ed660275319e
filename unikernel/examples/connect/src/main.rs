//! The outgoing TCP check: `connect HOST:PORT CLOSED` connects to HOST:PORT
//! with std's blocking `TcpStream`, then again through tokio (mio's
//! non-blocking connect, `EINPROGRESS` and `SO_ERROR`), each time sending a
//! line and printing the reply; then waits for a reply it never asked for
//! under a read timeout (`SO_RCVTIMEO`), and connects to port CLOSED of the
//! same host and prints how the refusal came back. Exits 0 when all went as
//! expected, 1 otherwise. `tests/run.sh` runs it against a server on the host,
//! reached through QEMU's user-mode network.

#[cfg(target_os = "hermit")]
use kith_unikernel as _;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

fn main() {
    let mut args = std::env::args().skip(1);
    let server: SocketAddr = args.next().and_then(|a| a.parse().ok()).expect("HOST:PORT");
    let closed: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("CLOSED port");
    let blocking = exchange_blocking(server, "blocking");
    let nonblocking = exchange_tokio(server, "tokio");
    let timeout = read_times_out(server);
    let refused = TcpStream::connect((server.ip(), closed));
    println!(
        "connect: closed port: {:?}",
        refused.as_ref().map_err(|e| e.kind())
    );
    let ok = blocking
        && nonblocking
        && timeout
        && refused.is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused);
    std::process::exit(if ok { 0 } else { 1 });
}

/// Sends `word` and prints the reply, over std's blocking socket.
fn exchange_blocking(server: SocketAddr, word: &str) -> bool {
    let result = TcpStream::connect(server).and_then(|mut stream| {
        writeln!(stream, "{word}")?;
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply)?;
        Ok(reply)
    });
    report(word, result)
}

/// Sends `word` and prints the reply, over tokio.
fn exchange_tokio(server: SocketAddr, word: &str) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        stream.write_all(format!("{word}\n").as_bytes()).await?;
        let mut reply = String::new();
        tokio::io::BufReader::new(stream)
            .read_line(&mut reply)
            .await?;
        Ok::<_, std::io::Error>(reply)
    });
    report(word, result)
}

/// Reads from a server that says nothing, with a read timeout: the read must
/// give up with `WouldBlock` once the timeout has passed.
fn read_times_out(server: SocketAddr) -> bool {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let waited = TcpStream::connect(server).and_then(|mut stream| {
        stream.set_read_timeout(Some(TIMEOUT))?;
        assert_eq!(stream.read_timeout()?, Some(TIMEOUT));
        let start = Instant::now();
        let read = stream.read(&mut [0; 16]);
        Ok((read.map_err(|e| e.kind()), start.elapsed()))
    });
    match waited {
        Ok((Err(ErrorKind::WouldBlock), waited)) if waited >= TIMEOUT => {
            println!("connect: read timeout: gave up after the timeout");
            true
        }
        other => {
            println!("connect: read timeout: {other:?}");
            false
        }
    }
}

fn report(word: &str, result: std::io::Result<String>) -> bool {
    match result {
        Ok(reply) => {
            println!("connect: {word}: {}", reply.trim_end());
            reply.trim_end() == format!("pong {word}")
        }
        Err(e) => {
            println!("connect: {word}: {e}");
            false
        }
    }
}
