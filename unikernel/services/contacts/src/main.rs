//! The contacts service as its own image: CardDAV over HTTPS (kith-contacts'
//! [`AddressBooks`]) on the store on `/dev/vda`, served by [`kith_dav_image`] exactly as
//! `kith serve contacts` serves it. The argument is the port (default 443), and
//! `--sync HOST:PORT` keeps the replica in step with that sync service, merging vCards
//! property by property; it prints "contacts: serving ZONE on port PORT" once it listens.

use std::process::ExitCode;
use std::sync::Arc;

use kith_contacts::AddressBooks;

fn main() -> ExitCode {
    kith_dav_image::main(
        "contacts",
        Arc::new(AddressBooks),
        kith_contacts::merge::register,
    )
}
