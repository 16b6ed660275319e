//! Extended LIST (RFC 5258) with SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819): the
//! command forms imap-codec cannot parse yet.
//!
//! [`parse`] reads one complete command line. A plain `LIST reference pattern` is left to
//! the codec (it returns `None`); a LIST with selection options, a list of patterns or
//! return options becomes an [`ExtendedList`]. Mailbox names here are atoms or quoted
//! strings; a literal is left to the codec, which refuses the extended forms with BAD.

/// A LIST command with RFC 5258's extensions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedList {
    /// The command's tag.
    pub tag: String,
    /// The reference name.
    pub reference: String,
    /// The patterns (at least one).
    pub patterns: Vec<String>,
    /// Selection `SUBSCRIBED`: only subscribed mailboxes.
    pub subscribed: bool,
    /// Selection `RECURSIVEMATCH`: also parents of selected mailboxes, with CHILDINFO.
    pub recursive_match: bool,
    /// Selection `SPECIAL-USE`: only mailboxes with a special use.
    pub special_use: bool,
    /// Return `SUBSCRIBED`: mark subscribed mailboxes `\Subscribed`.
    pub return_subscribed: bool,
    /// Return `STATUS (...)`: the status items to send after each mailbox, upper case.
    pub status: Option<Vec<String>>,
}

/// Status items a `RETURN (STATUS (...))` may ask for.
const STATUS_ITEMS: [&str; 7] = [
    "MESSAGES",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "DELETED",
    "HIGHESTMODSEQ",
    "RECENT",
];

/// The extended LIST on `line` (one command, with its CRLF); `None` when it is not one
/// (another command, a plain LIST, or one with a literal: the codec's to answer).
pub fn parse(line: &[u8]) -> Option<Result<ExtendedList, String>> {
    let line = std::str::from_utf8(line).ok()?;
    let line = line.strip_suffix("\r\n").or(line.strip_suffix('\n'))?;
    let mut cursor = Cursor(line);
    let tag = cursor.atom()?;
    cursor.space()?;
    if !cursor.word("LIST") {
        return None;
    }
    let mut list = ExtendedList {
        tag: tag.to_string(),
        ..ExtendedList::default()
    };
    let selection = cursor.peek() == Some('(');
    if selection {
        for option in cursor.parenthesized()? {
            match option.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => list.subscribed = true,
                "RECURSIVEMATCH" => list.recursive_match = true,
                "SPECIAL-USE" => list.special_use = true,
                "REMOTE" => {}
                other => return Some(Err(format!("unknown LIST selection option {other}"))),
            }
        }
        cursor.space()?;
    }
    list.reference = cursor.string()?;
    cursor.space()?;
    let several = cursor.peek() == Some('(');
    list.patterns = match several {
        true => cursor.parenthesized()?,
        false => vec![cursor.string()?],
    };
    let returns = cursor.rest_starts_with(" RETURN ");
    if !(selection || several || returns) {
        return None;
    }
    if returns {
        cursor.advance(" RETURN ".len());
        if let Err(e) = return_options(&mut cursor, &mut list) {
            return Some(Err(e));
        }
    }
    if !cursor.0.is_empty() {
        return Some(Err(format!("unexpected {:?} after the LIST", cursor.0)));
    }
    if list.recursive_match && !list.subscribed {
        return Some(Err("RECURSIVEMATCH needs another selection option".into()));
    }
    if list.patterns.is_empty() {
        return Some(Err("a LIST needs at least one pattern".into()));
    }
    Some(Ok(list))
}

/// Reads `( option ... )` after RETURN into `list`.
fn return_options(cursor: &mut Cursor<'_>, list: &mut ExtendedList) -> Result<(), String> {
    let bad = || "RETURN takes a parenthesized list of options".to_string();
    cursor.open().ok_or_else(bad)?;
    loop {
        if cursor.close() {
            return Ok(());
        }
        let option = cursor.atom().ok_or_else(bad)?.to_ascii_uppercase();
        match option.as_str() {
            "SUBSCRIBED" => list.return_subscribed = true,
            "CHILDREN" | "SPECIAL-USE" => {}
            "STATUS" => {
                cursor.space().ok_or_else(bad)?;
                let items = cursor.parenthesized().ok_or_else(bad)?;
                let items: Vec<String> = items.iter().map(|i| i.to_ascii_uppercase()).collect();
                if let Some(unknown) = items.iter().find(|i| !STATUS_ITEMS.contains(&i.as_str())) {
                    return Err(format!("unknown STATUS item {unknown}"));
                }
                list.status = Some(items);
            }
            other => return Err(format!("unknown LIST return option {other}")),
        }
        cursor.space();
    }
}

