//! A stored message seen through MIME: its part tree with byte ranges, and the IMAP
//! views of it, ENVELOPE, BODYSTRUCTURE and `BODY[section]` (RFC 9051, sections 6.4.5
//! and 7.5.2).
//!
//! `mail-parser` finds the parts; every section is then a slice of the stored bytes,
//! never a re-encoding, so a client gets back exactly what was delivered. An embedded
//! `message/rfc822` is parsed again from its own bytes, so its offsets are plain ranges
//! of the outer message.

use std::num::NonZeroU32;
use std::ops::Range;

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::body::{Language, Location, MultiPartExtensionData};
use imap_codec::imap_types::core::{AString, IString, NString, Vec1};
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::fetch::Section;
use mail_parser::{HeaderName, HeaderValue, MessageParser, PartType};

/// How deep embedded messages and multiparts are followed.
const MAX_DEPTH: usize = 16;

/// One MIME part: where its header and body are, and what its header says.
#[derive(Clone, Debug)]
pub struct Node {
    /// The part's header, blank line included.
    pub header: Range<usize>,
    /// The part's body.
    pub body: Range<usize>,
    /// Content type, lower case (`text`, `plain`) and its parameters.
    pub mime: (String, String, Vec<(String, String)>),
    /// Content-ID, Content-Description, Content-Transfer-Encoding, Content-Language,
    /// Content-Location, Content-MD5 (raw values).
    fields: Fields,
    /// Content-Disposition and its parameters.
    disposition: Option<(String, Vec<(String, String)>)>,
    /// What the body holds.
    pub kind: Kind,
}

#[derive(Clone, Debug, Default)]
struct Fields {
    id: Option<String>,
    description: Option<String>,
    encoding: Option<String>,
    language: Option<String>,
    location: Option<String>,
    md5: Option<String>,
}

/// The body of a part.
#[derive(Clone, Debug)]
pub enum Kind {
    /// A leaf.
    Leaf,
    /// A multipart's children.
    Multi(Vec<Node>),
    /// An embedded message (`message/rfc822`) and its envelope.
    Message(Box<Node>, Box<Envelope<'static>>),
}

/// A parsed message.
pub struct Parsed<'a> {
    /// The stored bytes.
    pub raw: &'a [u8],
    /// The root part.
    pub root: Node,
    /// Its envelope.
    pub envelope: Envelope<'static>,
}

impl<'a> Parsed<'a> {
    /// Parses `raw`; a message mail-parser cannot read is one text part.
    pub fn new(raw: &'a [u8]) -> Parsed<'a> {
        let (root, envelope) = parse_at(raw, 0, 0);
        Parsed {
            raw,
            root,
            envelope,
        }
    }

    /// The BODYSTRUCTURE (`extended`) or BODY of the message.
    pub fn structure(&self, extended: bool) -> BodyStructure<'static> {
        structure(self.raw, &self.root, extended)
    }

    /// The bytes of a `BODY[section]`; `None` when the part does not exist.
    pub fn section(&self, section: Option<&Section<'_>>) -> Option<Vec<u8>> {
        let Some(section) = section else {
            return Some(self.raw.to_vec());
        };
        let slice = |r: &Range<usize>| self.raw[r.clone()].to_vec();
        Some(match section {
            Section::Part(part) => {
                let node = self.part(&part.0)?;
                match &node.kind {
                    Kind::Message(inner, _) => slice(&(inner.header.start..inner.body.end)),
                    _ => slice(&node.body),
                }
            }
            Section::Header(part) => slice(&self.message(part.as_ref())?.header),
            Section::Text(part) => slice(&self.message(part.as_ref())?.body),
            Section::Mime(part) => slice(&self.part(&part.0)?.header),
            Section::HeaderFields(part, names) => {
                let node = self.message(part.as_ref())?;
                header_fields(&self.raw[node.header.clone()], names.as_ref(), true)
            }
            Section::HeaderFieldsNot(part, names) => {
                let node = self.message(part.as_ref())?;
                header_fields(&self.raw[node.header.clone()], names.as_ref(), false)
            }
        })
    }

