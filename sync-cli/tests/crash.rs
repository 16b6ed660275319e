//! Crash safety: a real writer process (a shell loop of `kith put` and `kith import`, each
//! reporting a commit only after `kith` exits, i.e. after the commit is durable) is killed
//! with SIGKILL at random moments, 100 times. After each kill the store opens, `kith fsck`
//! is clean, and every reported commit's data is there, byte for byte.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Kith;

/// The bytes the writer stores for item `i` (what `yes $i | head -c SIZE` prints).
fn expected(i: u64) -> Vec<u8> {
    let size = (i * 7919 % 200_000) as usize;
    format!("{i}\n")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(size)
        .collect()
}

const WRITER: &str = r#"
set -e
i=$1
while true; do
  size=$(( i * 7919 % 200000 ))
  yes "$i" | head -c "$size" > "$WORK/item" || true
  if (( i % 5 == 0 )); then
    rm -rf "$WORK/dir"; mkdir -p "$WORK/dir/sub"
    for j in $(seq 1 40); do echo "$i $j" > "$WORK/dir/sub/$j"; done
    cp "$WORK/item" "$WORK/dir/item"
    "$KITH" --store "$STORE" import "$WORK/dir" "/imported/$i" -m "import $i" > /dev/null
  else
    "$KITH" --store "$STORE" put "/w/$i" "$WORK/item" -m "put $i" > /dev/null
  fi
  echo "$i"
  i=$(( i + 1 ))
done
"#;

#[test]
fn sigkill_at_random_moments_never_loses_an_acknowledged_commit() {
    let k = Kith::init();
    let work = k.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut acknowledged: Vec<u64> = Vec::new();
    let mut next = 1u64;
    let mut seed = 0x9e3779b97f4a7c15u64;
    for round in 0..100 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let lines = run_writer_then_kill(&k, &work, next, Duration::from_millis(seed % 60));
        acknowledged.extend(&lines);
        next = lines.last().map_or(next, |l| l + 1) + 1;

        let fsck = k.cmd(&["fsck"]).output().unwrap();
        assert!(
            fsck.status.success(),
            "round {round}: fsck: {}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
        check_acknowledged(&k, &acknowledged, round);
    }
    println!(
        "{} commits acknowledged across 100 kills",
        acknowledged.len()
    );
}

/// Starts the writer at item `start`, waits for its first acknowledged commit, lets it
/// run `after` more, kills its whole process group with SIGKILL, and returns the items it
/// acknowledged.
fn run_writer_then_kill(k: &Kith, work: &std::path::Path, start: u64, after: Duration) -> Vec<u64> {
    let mut child = Command::new("bash")
        .args(["-c", WRITER, "writer", &start.to_string()])
        .env("KITH", env!("CARGO_BIN_EXE_kith"))
        .env("STORE", k.store())
        .env("WORK", work)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line.trim().parse::<u64>().unwrap());
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the writer acknowledged nothing within a minute");
    std::thread::sleep(after);
    let pgid = child.id();
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap();
    reader.join().unwrap();
    std::iter::once(first).chain(rx.try_iter()).collect()
}

/// Every acknowledged item is in the store with exactly the bytes written.
fn check_acknowledged(k: &Kith, acknowledged: &[u64], round: usize) {
    let listed = k.ok(&["ls", "-r"]);
    for &i in acknowledged {
        let path = if i % 5 == 0 {
            format!("imported/{i}/item")
        } else {
            format!("w/{i}")
        };
        assert!(
            listed.lines().any(|l| l == path),
            "round {round}: acknowledged {path} is missing"
        );
    }
    for &i in acknowledged.iter().rev().take(3) {
        let path = if i % 5 == 0 {
            format!("/imported/{i}/item")
        } else {
            format!("/w/{i}")
        };
        let got = k.cmd(&["get", &path]).output().unwrap();
        assert_eq!(
            got.stdout,
            expected(i),
            "round {round}: {path} came back different"
        );
    }
}
