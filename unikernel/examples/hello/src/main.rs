//! The first-boot check: console, heap, a thread, the clock and the exit
//! status, all through plain std. `tests/run.sh` reads what it prints.

#[cfg(target_os = "hermit")]
use kith_unikernel as _;

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
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

    std::process::exit(7);
}
