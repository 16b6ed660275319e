//! What CardDAV's `addressbook-query` (RFC 6352 §10.5.4) and CalDAV's `calendar-query`
//! (RFC 4791 §9.7.5) filters share: `text-match` with the `i;unicode-casemap`,
//! `i;ascii-casemap` and `i;octet` collations (RFC 4790), and reading a content line's
//! parameters and text value.

use http::StatusCode;

use crate::contentline::Line;
use crate::kind::Refusal;
use crate::xml::{Element, Name};

/// One `text-match`: the folded text, how to compare, and whether to negate.
#[derive(Clone, Debug)]
pub struct TextMatch {
    text: String,
    collation: Collation,
    negate: bool,
    how: MatchType,
}

#[derive(Clone, Copy, Debug)]
enum Collation {
    UnicodeCasemap,
    AsciiCasemap,
    Octet,
}

#[derive(Clone, Copy, Debug)]
enum MatchType {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
}

impl TextMatch {
    /// Parses a `text-match` element; `ns` is the namespace of the report's
    /// preconditions (CardDAV or CalDAV), whose `supported-collation` and
    /// `valid-filter` refusals name. The default collation is CardDAV's
    /// `i;unicode-casemap` and CalDAV's `i;ascii-casemap`.
    pub fn parse(e: &Element, ns: &str) -> Result<TextMatch, Refusal> {
        let default = match ns == crate::xml::CARDDAV {
            true => "i;unicode-casemap",
            false => "i;ascii-casemap",
        };
        let collation = match e.attr("collation").unwrap_or(default) {
            "i;unicode-casemap" => Collation::UnicodeCasemap,
            "i;ascii-casemap" => Collation::AsciiCasemap,
            "i;octet" => Collation::Octet,
            other => {
                return Err(Refusal::condition(
                    StatusCode::FORBIDDEN,
                    Name::new(ns, "supported-collation"),
                    format!(
                        "collation {other} is not supported; use i;ascii-casemap, \
                         i;unicode-casemap or i;octet"
                    ),
                ));
            }
        };
        let how = match e.attr("match-type").unwrap_or("contains") {
            "equals" => MatchType::Equals,
            "contains" => MatchType::Contains,
            "starts-with" => MatchType::StartsWith,
            "ends-with" => MatchType::EndsWith,
            other => return Err(invalid_filter(ns, &format!("unknown match-type {other}"))),
        };
        let negate = matches!(e.attr("negate-condition"), Some("yes"));
        Ok(TextMatch {
            text: fold(&e.text, collation),
            collation,
            negate,
            how,
        })
    }

    /// Whether `value` matches (after negation).
    pub fn matches(&self, value: &str) -> bool {
        let value = fold(value, self.collation);
        let hit = match self.how {
            MatchType::Equals => value == self.text,
            MatchType::Contains => value.contains(&self.text),
            MatchType::StartsWith => value.starts_with(&self.text),
            MatchType::EndsWith => value.ends_with(&self.text),
        };
        hit != self.negate
    }
}

fn fold(text: &str, collation: Collation) -> String {
    match collation {
        Collation::UnicodeCasemap => text.to_lowercase(),
        Collation::AsciiCasemap => text.to_ascii_lowercase(),
        Collation::Octet => text.to_string(),
    }
}

/// A `valid-filter` refusal in namespace `ns`.
pub fn invalid_filter(ns: &str, message: &str) -> Refusal {
    Refusal::condition(
        StatusCode::BAD_REQUEST,
        Name::new(ns, "valid-filter"),
        message,
    )
}

/// The `name` attribute of a filter element, in upper case.
pub fn name_attr(e: &Element, ns: &str) -> Result<String, Refusal> {
    e.attr("name")
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| invalid_filter(ns, "a filter needs a name attribute"))
}

/// Whether a filter element says `test="allof"`.
pub fn all_of(e: &Element) -> bool {
    e.attr("test")
        .is_some_and(|t| t.eq_ignore_ascii_case("allof"))
}

/// The parameters of a line as (upper-case name, value); a bare value (vCard 2.1 style
/// `TEL;WORK:`) counts as a `TYPE`.
pub fn params(line: &Line<'_>) -> Vec<(String, String)> {
    let after = String::from_utf8_lossy(line.after_name()).into_owned();
    let value_len = line.value().len();
    let region = &after[..after.len().saturating_sub(value_len + 1)];
    let mut out = Vec::new();
    let mut quoted = false;
    let mut current = String::new();
    for c in region.chars().chain(std::iter::once(';')) {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => {
                if !current.is_empty() {
                    out.push(match current.split_once('=') {
                        Some((n, v)) => (n.to_ascii_uppercase(), v.to_string()),
                        None => ("TYPE".into(), current.clone()),
                    });
                }
                current.clear();
            }
            c => current.push(c),
        }
    }
    out
}

/// Whether a parameter filter matches a line: `not_defined`, or some value of parameter
/// `name` matches `text` (any value when `text` is `None`).
pub fn param_matches(
    line: &Line<'_>,
    name: &str,
    not_defined: bool,
    text: Option<&TextMatch>,
) -> bool {
    let values: Vec<String> = params(line)
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .collect();
    if not_defined {
        return values.is_empty();
    }
    match text {
        None => !values.is_empty(),
        Some(t) => values
            .iter()
            .flat_map(|v| v.split(','))
            .any(|v| t.matches(v.trim_matches('"'))),
    }
}

/// A line's value as text, with `\,` `\;` `\\` and `\n` escapes undone.
pub fn text_value(line: &Line<'_>) -> String {
    let value = String::from_utf8_lossy(line.value());
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(xml: &str) -> TextMatch {
        let body = format!("<C:text-match xmlns:C=\"urn:x\" {xml}</C:text-match>");
        TextMatch::parse(&crate::xml::parse(body.as_bytes()).unwrap(), "urn:x").unwrap()
    }

    #[test]
    fn collations_and_negation() {
        assert!(tm(">LOVE").matches("Ada Lovelace"));
        assert!(!tm("collation=\"i;octet\">LOVE").matches("Ada Lovelace"));
        assert!(tm("collation=\"i;unicode-casemap\">ÄDA").matches("äda"));
        assert!(!tm("collation=\"i;ascii-casemap\">ÄDA").matches("äda"));
        assert!(tm("match-type=\"equals\" negate-condition=\"yes\">Bob").matches("Ada"));
        assert!(tm("match-type=\"ends-with\">.ORG").matches("a@x.org"));
        assert!(!tm("match-type=\"starts-with\">love").matches("Ada Lovelace"));
    }

    #[test]
    fn unknown_collation_is_refused() {
        let body = "<C:text-match xmlns:C=\"urn:x\" collation=\"i;klingon\">a</C:text-match>";
        let e = crate::xml::parse(body.as_bytes()).unwrap();
        let r = TextMatch::parse(&e, "urn:x").unwrap_err();
        assert_eq!(r.condition, Some(Name::new("urn:x", "supported-collation")));
    }
}
