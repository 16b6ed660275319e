//! Opening a store whose pack (and maybe index) holds arbitrary bytes, then reading,
//! writing and reopening it, never panics, and every read returns bytes that hash to the
//! name asked for.
//!
//! Input: a flags byte, then the pack bytes, then (with flag 1) the index bytes, split at
//! the position the next two bytes give. Flag 2 prepends a valid pack header, flag 4 gives
//! the index a valid checksum, and flag 8 writes into each framed record the hash of its
//! payload, so the fuzzer gets past those checks to valid records and what follows.
#![no_main]

use kith_store::{Hash, ObjectStore, encode_blob};
use libfuzzer_sys::fuzz_target;

const PACK_HEADER: &[u8; 16] = b"KITHPACK\x01\0\0\0\0\0\0\0";
const MAGIC: [u8; 4] = [0xD3, b'K', b'R', 0x01];

struct Input {
    pack: Vec<u8>,
    index: Option<Vec<u8>>,
}

fn parse(data: &[u8]) -> Option<Input> {
    let (&flags, rest) = data.split_first()?;
    let (pack, index) = if flags & 1 != 0 {
        let (split, rest) = rest.split_first_chunk::<2>()?;
        let at = (u16::from_le_bytes(*split) as usize).min(rest.len());
        (&rest[..at], Some(rest[at..].to_vec()))
    } else {
        (rest, None)
    };
    let mut full = Vec::new();
    if flags & 2 != 0 {
        full.extend_from_slice(PACK_HEADER);
    }
    full.extend_from_slice(pack);
    if flags & 8 != 0 {
        fix_record_hashes(&mut full);
    }
    let index = index.map(|mut index| {
        if flags & 4 != 0 && index.len() >= 32 {
            let at = index.len() - 32;
            let sum = Hash::of(&index[..at]);
            index[at..].copy_from_slice(sum.as_bytes());
        }
        index
    });
    Some(Input { pack: full, index })
}

/// Writes into every record found by its framing the hash its payload decodes to.
fn fix_record_hashes(pack: &mut [u8]) {
    let mut pos = 16;
    while pos + 40 <= pack.len() {
        if pack[pos..pos + 4] != MAGIC {
            pos += 1;
            continue;
        }
        let len = u32::from_le_bytes(pack[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let Some(payload) = pack.get(pos + 40..pos + 40 + len) else {
            return;
        };
        let canonical = match payload.split_first() {
            Some((0, body)) => Some(body.to_vec()),
            Some((1, body))
                if body.len() >= 4
                    && u32::from_le_bytes(body[..4].try_into().unwrap()) < 1 << 20 =>
            {
                miniz_oxide::inflate::decompress_to_vec_with_limit(&body[4..], 1 << 20).ok()
            }
            _ => None,
        };
        if let Some(canonical) = canonical {
            pack[pos + 8..pos + 40].copy_from_slice(Hash::of(&canonical).as_bytes());
        }
        pos += 40 + len;
    }
}

fn read_all(objects: &dyn ObjectStore) {
    let mut hashes = Vec::new();
    let mut collect = |h: &Hash| {
        hashes.push(*h);
        Ok(())
    };
    if objects.for_each_hash(&mut collect).is_err() {
        return;
    }
    for hash in hashes {
        if let Ok(Some(bytes)) = objects.read(&hash) {
            assert_eq!(
                Hash::of(&bytes),
                hash,
                "a read returned bytes of another hash"
            );
        }
        let _ = objects.contains(&hash);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = parse(data) else { return };
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let path = dir.path();
    std::fs::write(path.join("CURRENT"), b"kith-store 1 pack 1\n").unwrap();
    std::fs::write(path.join("pack-1.pack"), &input.pack).unwrap();
    if let Some(index) = &input.index {
        std::fs::write(path.join("pack-1.idx"), index).unwrap();
    }
    let Ok((objects, _refs)) = kith_store::backend::pack::open(path) else {
        return;
    };
    read_all(&*objects);
    let extra = encode_blob(b"written after opening a fuzzed pack");
    let hash = Hash::of(&extra);
    if objects
        .write(&hash, &extra)
        .and_then(|()| objects.sync())
        .is_err()
    {
        return;
    }
    drop(objects);
    let (objects, _refs) = kith_store::backend::pack::open(path).expect("reopening what we wrote");
    assert_eq!(
        objects.read(&hash).ok().flatten().as_deref(),
        Some(&extra[..]),
        "a synced object was lost"
    );
    read_all(&*objects);
});
