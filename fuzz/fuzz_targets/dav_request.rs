//! Arbitrary requests into the WebDAV core: the input is a request head (`METHOD PATH`,
//! then `Name: value` lines), a blank line, and a body. The body also goes straight into
//! every body parser (PROPFIND, PROPPATCH, MKCOL, REPORT) and the head into the header
//! parsers. Nothing may panic, and every answer must be a well-formed HTTP status whose
//! body can be read to the end.

#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use kith_contacts::AddressBooks;
use kith_dav::handler::Request;
use kith_dav::{Dav, request, xml};
use libfuzzer_sys::fuzz_target;

/// Basic credentials of the fuzzing user, `ada:pw`.
const AUTH: &str = "Basic YWRhOnB3";

fn runtime() -> &'static (tokio::runtime::Runtime, Arc<Dav>) {
    static RT: OnceLock<(tokio::runtime::Runtime, Arc<Dav>)> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store = kith_store::Store::memory();
        kith_dav::accounts::set_password(&store, "main", "ada", "pw", true, "fuzz").unwrap();
        let dav = rt.block_on(async {
            Arc::new(Dav::new(kith_dav::Config {
                store,
                branch: "main".into(),
                author: "fuzz".into(),
                kinds: vec![Arc::new(AddressBooks)],
            }))
        });
        (rt, dav)
    })
}

fn parse_request(data: &[u8]) -> Option<Request> {
    let split = data.windows(2).position(|w| w == b"\n\n").unwrap_or(data.len());
    let head = std::str::from_utf8(&data[..split]).ok()?;
    let body = Bytes::copy_from_slice(data.get(split + 2..).unwrap_or_default());
    let mut lines = head.lines();
    let (method, path) = lines.next()?.split_once(' ')?;
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, AUTH.parse().unwrap());
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let value = http::HeaderValue::from_str(value.trim()).ok()?;
        headers.insert(name, value);
    }
    Some(Request {
        method: http::Method::from_bytes(method.as_bytes()).ok()?,
        path: path.to_string(),
        headers,
        body,
    })
}

fn parsers(data: &[u8]) {
    let _ = xml::parse(data);
    let _ = request::Propfind::parse(data);
    let _ = request::proppatch(data);
    let _ = request::mkcol(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = request::Condition::parse(text).matches(Some("\"x\""));
        let _ = request::basic_auth(text);
        let _ = request::depth(Some(text), 0);
        let _ = kith_dav::target::Target::parse(text).href();
    }
}

fuzz_target!(|data: &[u8]| {
    parsers(data);
    let Some(req) = parse_request(data) else { return };
    let (rt, dav) = runtime();
    rt.block_on(async {
        let response = dav.handle(req).await;
        assert!((100..600).contains(&response.status().as_u16()));
        let _ = response.into_body().collect().await.unwrap().to_bytes();
    });
});
