//! Helpers shared by the backend tests: test objects, a seeded RNG, pack layout parsing.

use std::path::Path;

use kith_store::{Hash, encode_blob};

/// A small, seeded xorshift generator, so failures reproduce from the seed alone.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The canonical bytes of test object `i`: blobs of varied sizes, some compressible.
pub fn object(i: u64) -> Vec<u8> {
    let mut rng = Rng::new(i + 1);
    let len = match i % 5 {
        0 => rng.below(40) as usize,
        1 => 40 + rng.below(200) as usize,
        2 => 1000 + rng.below(3000) as usize,
        3 => 64 + rng.below(100) as usize,
        _ => 20_000,
    };
    let compressible = i.is_multiple_of(2);
    let body: Vec<u8> = (0..len)
        .map(|j| {
            if compressible {
                (j / 7 % 13) as u8 + (i as u8 & 3)
            } else {
                rng.next() as u8
            }
        })
        .collect();
    let mut bytes = encode_blob(&body);
    bytes.extend_from_slice(&i.to_le_bytes());
    bytes
}

/// Test object `i` with its hash.
pub fn hashed(i: u64) -> (Hash, Vec<u8>) {
    let bytes = object(i);
    (Hash::of(&bytes), bytes)
}

/// The records of a pack file as (offset, end, hash), walking lengths from the header;
/// for checking what a damaged pack should still hold. Stops at the first cut record.
pub fn records(pack: &[u8]) -> Vec<(u64, u64, Hash)> {
    let mut out = Vec::new();
    let mut pos = 16;
    while pos + 40 <= pack.len() {
        let len = u32::from_le_bytes(pack[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let mut hash = [0; 32];
        hash.copy_from_slice(&pack[pos + 8..pos + 40]);
        let end = pos + 40 + len;
        if end > pack.len() {
            break;
        }
        out.push((pos as u64, end as u64, Hash(hash)));
        pos = end;
    }
    out
}

/// The path of the live pack file of the store in `dir`.
pub fn pack_file(dir: &Path) -> std::path::PathBuf {
    let current = std::fs::read_to_string(dir.join("CURRENT")).unwrap();
    let generation = current.trim().rsplit(' ').next().unwrap().to_string();
    dir.join(format!("pack-{generation}.pack"))
}

/// The path of the live index file of the store in `dir`.
pub fn index_file(dir: &Path) -> std::path::PathBuf {
    pack_file(dir).with_extension("idx")
}

/// Copies the files of a store folder (flat files and the refs/logs folders).
pub fn copy_store(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_store(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
