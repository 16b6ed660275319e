//! The UDP check: `echo PORT` answers every datagram on PORT with
//! "echo: " and the datagram, through plain `std::net::UdpSocket`; a datagram
//! "quit" ends the program with status 3. `tests/run.sh` sends datagrams
//! through QEMU's UDP hostfwd.

#[cfg(target_os = "hermit")]
use kith_unikernel as _;

use std::net::UdpSocket;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(7);
    let socket = UdpSocket::bind(("0.0.0.0", port)).expect("bind");
    println!("echo: listening on udp port {port}");
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = socket.recv_from(&mut buf).expect("recv_from");
        if &buf[..n] == b"quit" {
            println!("echo: quit from {from}");
            std::process::exit(3);
        }
        let mut reply = b"echo: ".to_vec();
        reply.extend_from_slice(&buf[..n]);
        socket.send_to(&reply, from).expect("send_to");
    }
}
