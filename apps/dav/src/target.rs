//! What a request URL names, and the hrefs and store paths of each resource.
//!
//! URL paths and store paths are the same tree: `/<prefix>/<user>/<collection>/<item>`
//! (for CardDAV `/contacts/ada/default/<uid>.vcf`); principals are `/principals/<user>/`.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Characters percent-encoded in an href segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'&');

/// The resource a URL path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/`.
    Root,
    /// `/principals/`.
    Principals,
    /// `/principals/<user>/`.
    Principal(String),
    /// `/<prefix>/`: the folder of all homes of kind `prefix`.
    KindRoot(String),
    /// `/<prefix>/<user>/`: a user's home of one kind.
    Home(String, String),
    /// `/<prefix>/<user>/<collection>/`.
    Collection(String, String, String),
    /// `/<prefix>/<user>/<collection>/<item>`.
    Item(String, String, String, String),
    /// `/.well-known/<service>`.
    WellKnown(String),
    /// Anything deeper or malformed.
    Unknown,
}

impl Target {
    /// Parses a request path (percent-encoded, query removed).
    pub fn parse(path: &str) -> Target {
        let Some(segments) = decode_segments(path) else {
            return Target::Unknown;
        };
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let own = |v: &str| v.to_string();
        match s.as_slice() {
            [] => Target::Root,
            [".well-known", service] => Target::WellKnown(own(service)),
            ["principals"] => Target::Principals,
            ["principals", user] => Target::Principal(own(user)),
            [kind] => Target::KindRoot(own(kind)),
            [kind, user] => Target::Home(own(kind), own(user)),
            [kind, user, coll] => Target::Collection(own(kind), own(user), own(coll)),
            [kind, user, coll, item] => Target::Item(own(kind), own(user), own(coll), own(item)),
            _ => Target::Unknown,
        }
    }

    /// The user whose data this is, if it belongs to one.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Target::Principal(u)
            | Target::Home(_, u)
            | Target::Collection(_, u, _)
            | Target::Item(_, u, _, _) => Some(u),
            _ => None,
        }
    }

    /// The kind prefix it lies under, if any.
    pub fn prefix(&self) -> Option<&str> {
        match self {
            Target::KindRoot(k)
            | Target::Home(k, _)
            | Target::Collection(k, _, _)
            | Target::Item(k, _, _, _) => Some(k),
            _ => None,
        }
    }

    /// Its href (percent-encoded; collections end in `/`).
    pub fn href(&self) -> String {
        match self {
            Target::Root | Target::Unknown => "/".into(),
            Target::Principals => "/principals/".into(),
            Target::Principal(u) => format!("/principals/{}/", enc(u)),
            Target::KindRoot(k) => format!("/{}/", enc(k)),
            Target::Home(k, u) => format!("/{}/{}/", enc(k), enc(u)),
            Target::Collection(k, u, c) => format!("/{}/{}/{}/", enc(k), enc(u), enc(c)),
            Target::Item(k, u, c, i) => format!("/{}/{}/{}/{}", enc(k), enc(u), enc(c), enc(i)),
            Target::WellKnown(s) => format!("/.well-known/{}", enc(s)),
        }
    }

    /// Its path in the store (no trailing `/`).
    pub fn store_path(&self) -> String {
        match self {
            Target::KindRoot(k) => format!("/{k}"),
            Target::Home(k, u) => format!("/{k}/{u}"),
            Target::Collection(k, u, c) => format!("/{k}/{u}/{c}"),
            Target::Item(k, u, c, i) => format!("/{k}/{u}/{c}/{i}"),
            _ => "/".into(),
        }
    }

    /// Whether it names a collection (its href ends in `/`).
    pub fn is_collection(&self) -> bool {
        !matches!(self, Target::Item(..) | Target::WellKnown(_))
    }
}

/// Percent-encodes one path segment.
pub fn enc(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Splits and decodes a path; `None` when a segment is not valid UTF-8 or is a name the
/// store refuses (`.`, `..`, empty inside the path is skipped).
fn decode_segments(path: &str) -> Option<Vec<String>> {
    let path = path.split('?').next().unwrap_or("");
    let path = path
        .strip_prefix("https://")
        .or_else(|| path.strip_prefix("http://"))
        .map_or(path, |rest| rest.find('/').map_or("/", |i| &rest[i..]));
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let name = percent_decode_str(s).decode_utf8().ok()?.into_owned();
            kith_store::validate_name(&name).ok()?;
            Some(name)
        })
        .collect()
}

/// The target an href in a request body names (absolute URL or path).
pub fn from_href(href: &str) -> Target {
    Target::parse(href.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        let t = Target::parse("/contacts/ada/my%20book/a%40b.vcf");
        assert_eq!(
            t,
            Target::Item(
                "contacts".into(),
                "ada".into(),
                "my book".into(),
                "a@b.vcf".into()
            )
        );
        assert_eq!(t.href(), "/contacts/ada/my%20book/a@b.vcf");
        assert_eq!(t.store_path(), "/contacts/ada/my book/a@b.vcf");
        assert_eq!(Target::parse("/"), Target::Root);
        assert_eq!(Target::parse("/a/b/c/d/e"), Target::Unknown);
        assert_eq!(Target::parse("/contacts/../x"), Target::Unknown);
        assert_eq!(
            from_href("https://h:1/principals/ada/"),
            Target::Principal("ada".into())
        );
    }
}