    /// The message a HEADER or TEXT section names: the root, or an embedded message.
    fn message(&self, part: Option<&imap_codec::imap_types::fetch::Part>) -> Option<&Node> {
        let Some(part) = part else {
            return Some(&self.root);
        };
        match &self.part(&part.0)?.kind {
            Kind::Message(inner, _) => Some(inner),
            _ => None,
        }
    }

    /// The part at a part number (`1.2.3`).
    pub fn part(&self, path: &Vec1<NonZeroU32>) -> Option<&Node> {
        let mut node = &self.root;
        for n in path.as_ref() {
            let index = n.get() as usize - 1;
            if let Kind::Message(inner, _) = &node.kind {
                node = inner;
            }
            node = match &node.kind {
                Kind::Multi(children) => children.get(index)?,
                _ if index == 0 => node,
                _ => return None,
            };
        }
        Some(node)
    }
}

/// Whether a section is of the message's own header or text, which needs no MIME parse.
pub fn is_top_level(section: &Section<'_>) -> bool {
    matches!(
        section,
        Section::Header(None)
            | Section::Text(None)
            | Section::HeaderFields(None, _)
            | Section::HeaderFieldsNot(None, _)
    )
}

/// A top-level section cut from `raw` by finding the blank line (fast path of
/// [`Parsed::section`] for clients that fetch headers of whole mailboxes).
pub fn top_level(raw: &[u8], section: &Section<'_>) -> Option<Vec<u8>> {
    let split = header_end(raw);
    Some(match section {
        Section::Header(None) => raw[..split].to_vec(),
        Section::Text(None) => raw[split..].to_vec(),
        Section::HeaderFields(None, names) => header_fields(&raw[..split], names.as_ref(), true),
        Section::HeaderFieldsNot(None, names) => {
            header_fields(&raw[..split], names.as_ref(), false)
        }
        _ => return None,
    })
}

/// The root part and envelope of the message at `raw[offset..]`.
fn parse_at(raw: &[u8], offset: usize, depth: usize) -> (Node, Envelope<'static>) {
    let bytes = &raw[offset..];
    match MessageParser::default().parse(bytes) {
        Some(message) if !message.parts.is_empty() => {
            let envelope = envelope_of(bytes, &message.parts[0]);
            let root = node_of(raw, offset, &message, 0, depth);
            (root, envelope)
        }
        _ => {
            let split = header_end(bytes);
            let node = Node {
                header: offset..offset + split,
                body: offset + split..raw.len(),
                mime: text_plain(),
                fields: Fields::default(),
                disposition: None,
                kind: Kind::Leaf,
            };
            (node, empty_envelope())
        }
    }
}

/// Where the header of `bytes` ends (after its blank line).
pub fn header_end(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(i) = bytes[at..].iter().position(|&b| b == b'\n') {
        let nl = at + i;
        let crlf = nl > 0 && bytes[nl - 1] == b'\r';
        match &bytes[nl + 1..] {
            [b'\n', ..] => return nl + 2,
            [b'\r', b'\n', ..] if crlf => return nl + 3,
            _ => at = nl + 1,
        }
    }
    bytes.len()
}

fn text_plain() -> (String, String, Vec<(String, String)>) {
    (
        "text".into(),
        "plain".into(),
        vec![("charset".into(), "us-ascii".into())],
    )
}

/// The node of part `id` of `message`, whose bytes start at `raw[offset]`.
fn node_of(
    raw: &[u8],
    offset: usize,
    message: &mail_parser::Message<'_>,
    id: usize,
    depth: usize,
) -> Node {
    let part = &message.parts[id];
    let end = (offset + part.offset_end as usize).min(raw.len());
    let body_start = (offset + part.offset_body as usize).min(end);
    let header = (offset + part.offset_header as usize).min(body_start)..body_start;
    let mut node = Node {
        header,
        body: body_start..end,
        mime: mime_of(part),
        fields: fields_of(raw, offset, part),
        disposition: disposition_of(part),
        kind: Kind::Leaf,
    };
    if depth >= MAX_DEPTH {
        return node;
    }
    node.kind = match &part.body {
        PartType::Multipart(children) => Kind::Multi(
            children
                .iter()
                .filter(|&&c| (c as usize) < message.parts.len() && c as usize != id)
                .map(|&c| node_of(raw, offset, message, c as usize, depth + 1))
                .collect(),
        ),
        PartType::Message(_) => {
            let (inner, envelope) = parse_at(&raw[..end], body_start, depth + 1);
            Kind::Message(Box::new(inner), Box::new(envelope))
        }
        _ => Kind::Leaf,
    };
    node
}

