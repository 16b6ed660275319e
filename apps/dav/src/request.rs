//! Typed WebDAV requests: the bodies of PROPFIND, PROPPATCH and MKCOL, and the headers
//! that steer them (`Depth`, `If-Match`, `If-None-Match`, `Authorization`).
//!
//! Everything here is pure parsing of untrusted bytes, so the fuzz targets call it
//! directly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::{Error, Result};
use crate::xml::{self, DAV, Element};

/// What a PROPFIND asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Propfind {
    /// `allprop` (or an empty body): every property that is not expensive.
    All,
    /// `propname`: the names only.
    Names,
    /// `prop`: these properties (elements kept for sub-selections like `address-data`).
    Props(Vec<Element>),
}

impl Propfind {
    /// Parses a PROPFIND body; an empty body means `allprop`.
    pub fn parse(body: &[u8]) -> Result<Propfind> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Propfind::All);
        }
        let root = xml::parse(body)?;
        if !root.is(DAV, "propfind") {
            return Err(Error::BadXml("expected DAV:propfind".into()));
        }
        if root.child(DAV, "propname").is_some() {
            Ok(Propfind::Names)
        } else if let Some(prop) = root.child(DAV, "prop") {
            Ok(Propfind::Props(prop.children.clone()))
        } else if root.child(DAV, "allprop").is_some() {
            Ok(Propfind::All)
        } else {
            Err(Error::BadXml(
                "DAV:propfind needs prop, allprop or propname".into(),
            ))
        }
    }
}

/// One instruction of a PROPPATCH, in document order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Set a property to the element's content.
    Set(Element),
    /// Remove a property.
    Remove(Element),
}

/// Parses a PROPPATCH body (`propertyupdate`) into its updates in order.
pub fn proppatch(body: &[u8]) -> Result<Vec<Update>> {
    let root = xml::parse(body)?;
    if !root.is(DAV, "propertyupdate") {
        return Err(Error::BadXml("expected DAV:propertyupdate".into()));
    }
    let mut out = Vec::new();
    for op in &root.children {
        let set = if op.is(DAV, "set") {
            true
        } else if op.is(DAV, "remove") {
            false
        } else {
            continue;
        };
        for prop in op.children_named(DAV, "prop") {
            for p in &prop.children {
                out.push(if set {
                    Update::Set(p.clone())
                } else {
                    Update::Remove(p.clone())
                });
            }
        }
    }
    Ok(out)
}

/// Parses an extended MKCOL body (RFC 5689) or a MKCALENDAR body (RFC 4791 §5.3.1) into
/// the properties to set; an empty body sets none.
pub fn mkcol(body: &[u8]) -> Result<Vec<Element>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let root = xml::parse(body)?;
    if !root.is(DAV, "mkcol") && !root.is(xml::CALDAV, "mkcalendar") {
        return Err(Error::BadXml(
            "expected DAV:mkcol or CALDAV:mkcalendar".into(),
        ));
    }
    Ok(root
        .children_named(DAV, "set")
        .flat_map(|s| s.children_named(DAV, "prop"))
        .flat_map(|p| p.children.iter().cloned())
        .collect())
}

/// The `Depth` header: `0`, `1`, or `infinity` (served as 1); `default` when absent.
pub fn depth(header: Option<&str>, default: u8) -> Option<u8> {
    match header.map(str::trim) {
        None => Some(default),
        Some("0") => Some(0),
        Some("1") | Some("infinity") => Some(1),
        Some(_) => None,
    }
}

/// An `If-Match` or `If-None-Match` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `*`: any current representation.
    Any,
    /// A list of entity tags, quotes included (weak ones keep their `W/`).
    Tags(Vec<String>),
}

impl Condition {
    /// Parses the header's value.
    pub fn parse(value: &str) -> Condition {
        if value.trim() == "*" {
            return Condition::Any;
        }
        let mut tags = Vec::new();
        let mut rest = value.trim();
        while !rest.is_empty() {
            let weak = rest.starts_with("W/");
            let body = rest.trim_start_matches("W/");
            let Some(inner) = body.strip_prefix('"') else {
                break;
            };
            let Some(end) = inner.find('"') else { break };
            let tag = format!("{}\"{}\"", if weak { "W/" } else { "" }, &inner[..end]);
            tags.push(tag);
            rest = inner[end + 1..].trim_start_matches([',', ' ', '\t']);
        }
        Condition::Tags(tags)
    }

    /// Whether the current ETag (`None`: no resource) matches (strong comparison).
    pub fn matches(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (_, None) => false,
            (Condition::Any, Some(_)) => true,
            (Condition::Tags(tags), Some(etag)) => tags.iter().any(|t| t == etag),
        }
    }
}

/// Decodes `Authorization: Basic ...` into user and password.
pub fn basic_auth(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASE64.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_and_headers() {
        let c = Condition::parse("\"a\", W/\"b\" ,\"c\"");
        assert_eq!(
            c,
            Condition::Tags(vec!["\"a\"".into(), "W/\"b\"".into(), "\"c\"".into()])
        );
        assert!(c.matches(Some("\"c\"")));
        assert!(!c.matches(Some("\"b\"")));
        assert!(Condition::parse("*").matches(Some("\"x\"")));
        assert!(!Condition::Any.matches(None));
        assert_eq!(depth(Some("2"), 0), None);
        assert_eq!(
            basic_auth("Basic YWRhOnNlY3JldA=="),
            Some(("ada".into(), "secret".into()))
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(Propfind::parse(b"").unwrap(), Propfind::All);
        let p = br#"<propfind xmlns="DAV:"><propname/></propfind>"#;
        assert_eq!(Propfind::parse(p).unwrap(), Propfind::Names);
        let u = br#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname></D:prop></D:set><D:remove><D:prop><Z:a xmlns:Z="urn:z"/></D:prop></D:remove></D:propertyupdate>"#;
        let ups = proppatch(u).unwrap();
        assert!(matches!(&ups[0], Update::Set(e) if e.text == "x"));
        assert!(matches!(&ups[1], Update::Remove(e) if e.is("urn:z", "a")));
    }
}
