//! The `addressbook-query` filter (RFC 6352 §10.5): prop-filters, param-filters and
//! text-matches with the `i;unicode-casemap`, `i;ascii-casemap` and `i;octet`
//! collations, evaluated over a vCard's content lines.

use http::StatusCode;
use kith_dav::Refusal;
use kith_dav::component::{Component, Document, Item};
use kith_dav::contentline::Line;
use kith_dav::xml::{CARDDAV, Element, Name};

/// A whole `filter`: its prop-filters, all or any of which must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    all: bool,
    props: Vec<PropFilter>,
}

#[derive(Clone, Debug)]
struct PropFilter {
    name: String,
    all: bool,
    not_defined: bool,
    texts: Vec<TextMatch>,
    params: Vec<ParamFilter>,
}

#[derive(Clone, Debug)]
struct ParamFilter {
    name: String,
    not_defined: bool,
    text: Option<TextMatch>,
}

#[derive(Clone, Debug)]
struct TextMatch {
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

fn all_of(e: &Element) -> bool {
    e.attr("test")
        .is_some_and(|t| t.eq_ignore_ascii_case("allof"))
}

impl Filter {
    /// Parses a `CARDDAV:filter` element.
    pub fn parse(e: &Element) -> Result<Filter, Refusal> {
        let props = e
            .children_named(CARDDAV, "prop-filter")
            .map(PropFilter::parse)
            .collect::<Result<_, _>>()?;
        Ok(Filter {
            all: all_of(e),
            props,
        })
    }
}

impl PropFilter {
    fn parse(e: &Element) -> Result<PropFilter, Refusal> {
        Ok(PropFilter {
            name: name_attr(e)?,
            all: all_of(e),
            not_defined: e.child(CARDDAV, "is-not-defined").is_some(),
            texts: e
                .children_named(CARDDAV, "text-match")
                .map(TextMatch::parse)
                .collect::<Result<_, _>>()?,
            params: e
                .children_named(CARDDAV, "param-filter")
                .map(ParamFilter::parse)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl ParamFilter {
    fn parse(e: &Element) -> Result<ParamFilter, Refusal> {
        Ok(ParamFilter {
            name: name_attr(e)?,
            not_defined: e.child(CARDDAV, "is-not-defined").is_some(),
            text: e
                .child(CARDDAV, "text-match")
                .map(TextMatch::parse)
                .transpose()?,
        })
    }
}

impl TextMatch {
    fn parse(e: &Element) -> Result<TextMatch, Refusal> {
        let collation = match e.attr("collation").unwrap_or("i;unicode-casemap") {
            "i;unicode-casemap" => Collation::UnicodeCasemap,
            "i;ascii-casemap" => Collation::AsciiCasemap,
            "i;octet" => Collation::Octet,
            other => {
                return Err(Refusal::condition(
                    StatusCode::FORBIDDEN,
                    Name::new(CARDDAV, "supported-collation"),
                    format!("collation {other} is not supported"),
                ));
            }
        };
        let how = match e.attr("match-type").unwrap_or("contains") {
            "equals" => MatchType::Equals,
            "contains" => MatchType::Contains,
            "starts-with" => MatchType::StartsWith,
            "ends-with" => MatchType::EndsWith,
            other => return Err(bad_filter(&format!("unknown match-type {other}"))),
        };
        Ok(TextMatch {
            text: fold(&e.text, collation),
            collation,
            negate: e.attr("negate-condition") == Some("yes"),
            how,
        })
    }

    fn matches(&self, value: &str) -> bool {
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

fn name_attr(e: &Element) -> Result<String, Refusal> {
    e.attr("name")
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| bad_filter("a filter needs a name attribute"))
}

fn bad_filter(message: &str) -> Refusal {
    Refusal::condition(
        StatusCode::BAD_REQUEST,
        Name::new(CARDDAV, "valid-filter"),
        message,
    )
}

/// Whether a vCard file matches the filter (an empty filter matches every card).
pub fn matches(filter: &Filter, bytes: &[u8]) -> bool {
    let Some(doc) = Document::parse(bytes) else {
        return false;
    };
    doc.items.iter().any(|item| match item {
        Item::Component(card) => card_matches(filter, card),
        _ => false,
    })
}

fn card_matches(filter: &Filter, card: &Component<'_>) -> bool {
    if filter.props.is_empty() {
        return true;
    }
    let mut results = filter.props.iter().map(|p| prop_matches(p, card));
    if filter.all {
        results.all(|r| r)
    } else {
        results.any(|r| r)
    }
}

fn prop_matches(filter: &PropFilter, card: &Component<'_>) -> bool {
    let lines: Vec<&Line<'_>> = card
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Property(l) if l.name() == filter.name => Some(l),
            _ => None,
        })
        .collect();
    if filter.not_defined {
        return lines.is_empty();
    }
    if filter.texts.is_empty() && filter.params.is_empty() {
        return !lines.is_empty();
    }
    lines.iter().any(|line| line_matches(filter, line))
}

fn line_matches(filter: &PropFilter, line: &Line<'_>) -> bool {
    let value = unescape(&String::from_utf8_lossy(line.value()));
    let texts = filter.texts.iter().map(|t| t.matches(&value));
    let params = filter.params.iter().map(|p| param_matches(p, line));
    let mut results = texts.chain(params);
    if filter.all {
        results.all(|r| r)
    } else {
        results.any(|r| r)
    }
}

fn param_matches(filter: &ParamFilter, line: &Line<'_>) -> bool {
    let values: Vec<String> = params(line)
        .into_iter()
        .filter(|(n, _)| *n == filter.name)
        .map(|(_, v)| v)
        .collect();
    if filter.not_defined {
        return values.is_empty();
    }
    match &filter.text {
        None => !values.is_empty(),
        Some(t) => values
            .iter()
            .flat_map(|v| v.split(','))
            .any(|v| t.matches(v.trim_matches('"'))),
    }
}

/// The parameters of a line as (upper-case name, value); a bare value (vCard 2.1 style
/// `TEL;WORK:`) counts as a `TYPE`.
fn params(line: &Line<'_>) -> Vec<(String, String)> {
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

/// Undoes vCard text escapes (`\,` `\;` `\\` `\n`).
fn unescape(value: &str) -> String {
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

    const CARD: &[u8] = b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:1\r\nFN:Ada Lovelace\r\nEMAIL;TYPE=work:ada@Example.org\r\nEND:VCARD\r\n";

    fn filter(xml: &str) -> Filter {
        let body = format!("<C:filter xmlns:C=\"urn:ietf:params:xml:ns:carddav\" {xml}</C:filter>");
        Filter::parse(&kith_dav::xml::parse(body.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn text_matches_and_collations() {
        let f = |x: &str| matches(&filter(x), CARD);
        assert!(f(
            r#"><C:prop-filter name="FN"><C:text-match>LOVE</C:text-match></C:prop-filter>"#
        ));
        assert!(!f(
            r#"><C:prop-filter name="FN"><C:text-match collation="i;octet">LOVE</C:text-match></C:prop-filter>"#
        ));
        assert!(f(
            r#"><C:prop-filter name="email"><C:text-match match-type="ends-with" collation="i;ascii-casemap">example.ORG</C:text-match></C:prop-filter>"#
        ));
        assert!(f(
            r#"><C:prop-filter name="FN"><C:text-match match-type="equals" negate-condition="yes">Bob</C:text-match></C:prop-filter>"#
        ));
        assert!(!f(
            r#"><C:prop-filter name="FN"><C:text-match match-type="starts-with">Love</C:text-match></C:prop-filter>"#
        ));
        assert!(f(
            r#"><C:prop-filter name="TEL"><C:is-not-defined/></C:prop-filter>"#
        ));
        assert!(f(
            r#"test="anyof"><C:prop-filter name="TEL"/><C:prop-filter name="FN"/>"#
        ));
        assert!(!f(
            r#"test="allof"><C:prop-filter name="TEL"/><C:prop-filter name="FN"/>"#
        ));
        assert!(f(
            r#"><C:prop-filter name="EMAIL"><C:param-filter name="TYPE"><C:text-match match-type="equals">WORK</C:text-match></C:param-filter></C:prop-filter>"#
        ));
        assert!(!f(
            r#"><C:prop-filter name="EMAIL"><C:param-filter name="PREF"/></C:prop-filter>"#
        ));
    }
}