fn mime_of(part: &mail_parser::MessagePart<'_>) -> (String, String, Vec<(String, String)>) {
    let Some(ct) = part.headers.iter().find_map(|h| match (&h.name, &h.value) {
        (HeaderName::ContentType, HeaderValue::ContentType(ct)) => Some(ct),
        _ => None,
    }) else {
        return text_plain();
    };
    let subtype = ct.c_subtype.as_deref().unwrap_or("plain");
    let mut params: Vec<(String, String)> = ct
        .attributes
        .iter()
        .flatten()
        .map(|a| (a.name.to_string(), a.value.to_string()))
        .collect();
    // RFC 2045, section 5.2: a text part without a charset is US-ASCII.
    if ct.c_type.eq_ignore_ascii_case("text")
        && !params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("charset"))
    {
        params.insert(0, ("charset".into(), "us-ascii".into()));
    }
    (
        ct.c_type.to_ascii_lowercase(),
        subtype.to_ascii_lowercase(),
        params,
    )
}

fn disposition_of(part: &mail_parser::MessagePart<'_>) -> Option<(String, Vec<(String, String)>)> {
    part.headers.iter().find_map(|h| match (&h.name, &h.value) {
        (HeaderName::ContentDisposition, HeaderValue::ContentType(ct)) => Some((
            ct.c_type.to_string(),
            ct.attributes
                .iter()
                .flatten()
                .map(|a| (a.name.to_string(), a.value.to_string()))
                .collect(),
        )),
        _ => None,
    })
}

fn fields_of(raw: &[u8], offset: usize, part: &mail_parser::MessagePart<'_>) -> Fields {
    let mut fields = Fields::default();
    for h in &part.headers {
        let value = || Some(raw_value(raw, offset, h));
        match &h.name {
            HeaderName::ContentId => fields.id = value(),
            HeaderName::ContentDescription => fields.description = value(),
            HeaderName::ContentTransferEncoding => fields.encoding = value(),
            HeaderName::ContentLanguage => fields.language = value(),
            HeaderName::ContentLocation => fields.location = value(),
            HeaderName::Other(name) if name.eq_ignore_ascii_case("Content-MD5") => {
                fields.md5 = value()
            }
            _ => {}
        }
    }
    fields
}

/// A header's value as written, unfolded and trimmed.
fn raw_value(raw: &[u8], offset: usize, h: &mail_parser::Header<'_>) -> String {
    let start = (offset + h.offset_start as usize).min(raw.len());
    let end = (offset + h.offset_end as usize).clamp(start, raw.len());
    let text = String::from_utf8_lossy(&raw[start..end]);
    text.replace(['\r', '\n'], "").trim().to_string()
}

fn envelope_of(raw: &[u8], root: &mail_parser::MessagePart<'_>) -> Envelope<'static> {
    let text = |name: HeaderName<'_>| {
        root.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| raw_value(raw, 0, h))
    };
    let addresses = |name: HeaderName<'_>| {
        root.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| addresses_of(&h.value))
            .unwrap_or_default()
    };
    let from = addresses(HeaderName::From);
    let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: nstring(text(HeaderName::Date)),
        subject: nstring(text(HeaderName::Subject)),
        sender: or_from(addresses(HeaderName::Sender)),
        reply_to: or_from(addresses(HeaderName::ReplyTo)),
        from,
        to: addresses(HeaderName::To),
        cc: addresses(HeaderName::Cc),
        bcc: addresses(HeaderName::Bcc),
        in_reply_to: nstring(text(HeaderName::InReplyTo)),
        message_id: nstring(text(HeaderName::MessageId)),
    }
}

