//! SEARCH (RFC 9051, section 6.4.4): whether a message matches a key.
//!
//! Flags and sizes need only the message's entry; header, date and text keys read its
//! bytes, once per message, whatever the number of keys.

use std::num::NonZeroU32;

use chrono::NaiveDate;
use imap_codec::imap_types::search::SearchKey;
use mail_parser::{MessageParser, PartType};

/// One message as SEARCH sees it.
pub struct Candidate<'a> {
    /// Its sequence number.
    pub seq: u32,
    /// Its UID.
    pub uid: u32,
    /// The mailbox's message count and largest UID, for `*`.
    pub last: (u32, u32),
    /// Its flags.
    pub flags: &'a std::collections::BTreeSet<String>,
    /// Its mod-sequence.
    pub modseq: u64,
    /// Its bytes, read on first need.
    pub bytes: &'a dyn Fn() -> Vec<u8>,
    /// The day it arrived, from its bytes.
    pub internal: &'a dyn Fn(&[u8]) -> NaiveDate,
}

/// Whether `c` matches `key`.
pub fn matches(key: &SearchKey<'_>, c: &Candidate<'_>, cache: &mut Option<Vec<u8>>) -> bool {
    let flag = |f: &str| c.flags.contains(f);
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, c, cache)),
        SearchKey::Or(a, b) => matches(a, c, cache) || matches(b, c, cache),
        SearchKey::Not(k) => !matches(k, c, cache),
        SearchKey::All => true,
        SearchKey::SequenceSet(set) => in_set(set, c.seq, c.last.0),
        SearchKey::Uid(set) => in_set(set, c.uid, c.last.1),
        SearchKey::Answered => flag("\\Answered"),
        SearchKey::Deleted => flag("\\Deleted"),
        SearchKey::Draft => flag("\\Draft"),
        SearchKey::Flagged => flag("\\Flagged"),
        SearchKey::Seen => flag("\\Seen"),
        SearchKey::Unanswered => !flag("\\Answered"),
        SearchKey::Undeleted => !flag("\\Deleted"),
        SearchKey::Undraft => !flag("\\Draft"),
        SearchKey::Unflagged => !flag("\\Flagged"),
        SearchKey::Unseen => !flag("\\Seen"),
        SearchKey::Keyword(k) => flag(k.as_ref()),
        SearchKey::Unkeyword(k) => !flag(k.as_ref()),
        SearchKey::New | SearchKey::Recent => false,
        SearchKey::Old => true,
        SearchKey::Before(d) => arrived(c, cache) < *d.as_ref(),
        SearchKey::On(d) => arrived(c, cache) == *d.as_ref(),
        SearchKey::Since(d) => arrived(c, cache) >= *d.as_ref(),
        SearchKey::ModSequence { modseq, .. } => c.modseq >= *modseq,
        SearchKey::Larger(n) => bytes(c, cache).len() as u64 > u64::from(*n),
        SearchKey::Smaller(n) => (bytes(c, cache).len() as u64) < u64::from(*n),
        SearchKey::SentBefore(d) => sent(c, cache).is_some_and(|s| s < *d.as_ref()),
        SearchKey::SentOn(d) => sent(c, cache).is_some_and(|s| s == *d.as_ref()),
        SearchKey::SentSince(d) => sent(c, cache).is_some_and(|s| s >= *d.as_ref()),
        SearchKey::From(s) => header(c, cache, "from", s.as_ref()),
        SearchKey::To(s) => header(c, cache, "to", s.as_ref()),
        SearchKey::Cc(s) => header(c, cache, "cc", s.as_ref()),
        SearchKey::Bcc(s) => header(c, cache, "bcc", s.as_ref()),
        SearchKey::Subject(s) => header(c, cache, "subject", s.as_ref()),
        SearchKey::Header(name, s) => header(
            c,
            cache,
            &String::from_utf8_lossy(name.as_ref()),
            s.as_ref(),
        ),
        SearchKey::Body(s) => body(bytes(c, cache), s.as_ref()),
        SearchKey::Text(s) => {
            let raw = bytes(c, cache);
            contains(&raw[..super::mime::header_end(raw)], s.as_ref()) || body(raw, s.as_ref())
        }
    }
}

/// Whether `n` is in a sequence set whose `*` is `largest`.
pub fn in_set(set: &imap_codec::imap_types::sequence::SequenceSet, n: u32, largest: u32) -> bool {
    use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
    let value = |s: &SeqOrUid| match s {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(s) => value(s) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a), value(b));
            (a.min(b)..=a.max(b)).contains(&n)
        }
    })
}

/// The numbers of a set among `1..=largest` (`largest` 0: none).
pub fn expand(set: &imap_codec::imap_types::sequence::SequenceSet, largest: u32) -> Vec<u32> {
    let Some(largest) = NonZeroU32::new(largest) else {
        return Vec::new();
    };
    let mut out: Vec<u32> = set
        .iter(largest)
        .map(NonZeroU32::get)
        .filter(|&n| n <= largest.get())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether a key (or one inside it) is MODSEQ: SEARCH then reports the highest.
pub fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::Not(k) => uses_modseq(k),
        _ => false,
    }
}

fn arrived(c: &Candidate<'_>, cache: &mut Option<Vec<u8>>) -> NaiveDate {
    let raw = bytes(c, cache);
    (c.internal)(raw)
}

fn bytes<'c>(c: &Candidate<'_>, cache: &'c mut Option<Vec<u8>>) -> &'c [u8] {
    cache.get_or_insert_with(|| (c.bytes)())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let needle = needle.to_ascii_lowercase();
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(&needle))
}

/// Whether the body contains `needle`, as stored or decoded (base64,
/// quoted-printable, charsets).
fn body(raw: &[u8], needle: &[u8]) -> bool {
    if contains(&raw[super::mime::header_end(raw)..], needle) {
        return true;
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        return false;
    };
    message.parts.iter().any(|part| match &part.body {
        PartType::Text(text) | PartType::Html(text) => contains(text.as_bytes(), needle),
        PartType::Binary(b) | PartType::InlineBinary(b) => contains(b, needle),
        _ => false,
    })
}

/// Whether header `name` contains `needle`, raw or decoded (RFC 2047).
fn header(c: &Candidate<'_>, cache: &mut Option<Vec<u8>>, name: &str, needle: &[u8]) -> bool {
    let raw = bytes(c, cache);
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return false;
    };
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    message.parts[0]
        .headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .any(|h| {
            let start = h.offset_start as usize;
            let end = (h.offset_end as usize).clamp(start, raw.len());
            let written = String::from_utf8_lossy(&raw[start.min(end)..end]).to_lowercase();
            let decoded = format!("{:?}", h.value).to_lowercase();
            needle.is_empty() || written.contains(&needle) || decoded.contains(&needle)
        })
}

/// The day of the message's Date header.
fn sent(c: &Candidate<'_>, cache: &mut Option<Vec<u8>>) -> Option<NaiveDate> {
    let raw = bytes(c, cache);
    let message = MessageParser::default().parse_headers(raw)?;
    let date = message.date()?;
    NaiveDate::from_ymd_opt(date.year as i32, date.month as u32, date.day as u32)
}
