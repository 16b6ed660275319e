//! WebDAV request bodies as a small element tree, and the escaping used to write replies.
//!
//! Bodies are small (PROPFIND, PROPPATCH, REPORT, MKCOL), so they are read whole into an
//! [`Element`] tree with namespaces resolved; the tree is bounded in depth and size so a
//! hostile body cannot exhaust memory or stack. Replies are written as text directly (see
//! [`crate::multistatus`]).

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::error::{Error, Result};

/// The WebDAV namespace (RFC 4918).
pub const DAV: &str = "DAV:";
/// The CardDAV namespace (RFC 6352).
pub const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
/// The CalDAV namespace (RFC 4791).
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
/// Calendar Server's namespace (`getctag`).
pub const CALSERVER: &str = "http://calendarserver.org/ns/";
/// Apple's iCal namespace (`calendar-color`).
pub const APPLE: &str = "http://apple.com/ns/ical/";

/// How deep a request body may nest.
pub const MAX_DEPTH: usize = 64;
/// How many elements a request body may hold.
pub const MAX_ELEMENTS: usize = 100_000;

/// A namespaced XML name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    /// The namespace URI (empty for none).
    pub ns: String,
    /// The local name.
    pub local: String,
}

impl Name {
    /// A name in a namespace.
    pub fn new(ns: &str, local: &str) -> Name {
        Name {
            ns: ns.into(),
            local: local.into(),
        }
    }

    /// Whether this is `local` in namespace `ns`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }
}

/// One element of a request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// Its name.
    pub name: Name,
    /// Its attributes without namespace declarations, by unprefixed name.
    pub attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Its text content (concatenated, entity references resolved).
    pub text: String,
}

impl Element {
    /// Whether the element is `local` in namespace `ns`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.name.is(ns, local)
    }

    /// The first child called `local` in `ns`.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    /// Every child called `local` in `ns`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, local))
    }

    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The element's children and text written back as XML (for dead properties).
    pub fn inner_xml(&self) -> String {
        let mut out = escape(&self.text);
        for c in &self.children {
            c.write(&mut out);
        }
        out
    }

    fn write(&self, out: &mut String) {
        let tag = if self.name.ns.is_empty() {
            self.name.local.clone()
        } else {
            format!("x:{}", self.name.local)
        };
        out.push('<');
        out.push_str(&tag);
        if !self.name.ns.is_empty() {
            out.push_str(&format!(" xmlns:x=\"{}\"", escape(&self.name.ns)));
        }
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {}=\"{}\"", k, escape(v)));
        }
        out.push('>');
        out.push_str(&self.inner_xml());
        out.push_str(&format!("</{tag}>"));
    }
}

/// Parses a request body into its root element.
pub fn parse(body: &[u8]) -> Result<Element> {
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8"))?;
    let mut reader = NsReader::from_str(text);
    let mut open: Vec<Element> = Vec::new();
    let mut count = 0usize;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| bad(&e.to_string()))?;
        match event {
            Event::Start(e) => {
                admit(&open, &mut count)?;
                open.push(start(&ns, &e)?);
            }
            Event::Empty(e) => {
                admit(&open, &mut count)?;
                if let Some(root) = close(&mut open, start(&ns, &e)?) {
                    return finish(&mut reader, root);
                }
            }
            Event::End(_) => {
                let element = open.pop().ok_or_else(|| bad("unbalanced end tag"))?;
                if let Some(root) = close(&mut open, element) {
                    return finish(&mut reader, root);
                }
            }
            Event::Text(t) => push_text(&mut open, &t.decode().map_err(|e| bad(&e.to_string()))?),
            Event::CData(t) => push_text(&mut open, &String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => push_text(&mut open, &entity(&r)?),
            Event::Eof => return Err(bad("the body ends before its root element does")),
            Event::DocType(_) => return Err(bad("DOCTYPE is not allowed")),
            _ => {}
        }
    }
}