fn empty_envelope() -> Envelope<'static> {
    Envelope {
        date: NString(None),
        subject: NString(None),
        from: vec![],
        sender: vec![],
        reply_to: vec![],
        to: vec![],
        cc: vec![],
        bcc: vec![],
        in_reply_to: NString(None),
        message_id: NString(None),
    }
}

/// IMAP addresses of an address header; a group is framed by its start and end markers.
fn addresses_of(value: &HeaderValue<'_>) -> Vec<Address<'static>> {
    let one = |a: &mail_parser::Addr<'_>| {
        let address = a.address.as_deref().unwrap_or("");
        let (mailbox, host) = address.rsplit_once('@').unwrap_or((address, ""));
        Address {
            name: nstring(a.name.as_deref().map(encoded_word)),
            adl: NString(None),
            mailbox: nstring(Some(mailbox.to_string())),
            host: nstring((!host.is_empty()).then(|| host.to_string())),
        }
    };
    match value {
        HeaderValue::Address(mail_parser::Address::List(list)) => list.iter().map(one).collect(),
        HeaderValue::Address(mail_parser::Address::Group(groups)) => groups
            .iter()
            .flat_map(|g| match &g.name {
                Some(name) => {
                    let marker = |mailbox: Option<String>| Address {
                        name: NString(None),
                        adl: NString(None),
                        mailbox: nstring(mailbox),
                        host: NString(None),
                    };
                    let mut out = vec![marker(Some(name.to_string()))];
                    out.extend(g.addresses.iter().map(one));
                    out.push(marker(None));
                    out
                }
                None => g.addresses.iter().map(one).collect(),
            })
            .collect(),
        _ => vec![],
    }
}

/// A display name as IMAP4rev1 clients expect it: ASCII as is, anything else as an
/// RFC 2047 encoded word (mail-parser hands names over decoded).
fn encoded_word(name: &str) -> String {
    if name.is_ascii() {
        return name.to_string();
    }
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b' ' => "_".to_string(),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("={b:02X}"),
        })
        .collect();
    format!("=?utf-8?q?{encoded}?=")
}

/// An IMAP string holding `text` (NUL bytes, which IMAP cannot carry, dropped).
pub fn istring(text: &str) -> IString<'static> {
    IString::try_from(text.replace('\0', "")).expect("a string without NUL is an IMAP string")
}

/// `NIL` or a string.
pub fn nstring(text: Option<String>) -> NString<'static> {
    NString(text.map(|t| istring(&t)))
}

fn structure(raw: &[u8], node: &Node, extended: bool) -> BodyStructure<'static> {
    let params = |list: &[(String, String)]| {
        list.iter()
            .map(|(k, v)| (istring(&k.to_ascii_uppercase()), istring(v)))
            .collect::<Vec<_>>()
    };
    let disposition = || {
        Some(Disposition {
            disposition: node
                .disposition
                .as_ref()
                .map(|(d, p)| (istring(&d.to_ascii_uppercase()), params(p))),
            tail: Some(Language {
                language: node.fields.language.iter().map(|l| istring(l)).collect(),
                tail: Some(Location {
                    location: nstring(node.fields.location.clone()),
                    extensions: vec![],
                }),
            }),
        })
    };
    if let Kind::Multi(children) = &node.kind
        && let Ok(bodies) = Vec1::try_from(
            children
                .iter()
                .map(|c| structure(raw, c, extended))
                .collect::<Vec<_>>(),
        )
    {
        return BodyStructure::Multi {
            bodies,
            subtype: istring(&node.mime.1.to_ascii_uppercase()),
            extension_data: extended.then(|| MultiPartExtensionData {
                parameter_list: params(&node.mime.2),
                tail: disposition(),
            }),
        };
    }
    let body_bytes = &raw[node.body.clone()];
    let lines = body_bytes.iter().filter(|&&b| b == b'\n').count() as u32;
    let specific = match (&node.kind, node.mime.0.as_str()) {
        (Kind::Message(inner, envelope), _) => SpecificFields::Message {
            envelope: envelope.clone(),
            body_structure: Box::new(structure(raw, inner, extended)),
            number_of_lines: lines,
        },
        (_, "text") => SpecificFields::Text {
            subtype: istring(&node.mime.1.to_ascii_uppercase()),
            number_of_lines: lines,
        },
        _ => SpecificFields::Basic {
            r#type: istring(&node.mime.0.to_ascii_uppercase()),
            subtype: istring(&node.mime.1.to_ascii_uppercase()),
        },
    };
    let encoding = node.fields.encoding.as_deref().unwrap_or("7BIT");
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: params(&node.mime.2),
                id: nstring(node.fields.id.clone()),
                description: nstring(node.fields.description.clone()),
                content_transfer_encoding: istring(&encoding.to_ascii_uppercase()),
                size: body_bytes.len() as u32,
            },
            specific,
        },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: nstring(node.fields.md5.clone()),
            tail: disposition(),
        }),
    }
}