/// What is left of the line.
struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.0.chars().next()
    }

    fn advance(&mut self, n: usize) {
        self.0 = &self.0[n..];
    }

    fn rest_starts_with(&self, prefix: &str) -> bool {
        self.0.len() >= prefix.len() && self.0[..prefix.len()].eq_ignore_ascii_case(prefix)
    }

    /// One space.
    fn space(&mut self) -> Option<()> {
        self.0 = self.0.strip_prefix(' ')?;
        Some(())
    }

    fn open(&mut self) -> Option<()> {
        self.0 = self.0.strip_prefix('(')?;
        Some(())
    }

    /// Consumes `)` if it is next.
    fn close(&mut self) -> bool {
        match self.0.strip_prefix(')') {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// `word` (any case) and the space after it.
    fn word(&mut self, word: &str) -> bool {
        let with_space = format!("{word} ");
        if !self.rest_starts_with(&with_space) {
            return false;
        }
        self.advance(with_space.len());
        true
    }

    /// An atom, or a list-mailbox token (which may hold `%`, `*` and `]`).
    fn atom(&mut self) -> Option<&'a str> {
        let end = self
            .0
            .find(|c: char| matches!(c, ' ' | '(' | ')' | '{' | '"' | '\\') || c.is_control())
            .unwrap_or(self.0.len());
        (end > 0).then(|| {
            let atom = &self.0[..end];
            self.advance(end);
            atom
        })
    }

    /// A quoted string (its escapes undone) or an atom; `None` for a literal.
    fn string(&mut self) -> Option<String> {
        let Some(body) = self.0.strip_prefix('"') else {
            return self.atom().map(str::to_string);
        };
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.0 = &body[i + 1..];
                    return Some(out);
                }
                '\\' => out.push(chars.next()?.1),
                c => out.push(c),
            }
        }
        None
    }

    /// `( item ... )` of atoms or strings.
    fn parenthesized(&mut self) -> Option<Vec<String>> {
        self.open()?;
        let mut items = Vec::new();
        while !self.close() {
            if !items.is_empty() {
                self.space()?;
            }
            items.push(self.string()?);
        }
        Some(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> ExtendedList {
        parse(format!("{line}\r\n").as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn plain_lists_and_other_commands_are_left_to_the_codec() {
        for line in [
            "a LIST \"\" \"*\"",
            "a LIST \"\" %",
            "a list INBOX \"\"",
            "a LSUB \"\" *",
            "a SELECT INBOX",
            "a LIST {3}",
        ] {
            assert_eq!(parse(format!("{line}\r\n").as_bytes()), None, "{line}");
        }
    }

    #[test]
    fn selection_patterns_and_return_options_are_read() {
        let list = parsed("a LIST (SPECIAL-USE) \"\" \"*\"");
        assert!(list.special_use && list.patterns == ["*"] && list.tag == "a");
        let list = parsed("b list (subscribed recursivematch) \"\" (\"INBOX\" \"Arch %\" %)");
        assert!(list.subscribed && list.recursive_match);
        assert_eq!(list.patterns, ["INBOX", "Arch %", "%"]);
        let list =
            parsed("c LIST \"\" \"*\" RETURN (CHILDREN SUBSCRIBED STATUS (messages UNSEEN))");
        assert!(list.return_subscribed);
        assert_eq!(list.status.unwrap(), ["MESSAGES", "UNSEEN"]);
        let list = parsed("d LIST \"a\\\"b\" x RETURN ()");
        assert_eq!((list.reference.as_str(), list.status), ("a\"b", None));
    }

    #[test]
    fn malformed_extended_lists_are_errors() {
        for line in [
            "a LIST (RECURSIVEMATCH) \"\" *",
            "a LIST (BOGUS) \"\" *",
            "a LIST \"\" * RETURN (STATUS (SIZE-ISH))",
            "a LIST \"\" * RETURN (BOGUS)",
            "a LIST \"\" * RETURN (CHILDREN",
            "a LIST \"\" () ",
        ] {
            let result = parse(format!("{line}\r\n").as_bytes());
            assert!(matches!(result, Some(Err(_)) | None), "{line}: {result:?}");
            assert!(!matches!(result, Some(Ok(_))), "{line}");
        }
        assert!(matches!(
            parse(b"a LIST (RECURSIVEMATCH) \"\" *\r\n"),
            Some(Err(_))
        ));
    }
}
