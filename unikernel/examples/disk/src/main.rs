//! The disk check: the raw virtio-blk device `/dev/vda` through plain
//! `std::fs`. `disk write TEXT` writes TEXT at an offset that straddles two
//! sectors; `disk read` (in a later boot) prints what is there. `disk log`
//! appends numbered records until stopped, printing "acked N" once record N's
//! write returned; `disk check` counts the intact records from the start.
//! `tests/run.sh` writes, boots again and reads back, and kills QEMU with
//! SIGKILL during `disk log` to check that every acknowledged record is kept.

#[cfg(target_os = "hermit")]
use kith_unikernel as _;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};

/// Where the record goes: inside sector 1, running into sector 2.
const OFFSET: u64 = 1000;
/// The record's fixed length.
const RECORD: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/vda")
        .expect("open /dev/vda");
    let size = disk.metadata().expect("fstat /dev/vda").len();
    println!("disk: {size} bytes");
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("write"), Some(text)) => write(&mut disk, text, size),
        (Some("read"), None) => read(&mut disk),
        (Some("log"), None) => log(&mut disk, size),
        (Some("check"), None) => check(&mut disk, size),
        _ => {
            eprintln!("usage: disk write TEXT | disk read | disk log | disk check");
            std::process::exit(2);
        }
    }
}

fn write(disk: &mut File, text: &str, size: u64) {
    let mut record = [b'.'; RECORD];
    record[..text.len().min(RECORD)].copy_from_slice(&text.as_bytes()[..text.len().min(RECORD)]);
    disk.seek(SeekFrom::Start(OFFSET)).expect("seek");
    disk.write_all(&record).expect("write the record");
    disk.seek(SeekFrom::End(-3)).expect("seek near the end");
    let tail = disk.write(b"0123456789").expect("write at the end");
    println!("wrote {RECORD} bytes at {OFFSET}; {tail} of 10 fit before the end");
    assert_eq!(disk.stream_position().expect("tell"), size);
}

fn read(disk: &mut File) {
    let mut record = [0u8; RECORD];
    disk.seek(SeekFrom::Start(OFFSET)).expect("seek");
    disk.read_exact(&mut record).expect("read the record");
    println!(
        "read: {}",
        String::from_utf8_lossy(&record).trim_end_matches('.')
    );
}

/// Record `i` of the log: its number, padded to a fixed length.
fn log_record(i: u64) -> [u8; RECORD] {
    let mut record = [b' '; RECORD];
    let text = format!("record {i:08}");
    record[..text.len()].copy_from_slice(text.as_bytes());
    record[RECORD - 1] = b'\n';
    record
}

fn log(disk: &mut File, size: u64) {
    for i in 0..size / RECORD as u64 {
        disk.write_all(&log_record(i)).expect("append a record");
        println!("acked {i}");
    }
}

fn check(disk: &mut File, size: u64) {
    let mut record = [0u8; RECORD];
    let intact = (0..size / RECORD as u64)
        .take_while(|&i| disk.read_exact(&mut record).is_ok() && record == log_record(i))
        .count();
    println!("intact: {intact} records");
}
