//! The first-boot check: console, heap, a thread, the clock, the socket calls
//! tokio's shells need (`getsockname`, `FIONBIO`, `dup`) and the exit status,
//! all through plain std. `tests/run.sh` reads what it prints.

#[cfg(target_os = "hermit")]
use kith_unikernel as _;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{TcpListener, ToSocketAddrs, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

fn main() {
    println!("hello from kith-unikernel");

    let squares: BTreeMap<u32, u64> = (0..1000u32)
        .map(|i| (i, u64::from(i) * u64::from(i)))
        .collect();
    println!(
        "heap ok: {} entries, sum {}",
        squares.len(),
        squares.values().sum::<u64>()
    );

    let shared = Arc::new(Mutex::new(0u32));
    let worker = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            for _ in 0..100 {
                *shared.lock().unwrap() += 1;
                std::thread::yield_now();
            }
            "worker done"
        })
    };
    for _ in 0..100 {
        *shared.lock().unwrap() += 1;
        std::thread::yield_now();
    }
    let said = worker.join().unwrap();
    println!("thread ok: {said}, counter {}", shared.lock().unwrap());

    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    let slept = start.elapsed();
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    println!(
        "clock ok: slept {} ms, unix time {} s",
        slept.as_millis(),
        since_epoch.as_secs()
    );
    println!("args: {:?}", std::env::args().collect::<Vec<_>>());
    let resolved: Vec<_> = ("localhost", 80)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    println!("resolve ok: {resolved:?}");

    match sockets() {
        Ok(said) => println!("sockets ok: {said}"),
        Err(e) => println!("sockets failed: {e}"),
    }

    std::process::exit(7);
}

/// `local_addr` (getsockname, in the socket's family), `try_clone` (dup) sharing the
/// non-blocking mode that `set_nonblocking` (ioctl FIONBIO) sets, and closing one of
/// the two.
fn sockets() -> std::io::Result<String> {
    let listener = TcpListener::bind("0.0.0.0:8080")?;
    let clone = listener.try_clone()?;
    clone.set_nonblocking(true)?;
    let would_block = matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock);
    drop(clone);
    let still_open = listener.local_addr()?;
    let udp = UdpSocket::bind("0.0.0.0:5353")?;
    let tcp6 = TcpListener::bind("[::]:8081")?;
    Ok(format!(
        "tcp {still_open}, udp {}, tcp6 {}, accept on the clone's mode would block: \
{would_block}",
        udp.local_addr()?,
        tcp6.local_addr()?
    ))
}