/// Counts one more element; refuses bodies past [`MAX_DEPTH`] or [`MAX_ELEMENTS`].
fn admit(open: &[Element], count: &mut usize) -> Result<()> {
    *count += 1;
    if open.len() >= MAX_DEPTH {
        return Err(bad("the body nests too deep"));
    }
    if *count > MAX_ELEMENTS {
        return Err(bad("the body has too many elements"));
    }
    Ok(())
}

fn start(ns: &ResolveResult<'_>, e: &quick_xml::events::BytesStart<'_>) -> Result<Element> {
    let ns = match ns {
        ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
        ResolveResult::Unbound => String::new(),
        ResolveResult::Unknown(p) => {
            return Err(bad(&format!(
                "undeclared namespace prefix `{}`",
                String::from_utf8_lossy(p)
            )));
        }
    };
    let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| bad(&e.to_string()))?;
        let key = a.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let value = a.unescape_value().map_err(|e| bad(&e.to_string()))?;
        attrs.push((
            String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(Element {
        name: Name { ns, local },
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Attaches a finished element to its parent; returns it when it is the root.
fn close(open: &mut [Element], element: Element) -> Option<Element> {
    match open.last_mut() {
        Some(parent) => {
            parent.children.push(element);
            None
        }
        None => Some(element),
    }
}

fn finish(reader: &mut NsReader<&[u8]>, root: Element) -> Result<Element> {
    loop {
        match reader.read_event().map_err(|e| bad(&e.to_string()))? {
            Event::Eof => return Ok(root),
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
            Event::Comment(_) | Event::PI(_) => {}
            _ => return Err(bad("content after the root element")),
        }
    }
}

fn push_text(open: &mut [Element], text: &str) {
    if let Some(e) = open.last_mut() {
        e.text.push_str(text);
    }
}

fn entity(r: &quick_xml::events::BytesRef<'_>) -> Result<String> {
    if let Some(c) = r.resolve_char_ref().map_err(|e| bad(&e.to_string()))? {
        return Ok(c.to_string());
    }
    let name = r.decode().map_err(|e| bad(&e.to_string()))?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_string)
        .ok_or_else(|| bad(&format!("unknown entity `&{name};`")))
}

fn bad(reason: &str) -> Error {
    Error::BadXml(reason.to_string())
}

/// Escapes text for an XML element or attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Appends `text` to `out` escaped as [`escape`] does, copying the runs between
/// special characters whole.
pub fn escape_into(out: &mut String, text: &str) {
    let mut copied = 0;
    for (i, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            b'\r' => "&#13;",
            _ => continue,
        };
        out.push_str(&text[copied..i]);
        out.push_str(entity);
        copied = i + 1;
    }
    out.push_str(&text[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_carriage_returns_keeping_other_text() {
        assert_eq!(escape("plain é"), "plain é");
        assert_eq!(
            escape("<a href=\"x\">b & c</a>\r\nü"),
            "&lt;a href=&quot;x&quot;&gt;b &amp; c&lt;/a&gt;&#13;\nü"
        );
    }

    #[test]
    fn parses_namespaces_text_and_empty_elements() {
        let body = br#"<?xml version="1.0"?>
            <D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
              <D:prop><D:getetag/><C:address-data>a &amp; b</C:address-data></D:prop>
            </D:propfind>"#;
        let root = parse(body).unwrap();
        assert!(root.is(DAV, "propfind"));
        let prop = root.child(DAV, "prop").unwrap();
        assert_eq!(prop.children.len(), 2);
        assert!(prop.children[0].is(DAV, "getetag"));
        assert_eq!(prop.children[1].text, "a & b");
    }

    #[test]
    fn refuses_broken_and_hostile_bodies() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<x:a/>").is_err());
        assert!(parse(b"<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>").is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
        assert!(parse(b"<a/><b/>").is_err());
    }
}
