//! Content lines (RFC 5545 §3.1, RFC 6350 §3.2), split without losing a byte.
//!
//! A content line is `[group "."] name *(";" param) ":" value`, folded onto several
//! physical lines by inserting a line break followed by one space or tab. [`split`] cuts a
//! file into logical lines whose raw bytes (folds and line ending included) concatenate
//! back to the input exactly; [`Line`] unfolds one of them to read its name and value.

/// Cuts `bytes` into logical lines: each slice ends after its line break (CRLF or LF) and
/// takes the continuation lines (starting with a space or tab) that follow it.
/// Concatenating the slices gives `bytes` back.
pub fn split(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = start;
        loop {
            end = match bytes[end..].iter().position(|&b| b == b'\n') {
                Some(at) => end + at + 1,
                None => bytes.len(),
            };
            if !matches!(bytes.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        lines.push(&bytes[start..end]);
        start = end;
    }
    lines
}

/// Removes the folds and the final line break of one logical line.
pub fn unfold(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let brk = match raw[i..] {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] => 1,
            _ => 0,
        };
        if brk == 0 {
            out.push(raw[i]);
            i += 1;
        } else {
            // A break is either a fold (followed by its one space or tab) or the end.
            i += brk + 1;
        }
    }
    out
}

/// One logical content line: its raw bytes and its unfolded text, split into parts.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    raw: &'a [u8],
    text: Vec<u8>,
    /// Where the name starts (after `group.`) and ends (before `;` or `:`).
    name: (usize, usize),
    /// Where the value starts (after the `:`).
    value: usize,
}

impl<'a> Line<'a> {
    /// Parses one logical line from [`split`]; `None` when it is not a content line.
    pub fn parse(raw: &'a [u8]) -> Option<Line<'a>> {
        let text = unfold(raw);
        let name_end = text.iter().position(|&b| b == b';' || b == b':')?;
        let name_start = text[..name_end]
            .iter()
            .position(|&b| b == b'.')
            .map_or(0, |dot| dot + 1);
        let is_name = |s: &[u8]| {
            !s.is_empty()
                && s.iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !is_name(&text[name_start..name_end])
            || (name_start > 0 && !is_name(&text[..name_start - 1]))
        {
            return None;
        }
        let value = value_start(&text, name_end)?;
        Some(Line {
            raw,
            text,
            name: (name_start, name_end),
            value,
        })
    }

    /// The bytes exactly as they appeared in the file.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The property name in upper case, without its group (`EMAIL` for `item1.email`).
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.text[self.name.0..self.name.1]).to_ascii_uppercase()
    }

    /// The group in upper case (`ITEM1` for `item1.email`), if the line has one.
    pub fn group(&self) -> Option<Vec<u8>> {
        (self.name.0 > 0).then(|| self.text[..self.name.0 - 1].to_ascii_uppercase())
    }

    /// The unfolded value: everything after the `:` that ends the parameters.
    pub fn value(&self) -> &[u8] {
        &self.text[self.value..]
    }

    /// The unfolded parameters and value, from the first `;` or `:` on.
    pub fn after_name(&self) -> &[u8] {
        &self.text[self.name.1..]
    }

    /// The unfolded line with group and name in upper case: what two versions of a line
    /// must share to count as the same property, whatever their folding and line ending.
    pub fn normalized(&self) -> Vec<u8> {
        let mut out = self.text[..self.name.1].to_ascii_uppercase();
        out.extend_from_slice(self.after_name());
        out
    }
}

/// The index just past the `:` that ends the parameters (colons inside quoted parameter
/// values do not count).
fn value_start(text: &[u8], from: usize) -> Option<usize> {
    let mut quoted = false;
    for (i, &b) in text.iter().enumerate().skip(from) {
        match b {
            b'"' => quoted = !quoted,
            b':' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_byte_and_folds_together() {
        let input = b"BEGIN:VCARD\r\nNOTE:a long\r\n  note\r\n\t goes on\r\nFN:x\nEND:VCARD";
        let lines = split(input);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1], b"NOTE:a long\r\n  note\r\n\t goes on\r\n");
        assert_eq!(lines.concat(), input);
        assert_eq!(unfold(lines[1]), b"NOTE:a long note goes on");
    }

    #[test]
    fn line_parts() {
        let line = Line::parse(b"item1.email;TYPE=\"a:b\";pref=1:me@example.org\r\n").unwrap();
        assert_eq!(line.name(), "EMAIL");
        assert_eq!(line.group().as_deref(), Some(&b"ITEM1"[..]));
        assert_eq!(Line::parse(b"FN:x").unwrap().group(), None);
        assert_eq!(line.value(), b"me@example.org");
        assert_eq!(
            line.normalized(),
            b"ITEM1.EMAIL;TYPE=\"a:b\";pref=1:me@example.org"
        );
    }

    #[test]
    fn not_content_lines() {
        for raw in [
            &b"no colon\n"[..],
            b":value\n",
            b"bad name:x\n",
            b".X:y\n",
            b"A;B=\"x:y\n",
        ] {
            assert!(
                Line::parse(raw).is_none(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
