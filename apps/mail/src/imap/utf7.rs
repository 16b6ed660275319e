//! Modified UTF-7 (RFC 3501 5.1.3), the mailbox names of IMAP4rev1 clients: printable
//! ASCII stands for itself (`&` as `&-`), other characters are UTF-16BE in base64 with
//! `,` for `/`, between `&` and `-`.

use base64::Engine;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

fn printable(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// `name` in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if printable(c) {
            flush(&mut out, &mut run);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            run.extend_from_slice(c.encode_utf16(&mut [0; 2]));
        }
    }
    flush(&mut out, &mut run);
    out
}

fn flush(out: &mut String, run: &mut Vec<u16>) {
    if run.is_empty() {
        return;
    }
    let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    out.push_str(&ENGINE.encode(bytes));
    out.push('-');
    run.clear();
}

/// The name a modified UTF-7 string stands for; `None` unless it is valid and in the
/// one form [`encode`] gives (no encoded printable ASCII, no adjacent encoded runs).
pub fn decode(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let (run, after) = rest[at + 1..].split_once('-')?;
        if run.is_empty() {
            out.push('&');
        } else {
            let bytes = ENGINE.decode(run).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units = bytes.chunks(2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            out.push_str(&String::from_utf16(&units.collect::<Vec<_>>()).ok()?);
        }
        rest = after;
    }
    out.push_str(rest);
    (!text.chars().any(|c| !printable(c)) && encode(&out) == text).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_of_rfc_3501_and_others() {
        for (name, encoded) in [
            ("Entwürfe", "Entw&APw-rfe"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("R&D", "R&-D"),
            ("&", "&-"),
            ("", ""),
            ("INBOX/Ünterordner", "INBOX/&ANw-nterordner"),
            ("Mail 📬", "Mail &2D3c7A-"),
            ("é&ü", "&AOk-&-&APw-"),
        ] {
            assert_eq!(encode(name), encoded, "{name}");
            assert_eq!(decode(encoded).as_deref(), Some(name), "{encoded}");
        }
    }

    #[test]
    fn invalid_or_non_canonical_forms_are_refused() {
        for bad in [
            "R&D",        // a bare &
            "&APw",       // no closing -
            "&AGE-",      // "a" encoded
            "&APw-&APw-", // two adjacent runs
            "&APw?-",     // outside the alphabet
            "&AP-",       // an odd byte
            "&2D0-",      // a lone surrogate
            "Entwürfe",   // 8-bit
            "&APx-",      // non-zero trailing bits
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn any_name_survives_a_round_trip() {
        proptest::proptest!(|(name in ".*")| {
            proptest::prop_assert_eq!(decode(&encode(&name)), Some(name));
        });
    }
}
