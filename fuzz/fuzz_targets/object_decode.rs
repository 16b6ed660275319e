//! `Object::decode` on arbitrary bytes never panics, and whatever decodes re-encodes to
//! exactly the same bytes (one object, one encoding, one hash).
#![no_main]

use kith_store::Object;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = Object::decode(data) {
        assert_eq!(
            object.encode(),
            data,
            "decoded object re-encodes differently"
        );
        assert_eq!(object.hash(), kith_store::Hash::of(data));
    }
});
