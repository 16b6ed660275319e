//! Pack records: how one object is framed, compressed and verified.
//!
//! A record is `MAGIC (4) | payload length (u32 LE) | hash (32) | payload`, and the
//! payload is a codec byte (0 raw, 1 raw deflate with the inflated size prepended) followed by the
//! object's canonical bytes in that codec. A record is valid when its payload decodes
//! and the decoded bytes hash to the recorded hash.

use std::borrow::Cow;
use std::cell::RefCell;

use super::io::Storage;
use crate::error::{Error, Result};
use crate::hash::Hash;

/// The four bytes that open every record.
pub(crate) const MAGIC: [u8; 4] = [0xD3, b'K', b'R', 0x01];
/// The length of a record's header.
pub(crate) const HEADER_LEN: u64 = 40;
/// The pack file's own header: `KITHPACK`, format version (u32 LE), four zero bytes.
pub(crate) const PACK_HEADER: [u8; 16] = *b"KITHPACK\x01\0\0\0\0\0\0\0";

const RAW: u8 = 0;
const DEFLATE: u8 = 1;
/// Objects shorter than this are stored raw: compression rarely saves anything on them.
const MIN_COMPRESS: usize = 48;
/// Deflate level: 1 (fastest) already gets nearly all of the gain on contacts, events and
/// mail, as with git's loose objects. Directory nodes, mostly hashes, are stored raw
/// without trying: a commit rewrites several large ones, and setting up a compressor
/// for each was most of a mail delivery's CPU time.
const LEVEL: u8 = 1;
/// Deflate shrinks data by at most about 1032 times; a claimed size beyond that is damage.
const MAX_RATIO: usize = 1032;

/// Appends the record of `canonical`, stored under `hash`, to `out`. Deflate (entropy
/// coded, unlike lz4, so text such as vCards shrinks by about 40%) is used only when it
/// makes the record smaller.
pub(crate) fn encode(hash: &Hash, canonical: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let node = canonical.first() == Some(&(crate::ObjectKind::Node as u8));
    let compressed = (canonical.len() >= MIN_COMPRESS && !node)
        .then(|| compress(canonical))
        .filter(|c| c.len() < canonical.len());
    let (codec, body) = match &compressed {
        Some(c) => (DEFLATE, c.as_slice()),
        None => (RAW, canonical),
    };
    let len = u32::try_from(body.len() + 1).map_err(|_| too_large(hash, canonical.len()))?;
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(hash.as_bytes());
    out.push(codec);
    out.extend_from_slice(body);
    Ok(())
}

fn too_large(hash: &Hash, len: usize) -> Error {
    let detail = format!("object {hash} is {len} bytes; a pack record holds at most 4 GiB");
    Error::io(
        "write",
        "pack",
        std::io::Error::new(std::io::ErrorKind::InvalidInput, detail),
    )
}

/// A record header as found on disk, not yet trusted.
pub(crate) struct Header {
    /// Whether it opens with [`MAGIC`].
    pub(crate) magic: bool,
    /// The payload length it claims.
    pub(crate) len: u64,
    /// The hash it claims.
    pub(crate) hash: Hash,
}

impl Header {
    /// Reads a header from the first [`HEADER_LEN`] bytes of `bytes`.
    pub(crate) fn parse(bytes: &[u8; HEADER_LEN as usize]) -> Header {
        let mut hash = [0; 32];
        hash.copy_from_slice(&bytes[8..40]);
        Header {
            magic: bytes[..4] == MAGIC,
            len: u64::from(u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]])),
            hash: Hash(hash),
        }
    }
}

/// The canonical bytes in a payload, if it decodes and they hash to `hash`.
pub(crate) fn verify<'a>(hash: &Hash, payload: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
    let (&codec, body) = payload.split_first().ok_or("empty payload")?;
    let canonical = match codec {
        RAW => Cow::Borrowed(body),
        DEFLATE => Cow::Owned(decompress(body)?),
        other => return Err(format!("unknown codec {other}")),
    };
    if Hash::of(&canonical) != *hash {
        return Err("contents do not match the hash".into());
    }
    Ok(canonical)
}

/// The inflated size (u32 LE), then the raw deflate stream. Each thread keeps one
/// compressor and resets it: setting one up allocates and clears some 300 KB.
fn compress(canonical: &[u8]) -> Vec<u8> {
    use miniz_oxide::deflate::core::{
        CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
    };
    thread_local! {
        static COMPRESSOR: RefCell<Box<CompressorOxide>> = RefCell::new(Box::new(
            CompressorOxide::new(create_comp_flags_from_zip_params(LEVEL.into(), -15, 0)),
        ));
    }
    let mut out = (canonical.len() as u32).to_le_bytes().to_vec();
    out.resize(4 + (canonical.len() / 2).max(64), 0);
    let mut at = 4;
    COMPRESSOR.with_borrow_mut(|compressor| {
        compressor.reset();
        let mut input = canonical;
        loop {
            let (status, read, written) =
                compress(compressor, input, &mut out[at..], TDEFLFlush::Finish);
            at += written;
            input = &input[read..];
            match status {
                TDEFLStatus::Done => break,
                TDEFLStatus::Okay => {
                    let grown = out.len() * 2;
                    out.resize(grown, 0);
                }
                failed => unreachable!("deflate into memory failed: {failed:?}"),
            }
        }
    });
    out.truncate(at);
    out
}

