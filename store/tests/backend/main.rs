//! Tests of the object and ref backends: one conformance suite run on every backend,
//! corruption and crash tests of the pack, and several writers on one pack.

mod common;
mod concurrency;
mod conformance;
mod corruption;
mod figures;
