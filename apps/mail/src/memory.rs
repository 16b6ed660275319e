//! Giving memory back once a service goes quiet: a long FETCH or a burst of deliveries
//! leaves the allocator holding memory it freed, and the store's index holding pages it
//! paged in; both go back to the system after [`SETTLE`] without work, so an idle mail
//! service stays small.

use std::time::Duration;

use kith_store::Store;

/// How long a connection or the delivery writer is quiet before memory is given back.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

/// Returns what speeds up `store`'s lookups but can be rebuilt, and the memory the
/// allocator holds free, to the system.
pub(crate) fn give_back(store: &Store) {
    store.object_store().release_memory();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