fn decompress(body: &[u8]) -> Result<Vec<u8>, String> {
    let size = body.get(..4).ok_or("deflate payload without its size")?;
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
    if size > body.len().saturating_mul(MAX_RATIO) {
        return Err(format!("deflate payload claims an implausible size {size}"));
    }
    let out = miniz_oxide::inflate::decompress_to_vec_with_limit(&body[4..], size)
        .map_err(|e| format!("deflate: {e:?}"))?;
    if out.len() != size {
        return Err(format!(
            "deflate payload inflates to {} bytes, not {size}",
            out.len()
        ));
    }
    Ok(out)
}

/// Reads the record at `offset` of `pack`, which an index says holds `hash`, and returns
/// its canonical bytes, or [`Error::Corrupt`] naming the file and offset.
pub(crate) fn read(pack: &dyn Storage, offset: u64, hash: &Hash) -> Result<Vec<u8>> {
    let corrupt = |why: String| Error::Corrupt {
        hash: *hash,
        detail: format!("{} offset {offset}: {why}", pack.path().display()),
    };
    let mut head = [0; HEADER_LEN as usize];
    if pack.read_at(offset, &mut head)? < head.len() {
        return Err(corrupt("record cut off".into()));
    }
    let header = Header::parse(&head);
    if header.len > 1 << 20 && offset + HEADER_LEN + header.len > pack.size()? {
        return Err(corrupt(format!(
            "record length {} runs past the end",
            header.len
        )));
    }
    let mut payload = vec![0; header.len as usize];
    if pack.read_at(offset + HEADER_LEN, &mut payload)? < payload.len() {
        return Err(corrupt("record cut off".into()));
    }
    match verify(hash, &payload) {
        Ok(canonical) => Ok(canonical.into_owned()),
        Err(why) if !header.magic || header.hash != *hash => Err(corrupt(format!(
            "record header damaged or claims {} ({why})",
            header.hash
        ))),
        Err(why) => Err(corrupt(why)),
    }
}

/// The whole record at `offset`, header included, as it is on disk (for copying).
pub(crate) fn read_raw(pack: &dyn Storage, offset: u64) -> Result<Vec<u8>> {
    let mut head = [0; HEADER_LEN as usize];
    let cut = || Error::Format {
        path: pack.path().to_path_buf(),
        detail: format!("record at offset {offset} cut off"),
    };
    if pack.read_at(offset, &mut head)? < head.len() {
        return Err(cut());
    }
    let mut bytes = vec![0; (HEADER_LEN + Header::parse(&head).len) as usize];
    if pack.read_at(offset, &mut bytes)? < bytes.len() {
        return Err(cut());
    }
    Ok(bytes)
}

/// Checks the pack file's header.
pub(crate) fn check_pack_header(pack: &dyn Storage) -> Result<()> {
    let mut head = [0; PACK_HEADER.len()];
    let got = pack.read_at(0, &mut head)?;
    if got < head.len() || head[..8] != PACK_HEADER[..8] {
        let detail = "no KITHPACK header".into();
        return Err(Error::Format {
            path: pack.path().to_path_buf(),
            detail,
        });
    }
    if head != PACK_HEADER {
        let detail = format!("pack format version {} is not supported", head[8]);
        return Err(Error::Format {
            path: pack.path().to_path_buf(),
            detail,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(canonical: &[u8]) -> (Hash, Vec<u8>) {
        let hash = Hash::of(canonical);
        let mut out = Vec::new();
        encode(&hash, canonical, &mut out).unwrap();
        (hash, out)
    }

    #[test]
    fn small_objects_stay_raw_and_large_repetitive_ones_shrink() {
        let (hash, small) = record(b"\x01hi");
        assert_eq!(small.len() as u64, HEADER_LEN + 1 + 3);
        assert_eq!(
            verify(&hash, &small[HEADER_LEN as usize..])
                .unwrap()
                .as_ref(),
            b"\x01hi"
        );
        let big = vec![7u8; 10_000];
        let (hash, packed) = record(&big);
        assert!(packed.len() < 200);
        assert_eq!(
            verify(&hash, &packed[HEADER_LEN as usize..])
                .unwrap()
                .as_ref(),
            &big[..]
        );
    }

    #[test]
    fn one_thread_compressing_many_objects_gets_each_back() {
        // The thread's compressor is reused: nothing of one object may leak into the next,
        // and outputs larger than the first guess (incompressible bytes) grow as needed.
        let mut state = 7u64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 56) as u8
                })
                .collect()
        };
        let objects: Vec<Vec<u8>> = vec![
            b"\x01".repeat(60),
            noise(100_000),
            b"From: a\r\nSubject: hello\r\n\r\nbody ".repeat(300),
            noise(64),
            [b"\x01".as_slice(), &noise(5_000), &[0; 5_000]].concat(),
        ];
        for canonical in objects.iter().chain(objects.iter().rev()) {
            let (hash, rec) = record(canonical);
            let back = verify(&hash, &rec[HEADER_LEN as usize..]).unwrap();
            assert_eq!(back.as_ref(), &canonical[..]);
        }
    }

    #[test]
    fn a_wrong_payload_does_not_verify() {
        let (hash, mut rec) = record(b"\x01hello");
        *rec.last_mut().unwrap() ^= 1;
        assert!(verify(&hash, &rec[HEADER_LEN as usize..]).is_err());
        assert!(verify(&hash, &[9, 1, 2]).is_err());
        assert!(verify(&hash, &[DEFLATE, 255, 255, 255, 127, 0]).is_err());
    }
}
