//! The calendar service as its own image: CalDAV over HTTPS (kith-calendar's
//! [`Calendars`]) on the store on `/dev/vda`, served by [`kith_dav_image`] exactly as
//! `kith serve calendar` serves it. The argument is the port (default 443), and
//! `--sync HOST:PORT` keeps the replica in step with that sync service, merging events
//! by component and property; it prints "calendar: serving ZONE on port PORT" once it
//! listens.

use std::process::ExitCode;
use std::sync::Arc;

use kith_calendar::Calendars;

fn main() -> ExitCode {
    kith_dav_image::main(
        "calendar",
        Arc::new(Calendars::default()),
        kith_calendar::merge::register,
    )
}
