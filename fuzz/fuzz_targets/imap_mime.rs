//! MIME input for IMAP: arbitrary bytes as a stored message go through mail-parser
//! into ENVELOPE, BODYSTRUCTURE and every body section; nothing may panic, each
//! rendering must encode, and every section is a slice of the input.
#![no_main]

use std::num::NonZeroU32;

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::{MessageDataItem, Part, Section};
use imap_codec::imap_types::response::{Data, Response};
use kith_mail::imap::mime::Parsed;
use libfuzzer_sys::fuzz_target;

fn part(numbers: &[u32]) -> Part {
    let list: Vec<NonZeroU32> = numbers.iter().filter_map(|&n| NonZeroU32::new(n)).collect();
    Part(Vec1::try_from(list).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let parsed = Parsed::new(data);
    let items = vec![
        MessageDataItem::Envelope(parsed.envelope.clone()),
        MessageDataItem::BodyStructure(parsed.structure(true)),
        MessageDataItem::Body(parsed.structure(false)),
    ];
    let fetch = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items: Vec1::try_from(items).unwrap(),
    });
    assert!(ResponseCodec::default().encode(&fetch).dump().ends_with(b"\r\n"));
    for numbers in [&[1][..], &[1, 1], &[2], &[2, 1], &[1, 2, 1]] {
        for section in [
            Section::Part(part(numbers)),
            Section::Mime(part(numbers)),
            Section::Header(Some(part(numbers))),
            Section::Text(Some(part(numbers))),
            Section::Header(None),
            Section::Text(None),
        ] {
            if let Some(bytes) = parsed.section(Some(&section)) {
                assert!(bytes.len() <= data.len() + 2);
            }
        }
    }
});
