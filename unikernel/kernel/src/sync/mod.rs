//! Synchronisation inside the kernel and for std's locks.
//!
//! The kernel runs on one CPU with interrupts disabled and switches threads
//! only at explicit points, so kernel state needs no locks: a [`Global`] is a
//! `RefCell` that is `Sync`, and re-entering one is a kernel bug that panics.

pub mod futex;

use core::cell::RefCell;

/// Kernel-global state, borrowed for the length of a closure.
pub struct Global<T>(RefCell<T>);

// SAFETY: one CPU, no interrupt handlers touching kernel state, and threads
// switch only outside `with` (no borrow is held across a context switch).
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Self(RefCell::new(value))
    }

    /// Runs `f` with exclusive access to the value.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}
