//! Walking a pack's records in order: catching up on appends, rebuilding an index, and
//! telling a torn tail from damage in the middle.
//!
//! A record that is cut off or does not verify is *damage* if a valid record follows it
//! (found by searching forward for [`MAGIC`]), and a *torn tail* otherwise. Only a scan
//! that holds the pack lock may decide that: without the lock, the bad record may be one
//! that another process is writing at this moment, so such a scan stops in front of it.

use super::index::DAMAGED;
use super::io::Storage;
use super::record::{HEADER_LEN, Header, MAGIC, verify};
use crate::error::Result;
use crate::hash::Hash;

/// How much of the pack one read fetches while scanning.
const WINDOW: usize = 1 << 20;

/// Why a scan stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// It reached the end it was given.
    End,
    /// It found as many records as it was allowed to; call again from `next`.
    Limit,
    /// (Without the lock) a record that is cut off or does not verify starts at `next`.
    Blocked,
    /// (With the lock) everything from `next` on is a torn tail, to be trimmed.
    Torn,
}

/// What a scan found.
pub(crate) struct Segment {
    /// Each record's hash and offset; damaged records that still name their hash carry
    /// the [`DAMAGED`] bit in the offset.
    pub(crate) entries: Vec<(Hash, u64)>,
    /// Where the next scan starts.
    pub(crate) next: u64,
    /// Why it stopped.
    pub(crate) stop: Stop,
}

/// Scans the records of `pack` from `from` to `end`, at most `limit` of them. With
/// `locked` (the caller holds the pack lock) it steps over damage and reports a torn
/// tail; without, it stops at the first bad record.
pub(crate) fn scan(
    pack: &dyn Storage,
    from: u64,
    end: u64,
    locked: bool,
    limit: usize,
) -> Result<Segment> {
    let mut cursor = Cursor::new(pack, end);
    let mut entries = Vec::new();
    let mut pos = from;
    while pos < end {
        if entries.len() >= limit {
            return Ok(Segment {
                entries,
                next: pos,
                stop: Stop::Limit,
            });
        }
        let (claim, why) = match cursor.check(pos)? {
            Check::Valid { hash, next } => {
                entries.push((hash, pos));
                pos = next;
                continue;
            }
            Check::Bad { claim, why } => (claim, why),
        };
        if !locked {
            return Ok(Segment {
                entries,
                next: pos,
                stop: Stop::Blocked,
            });
        }
        let Some(resume) = cursor.next_valid(pos + 1)? else {
            return Ok(Segment {
                entries,
                next: pos,
                stop: Stop::Torn,
            });
        };
        let path = pack.path().display();
        tracing::warn!(
            "damaged record in {path} at offset {pos} ({why}); {} bytes skipped",
            resume - pos
        );
        if let Some(hash) = claim {
            entries.push((hash, pos | DAMAGED));
        }
        pos = resume;
    }
    Ok(Segment {
        entries,
        next: pos,
        stop: Stop::End,
    })
}

/// What is at an offset.
enum Check {
    /// A valid record of `hash`, the next one starting at `next`.
    Valid { hash: Hash, next: u64 },
    /// Something that is not a valid record; `claim` is the hash its header names, if
    /// it has a record header at all.
    Bad {
        claim: Option<Hash>,
        why: &'static str,
    },
}

/// Sequential reading through a window, so a scan makes few large reads.
struct Cursor<'a> {
    pack: &'a dyn Storage,
    end: u64,
    start: u64,
    window: Vec<u8>,
}

