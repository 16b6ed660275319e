//! Writing `207 Multi-Status` bodies and `DAV:error` bodies as text.
//!
//! The namespaces the services use get short prefixes declared once on the root; any
//! other namespace (a client's dead property) is declared on the element itself.

use http::StatusCode;

use crate::xml::{APPLE, CALDAV, CALSERVER, CARDDAV, DAV, Name, escape, escape_into};

const PREFIXES: &[(&str, &str)] = &[
    (DAV, "d"),
    (CARDDAV, "card"),
    (CALDAV, "cal"),
    (CALSERVER, "cs"),
    (APPLE, "ical"),
];

/// The opening of a multistatus body, with every known namespace declared.
pub fn open() -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus");
    for (ns, p) in PREFIXES {
        out.push_str(&format!(" xmlns:{p}=\"{ns}\""));
    }
    out.push('>');
    out
}

/// The end of a multistatus body, with a `sync-token` when given.
pub fn close(sync_token: Option<&str>) -> String {
    match sync_token {
        Some(t) => format!(
            "<d:sync-token>{}</d:sync-token></d:multistatus>\n",
            escape(t)
        ),
        None => "</d:multistatus>\n".into(),
    }
}

/// The opening and closing tags of an element called `name`.
pub fn tags(name: &Name) -> (String, String) {
    let local = &name.local;
    match PREFIXES.iter().find(|(ns, _)| *ns == name.ns) {
        Some((_, p)) => (format!("<{p}:{local}>"), format!("</{p}:{local}>")),
        None if name.ns.is_empty() => (format!("<{local} xmlns=\"\">"), format!("</{local}>")),
        None => (
            format!("<x:{local} xmlns:x=\"{}\">", escape(&name.ns)),
            format!("</x:{local}>"),
        ),
    }
}

/// An element with inner XML (empty elements are written `<a></a>`).
pub fn element(name: &Name, inner: &str) -> String {
    let (open, close) = tags(name);
    format!("{open}{inner}{close}")
}

/// The status line inside a multistatus.
pub fn status_line(status: StatusCode) -> String {
    format!(
        "<d:status>HTTP/1.1 {} {}</d:status>",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

/// Properties of one resource, grouped by status.
#[derive(Default, Debug)]
pub struct PropStat {
    /// Found properties and their inner XML.
    pub found: Vec<(Name, String)>,
    /// Properties with another status (404 for unknown ones).
    pub other: Vec<(Name, StatusCode)>,
}

impl PropStat {
    /// The `<response>` of one resource.
    pub fn response(&self, href: &str) -> String {
        let mut out = String::from("<d:response><d:href>");
        escape_into(&mut out, href);
        out.push_str("</d:href>");
        if !self.found.is_empty() {
            out.push_str("<d:propstat><d:prop>");
            for (name, inner) in &self.found {
                out.push_str(&element(name, inner));
            }
            out.push_str("</d:prop>");
            out.push_str(&status_line(StatusCode::OK));
            out.push_str("</d:propstat>");
        }
        let mut statuses: Vec<StatusCode> = self.other.iter().map(|(_, s)| *s).collect();
        statuses.sort();
        statuses.dedup();
        for status in statuses {
            out.push_str("<d:propstat><d:prop>");
            for (name, _) in self.other.iter().filter(|(_, s)| *s == status) {
                out.push_str(&element(name, ""));
            }
            out.push_str("</d:prop>");
            out.push_str(&status_line(status));
            out.push_str("</d:propstat>");
        }
        out.push_str("</d:response>");
        out
    }
}

/// A `<response>` carrying only a status (a missing member, a deleted one).
pub fn status_response(href: &str, status: StatusCode) -> String {
    format!(
        "<d:response><d:href>{}</d:href>{}</d:response>",
        escape(href),
        status_line(status)
    )
}

/// A `DAV:error` body naming a failed precondition, with a message for people.
pub fn error_body(condition: &Name, message: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error");
    for (ns, p) in PREFIXES {
        out.push_str(&format!(" xmlns:{p}=\"{ns}\""));
    }
    out.push('>');
    out.push_str(&element(condition, ""));
    if !message.is_empty() {
        out.push_str(&format!(
            "<x:message xmlns:x=\"https://kith.invalid/ns\">{}</x:message>",
            escape(message)
        ));
    }
    out.push_str("</d:error>\n");
    out
}

/// An `<href>` element.
pub fn href(href: &str) -> String {
    format!("<d:href>{}</d:href>", escape(href))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_properties_by_status() {
        let p = PropStat {
            found: vec![(Name::new(DAV, "getetag"), "\"x\"".into())],
            other: vec![(Name::new("urn:y", "z"), StatusCode::NOT_FOUND)],
        };
        let r = p.response("/a");
        assert!(r.contains("<d:getetag>\"x\"</d:getetag>"));
        assert!(r.contains("<x:z xmlns:x=\"urn:y\"></x:z>"));
        assert!(r.contains("HTTP/1.1 404 Not Found"));
    }
}
