//! The `addressbook-query` filter (RFC 6352 §10.5): prop-filters, param-filters and
//! text-matches (kith-dav's [`textmatch`], shared with CalDAV), evaluated over a
//! vCard's content lines.

use kith_dav::Refusal;
use kith_dav::component::{Component, Document, Item};
use kith_dav::contentline::Line;
use kith_dav::textmatch::{self, TextMatch, all_of};
use kith_dav::xml::{CARDDAV, Element};

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
            name: textmatch::name_attr(e, CARDDAV)?,
            all: all_of(e),
            not_defined: e.child(CARDDAV, "is-not-defined").is_some(),
            texts: e
                .children_named(CARDDAV, "text-match")
                .map(|t| TextMatch::parse(t, CARDDAV))
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
            name: textmatch::name_attr(e, CARDDAV)?,
            not_defined: e.child(CARDDAV, "is-not-defined").is_some(),
            text: e
                .child(CARDDAV, "text-match")
                .map(|t| TextMatch::parse(t, CARDDAV))
                .transpose()?,
        })
    }
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
    let value = textmatch::text_value(line);
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
    textmatch::param_matches(line, &filter.name, filter.not_defined, filter.text.as_ref())
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