impl<'a> Cursor<'a> {
    fn new(pack: &'a dyn Storage, end: u64) -> Cursor<'a> {
        Cursor {
            pack,
            end,
            start: 0,
            window: Vec::new(),
        }
    }

    /// The `len` bytes at `offset`, or `None` if they run past the end.
    fn get(&mut self, offset: u64, len: u64) -> Result<Option<&[u8]>> {
        let Some(stop) = offset.checked_add(len).filter(|&s| s <= self.end) else {
            return Ok(None);
        };
        let window_end = self.start + self.window.len() as u64;
        if offset < self.start || stop > window_end {
            let want = len.max(WINDOW as u64).min(self.end - offset);
            self.window.resize(want as usize, 0);
            let got = self.pack.read_at(offset, &mut self.window)?;
            self.window.truncate(got);
            self.start = offset;
            if (got as u64) < len {
                return Ok(None);
            }
        }
        let at = (offset - self.start) as usize;
        Ok(Some(&self.window[at..at + len as usize]))
    }

    /// Whether a valid record starts at `pos`.
    fn check(&mut self, pos: u64) -> Result<Check> {
        let Some(head) = self.get(pos, HEADER_LEN)? else {
            return Ok(Check::Bad {
                claim: None,
                why: "header cut off",
            });
        };
        let header = Header::parse(head.try_into().expect("a header is 40 bytes"));
        if !header.magic {
            return Ok(Check::Bad {
                claim: None,
                why: "no record header",
            });
        }
        let claim = Some(header.hash);
        let Some(payload) = self.get(pos + HEADER_LEN, header.len)? else {
            return Ok(Check::Bad {
                claim,
                why: "record cut off",
            });
        };
        if verify(&header.hash, payload).is_err() {
            return Ok(Check::Bad {
                claim,
                why: "contents do not verify",
            });
        }
        Ok(Check::Valid {
            hash: header.hash,
            next: pos + HEADER_LEN + header.len,
        })
    }

    /// The offset of the first valid record at or after `from`.
    fn next_valid(&mut self, from: u64) -> Result<Option<u64>> {
        let mut pos = from;
        while pos < self.end {
            let len = (self.end - pos).min(WINDOW as u64);
            let Some(chunk) = self.get(pos, len)? else {
                return Ok(None);
            };
            let Some(at) = chunk.windows(MAGIC.len()).position(|w| w == MAGIC) else {
                pos += len.saturating_sub(MAGIC.len() as u64 - 1).max(1);
                continue;
            };
            let candidate = pos + at as u64;
            if let Check::Valid { .. } = self.check(candidate)? {
                return Ok(Some(candidate));
            }
            pos = candidate + 1;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Mutex;

    use super::*;
    use crate::backend::pack::record::{PACK_HEADER, encode};

    /// A pack in memory: the [`Storage`] seam lets scans run without files.
    struct Bytes(Mutex<Vec<u8>>);

    impl Storage for Bytes {
        fn path(&self) -> &Path {
            Path::new("memory")
        }
        fn size(&self) -> Result<u64> {
            Ok(self.0.lock().unwrap().len() as u64)
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
            let bytes = self.0.lock().unwrap();
            let from = (offset as usize).min(bytes.len());
            let n = buf.len().min(bytes.len() - from);
            buf[..n].copy_from_slice(&bytes[from..from + n]);
            Ok(n)
        }
        fn write_at(&self, _: u64, _: &[u8]) -> Result<()> {
            unreachable!("scans do not write")
        }
        fn truncate(&self, _: u64) -> Result<()> {
            unreachable!("scans do not trim")
        }
        fn sync(&self) -> Result<()> {
            Ok(())
        }
    }

    /// A pack of three records, and where each starts.
    fn pack() -> (Vec<u8>, Vec<(Hash, u64)>) {
        let mut bytes = PACK_HEADER.to_vec();
        let mut at = Vec::new();
        for body in [&b"\x01one"[..], &[b'x'; 300][..], b"\x01three"] {
            let hash = Hash::of(body);
            at.push((hash, bytes.len() as u64));
            encode(&hash, body, &mut bytes).unwrap();
        }
        (bytes, at)
    }

    fn run(bytes: Vec<u8>, locked: bool) -> Segment {
        let end = bytes.len() as u64;
        scan(&Bytes(Mutex::new(bytes)), 16, end, locked, usize::MAX).unwrap()
    }

    #[test]
    fn a_clean_pack_scans_to_its_end() {
        let (bytes, at) = pack();
        let segment = run(bytes.clone(), false);
        assert_eq!(
            (segment.entries, segment.next, segment.stop),
            (at, bytes.len() as u64, Stop::End)
        );
    }

    #[test]
    fn a_cut_record_is_a_torn_tail_or_a_place_to_wait() {
        let (mut bytes, at) = pack();
        bytes.truncate(bytes.len() - 2);
        let segment = run(bytes.clone(), true);
        assert_eq!(
            (segment.entries.len(), segment.next, segment.stop),
            (2, at[2].1, Stop::Torn)
        );
        let segment = run(bytes, false);
        assert_eq!(
            (segment.entries.len(), segment.next, segment.stop),
            (2, at[2].1, Stop::Blocked)
        );
    }

    #[test]
    fn damage_before_a_valid_record_is_stepped_over_under_the_lock() {
        let (mut bytes, at) = pack();
        bytes[at[1].1 as usize + 60] ^= 4;
        let segment = run(bytes, true);
        let damaged = (at[1].0, at[1].1 | DAMAGED);
        assert_eq!(segment.entries, vec![at[0], damaged, at[2]]);
        assert_eq!(segment.stop, Stop::End);
    }
}