/// The header lines of `header` whose names are (`keep`) or are not in `names`, with
/// the closing blank line.
pub fn header_fields(header: &[u8], names: &[AString<'_>], keep: bool) -> Vec<u8> {
    let wanted: Vec<Vec<u8>> = names
        .iter()
        .map(|n| AsRef::<[u8]>::as_ref(n).to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    let mut take = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line.split(|&b| b == b':').next().unwrap_or(b"");
            take = wanted.contains(&name.trim_ascii().to_ascii_lowercase()) == keep;
        }
        if take {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::fetch::Part;

    const MIXED: &[u8] = b"From: Ada <ada@example.org>\r\nTo: me@alice.home.arpa\r\n\
Subject: two parts\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n\
--b--\r\n";

    fn part(numbers: &[u32]) -> Part {
        Part(
            Vec1::try_from(
                numbers
                    .iter()
                    .map(|&n| NonZeroU32::new(n).unwrap())
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn sections_are_slices_of_the_stored_bytes() {
        let p = Parsed::new(MIXED);
        let get = |s: Section<'_>| String::from_utf8(p.section(Some(&s)).unwrap()).unwrap();
        assert_eq!(get(Section::Part(part(&[1]))), "hello");
        assert!(get(Section::Header(None)).starts_with("From: Ada"));
        assert!(get(Section::Header(None)).ends_with("\r\n\r\n"));
        assert_eq!(
            get(Section::Header(Some(part(&[2])))),
            "Subject: inner\r\n\r\n"
        );
        assert!(get(Section::Text(Some(part(&[2])))).starts_with("inner body"));
        assert_eq!(
            get(Section::Mime(part(&[1]))),
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        let names = Vec1::try_from(vec![AString::try_from("subject").unwrap()]).unwrap();
        assert_eq!(
            get(Section::HeaderFields(None, names)),
            "Subject: two parts\r\n\r\n"
        );
        assert!(p.section(Some(&Section::Part(part(&[3])))).is_none());
        for s in [Section::Header(None), Section::Text(None)] {
            assert_eq!(top_level(MIXED, &s), p.section(Some(&s)), "{s:?}");
        }
    }

    #[test]
    fn the_header_ends_at_the_first_blank_line() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody\r\n\r\n"), 8);
        assert_eq!(header_end(b"A: b\n\nbody"), 6);
        assert_eq!(header_end(b"A: b\n\r\nC: d\r\n\r\n"), 15);
        assert_eq!(header_end(b"no blank line\r\n"), 15);
        assert_eq!(header_end(b""), 0);
    }

    #[test]
    fn envelope_and_structure() {
        let p = Parsed::new(MIXED);
        assert_eq!(p.envelope.from.len(), 1);
        assert_eq!(p.envelope.sender, p.envelope.from);
        let BodyStructure::Multi { bodies, .. } = p.structure(true) else {
            panic!("multipart expected");
        };
        assert_eq!(bodies.as_ref().len(), 2);
    }
}
