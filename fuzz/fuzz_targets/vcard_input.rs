//! Arbitrary bytes as a vCard PUT to an address book: validation (calcard and the
//! content-line parser) must never panic, must accept only input whose UID it can name,
//! and the query filter and `address-data` selection must handle whatever it accepts.

#![no_main]

use std::sync::OnceLock;

use kith_contacts::carddav::validate;
use kith_contacts::query::{self, Filter};
use kith_dav::CollectionKind as _;
use libfuzzer_sys::fuzz_target;

fn filter() -> &'static Filter {
    static FILTER: OnceLock<Filter> = OnceLock::new();
    FILTER.get_or_init(|| {
        let xml = br#"<C:filter xmlns:C="urn:ietf:params:xml:ns:carddav" test="anyof"><C:prop-filter name="EMAIL"><C:param-filter name="TYPE"><C:text-match match-type="equals">work</C:text-match></C:param-filter></C:prop-filter><C:prop-filter name="FN"><C:text-match match-type="starts-with" negate-condition="yes">A</C:text-match></C:prop-filter></C:filter>"#;
        Filter::parse(&kith_dav::xml::parse(xml).unwrap()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = query::matches(filter(), data);
    if let Ok(uid) = validate(data) {
        assert!(!uid.is_empty());
        let prop = kith_dav::xml::parse(
            br#"<C:address-data xmlns:C="urn:ietf:params:xml:ns:carddav"><C:prop name="EMAIL"/></C:address-data>"#,
        )
        .unwrap();
        let out = kith_contacts::AddressBooks.item_property(&prop, data).unwrap();
        assert!(out.len() <= data.len() * 6);
    }
});
