//! The merge functions of every app, registered for the paths each owns.

use kith_store::Mergers;

/// Every content merge Kith knows.
pub fn all() -> Mergers {
    Mergers::new()
}
